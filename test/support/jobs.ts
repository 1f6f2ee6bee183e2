/**
 * Running a job on a stage to its report, the way most end-to-end tests do: write the CSV, check it, start
 * the job through the client, wait for it, and read the report it wrote.
 */
import { type CsvCheck, type StartJobOptions, checkCsv, startJob, waitForJob } from '../../client/jobs';
import type { JobSummary } from '../../workflows/types';
import { FAST_POLICY, type ReportJson, type Stage, progressOf, readJson, waitUntil } from './harness';

/** A job that completed: its summary and its JSON report as read from disk. */
export interface FinishedJob<Report extends ReportJson = ReportJson> {
  jobId: string;
  summary: JobSummary;
  report: Report;
}

/** Writes `text` as the CSV `name` in the stage's data folder and checks it, as `bulk-reset start` does first. */
export async function writeCheckedCsv(
  stage: Pick<Stage, 'writeCsv'>,
  name: string,
  text: string,
): Promise<CsvCheck> {
  return checkCsv(await stage.writeCsv(name, text));
}

/** Starts a job of this checked CSV on the stage's task queue; its job id. */
export async function startStageJob(
  stage: Pick<Stage, 'client' | 'settings'>,
  csv: CsvCheck,
  options: StartJobOptions = {},
): Promise<string> {
  return startJob(stage.client, stage.settings.taskQueue, csv, options);
}

/**
 * Waits for the job (looking every `intervalMs`) and reads its report; fails the test, saying how the job
 * ended instead, unless it completed.
 */
export async function finishedJob<Report extends ReportJson = ReportJson>(
  stage: Pick<Stage, 'client'>,
  jobId: string,
  intervalMs = 200,
): Promise<FinishedJob<Report>> {
  const final = await waitForJob(stage.client, jobId, () => undefined, intervalMs);
  if (final.state !== 'completed') throw new Error(`job ${jobId} did not complete: ${JSON.stringify(final)}`);
  return { jobId, summary: final.summary, report: await readJson<Report>(final.summary.reportJsonPath) };
}

/** Writes and checks the CSV, starts the job, waits for it: the finished job and the CSV it ran. */
export async function runJob<Report extends ReportJson = ReportJson>(
  stage: Pick<Stage, 'client' | 'settings' | 'writeCsv'>,
  csvName: string,
  csvText: string,
  options: StartJobOptions = {},
): Promise<FinishedJob<Report> & { csv: CsvCheck }> {
  const csv = await writeCheckedCsv(stage, csvName, csvText);
  const finished = await finishedJob<Report>(stage, await startStageJob(stage, csv, options));
  return { ...finished, csv };
}

/**
 * Starts a job of this CSV that needs another operator's approval (started by `startedBy`, two minutes to
 * approve it) and waits until it is waiting for that approval; its job id.
 */
export async function startAwaitingApproval(
  stage: Pick<Stage, 'client' | 'settings'>,
  csv: CsvCheck,
  startedBy = 'alice@ops',
): Promise<string> {
  const jobId = await startStageJob(stage, csv, {
    policy: FAST_POLICY,
    startedBy,
    approvalTimeoutMs: 120_000,
  });
  await waitUntil(
    'the job waits for approval',
    async () => (await progressOf(stage, jobId)).phase === 'awaiting-approval',
  );
  return jobId;
}
