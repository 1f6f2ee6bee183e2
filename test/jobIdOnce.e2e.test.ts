/**
 * A job id names one job, once: `start` refuses an id that a workflow or a job folder already has, and
 * the worker refuses to prepare a job over the files another run left, whoever started it.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { jobPaths } from '../jobs/jobFiles';
import { JobIdTakenError, checkCsv, startJob, waitForJob } from '../client/jobs';
import { bulkReset } from '../workflows';
import { type BulkResetInput, DEFAULT_RESET_POLICY } from '../workflows/types';
import { FAST_POLICY, type ReportJson, type Stage, cli, openStage, readJson } from './support/harness';

let stage: Stage;
/** A suffix for this file's job ids: the dev server, shared by every test file of a run, keeps each id it saw. */
const ids = randomBytes(3).toString('hex');

beforeAll(async () => {
  stage = await openStage();
  await stage.startWorker();
});

afterAll(async () => {
  await stage?.close();
});

/** Every file of a folder with its bytes: to prove a refused job left them as they were. */
async function snapshot(dir: string): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  for (const name of (await readdir(dir)).sort()) files[name] = await readFile(join(dir, name), 'base64');
  return files;
}

/** Resets (POSTs) the simulator saw for these users. */
function postsFor(...users: string[]): number {
  return users.reduce((sum, user) => sum + (stage.simulator.user(user)?.posts ?? 0), 0);
}

/** A job of one user that nobody approves in time: it ends with the user cancelled, never reset. */
async function cancelledJob(jobId: string, user: string): Promise<void> {
  const csv = await checkCsv(await stage.writeCsv(`${jobId}.csv`, `userPrincipalName\n${user}\n`));
  await startJob(stage.client, stage.settings.taskQueue, csv, {
    jobId,
    startedBy: 'alice@ops',
    approvalTimeoutMs: 500,
    policy: FAST_POLICY,
  });
  const final = await waitForJob(stage.client, jobId, () => undefined, 200);
  if (final.state !== 'completed') throw new Error(`job ${jobId} did not complete: ${JSON.stringify(final)}`);
  expect(final.summary.counts.cancelled).toBe(1);
}

/** The ApplicationFailure under a workflow's failure: what the activity that stopped it said. */
function applicationFailure(error: unknown): ApplicationFailure | undefined {
  let current: unknown = error;
  while (current instanceof Error) {
    if (current instanceof ApplicationFailure) return current;
    current = current.cause;
  }
  return undefined;
}

test('start --job-id of a cancelled job is refused with exit code 2, and neither CSV is reset', async () => {
  const jobId = `incident-cancelled-${ids}`;
  const oldUser = 'ok.cancelled-old@reuse.test';
  const newUser = 'ok.cancelled-new@reuse.test';
  await cancelledJob(jobId, oldUser);
  const before = await stage.client.workflow.getHandle(jobId).describe();
  const files = await snapshot(jobPaths(stage.dataDir, jobId).dir);

  const other = await stage.writeCsv('other.csv', `userPrincipalName\n${newUser}\n`);
  const started = await cli(stage, 'start', other, '--job-id', jobId, '--wait');

  expect(started.code).toBe(2);
  expect(started.stderr).toContain(`job id ${jobId} is already taken`);
  expect(started.stderr).toContain('choose another --job-id, or leave it out');
  expect(started.stdout).not.toContain(jobId);
  // No second run was started under the id, nothing was sent, and the old job's files are as they were.
  const after = await stage.client.workflow.getHandle(jobId).describe();
  expect(after.runId).toBe(before.runId);
  expect(postsFor(oldUser, newUser)).toBe(0);
  expect(await snapshot(jobPaths(stage.dataDir, jobId).dir)).toEqual(files);
  const report = await readJson<ReportJson>(jobPaths(stage.dataDir, jobId).reportJson);
  expect(report.outcomes.map(({ user, status }) => ({ user, status }))).toEqual([
    { user: oldUser, status: 'cancelled' },
  ]);
});

test('start --job-id is refused when only a job folder has the id (its workflow long gone)', async () => {
  const jobId = `incident-folder-only-${ids}`;
  const user = 'ok.folder-only@reuse.test';
  const dir = jobPaths(stage.dataDir, jobId).dir;
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'rows.jsonl'), `${JSON.stringify({ row: 2, user, key: 'k' })}\n`);

  const csvPath = await stage.writeCsv('folder-only.csv', `userPrincipalName\n${user}\n`);
  const started = await cli(stage, 'start', csvPath, '--job-id', jobId);

  expect(started.code).toBe(2);
  expect(started.stderr).toContain(`job id ${jobId} is already taken`);
  expect(started.stderr).toContain(dir);
  await expect(stage.client.workflow.getHandle(jobId).describe()).rejects.toThrow();
  expect(postsFor(user)).toBe(0);
});

test('of two starts racing for one job id, one starts the job and the other is told the id is taken', async () => {
  const jobId = `incident-race-${ids}`;
  const csv = await checkCsv(await stage.writeCsv('race.csv', 'userPrincipalName\nok.race@reuse.test\n'));
  const options = { jobId, dataDir: stage.dataDir, startedBy: 'alice@ops', approvalTimeoutMs: 500 };
  const starts = await Promise.allSettled([
    startJob(stage.client, stage.settings.taskQueue, csv, options),
    startJob(stage.client, stage.settings.taskQueue, csv, options),
  ]);

  expect(starts.filter((start) => start.status === 'fulfilled')).toHaveLength(1);
  const [refused] = starts.filter((start) => start.status === 'rejected');
  expect(refused.reason).toBeInstanceOf(JobIdTakenError);
  expect(String(refused.reason)).toContain(`job id ${jobId} is already taken`);
  const final = await waitForJob(stage.client, jobId, () => undefined, 200);
  expect(final.state === 'completed' && final.summary.counts.cancelled).toBe(1);
  expect(postsFor('ok.race@reuse.test')).toBe(0);
});

test('the worker refuses a job whose folder another run prepared, whoever started it: JobFolderTaken, 0 writes', async () => {
  const jobId = `incident-worker-${ids}`;
  const oldUser = 'ok.worker-old@reuse.test';
  const newUser = 'ok.worker-new@reuse.test';
  await cancelledJob(jobId, oldUser);
  const dir = jobPaths(stage.dataDir, jobId).dir;
  const files = await snapshot(dir);
  const other = await checkCsv(await stage.writeCsv('worker-other.csv', `userPrincipalName\n${newUser}\n`));
  const input: BulkResetInput = {
    jobId,
    csv: { path: other.path, sha256: other.sha256 },
    windowSize: 10,
    policy: { ...DEFAULT_RESET_POLICY, ...FAST_POLICY },
  };

  // Started through the client, past every check of the CLI: the same workflow id again (Temporal allows
  // it once the first has closed), and another workflow id that names the same job.
  for (const workflowId of [jobId, `someone-else-${ids}`]) {
    const handle = await stage.client.workflow.start(bulkReset, {
      workflowId,
      taskQueue: stage.settings.taskQueue,
      args: [input],
    });
    const failure = await handle.result().then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(applicationFailure(failure)?.type).toBe('JobFolderTaken');
    expect(applicationFailure(failure)?.message).toContain(dir);
    expect(applicationFailure(failure)?.message).toContain('nothing was reset');
  }

  expect(postsFor(oldUser, newUser)).toBe(0);
  expect(await snapshot(dir)).toEqual(files);
});
