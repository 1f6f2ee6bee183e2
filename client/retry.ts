/**
 * `bulk-reset retry <job>`: a new job with the rows of a finished job that failed for a passing reason
 * (throttling, outages, timeouts), or every failed row with --all-failed. Both reports name each other.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { GUID } from '../jobs/csvReader';
import { csvLine } from '../jobs/csvWriter';
import { jobPaths } from '../jobs/jobFiles';
import { writePrivateFile } from '../secrets/privateFile';
import type { JobSettings, ResetOutcome, ResetPolicy } from '../workflows/types';
import { type Settings, operatorIdentity } from '../temporal/config';
import { checkCsv, newJobId, startJob } from './jobs';

/** The rows a retry takes: failed ones, and unless `allFailed` only those marked retryable. */
export function rowsToRetry(outcomes: ResetOutcome[], allFailed: boolean): ResetOutcome[] {
  return outcomes.filter(
    (outcome) => outcome.status === 'failed' && (allFailed || outcome.retryable === true),
  );
}

/**
 * A CSV of those users, ids and UPNs each in their own column, as the CSV reader expects. Its cells come
 * from the one CSV writer; a user that ran is a GUID or a userPrincipalName the reader accepted, which
 * never looks like a formula, so each comes back from the file exactly as it was.
 */
export function retryCsv(outcomes: ResetOutcome[]): string {
  const lines = outcomes.map(({ user }) => csvLine(GUID.test(user) ? [undefined, user] : [user, undefined]));
  return `${csvLine(['userPrincipalName', 'id'])}\n${lines.join('\n')}\n`;
}

export interface RetryOptions {
  /** Every failed row, not only those that failed for a passing reason. */
  allFailed: boolean;
  /** Overrides of the original job's window and policy (the job flags of `start`). */
  windowSize?: number;
  policy?: Partial<ResetPolicy>;
  /** A new secrets file: needed when the original job kept its passwords in one. */
  secretsFile?: string;
}

/** A retry that cannot repeat how the original job ran: the CLI prints it and exits with 2. */
export class RetryRefusedError extends Error {}

/**
 * The retry's settings: the original job's (window, waits, deadline, session revocation, password mode
 * and recipient), with the operator's overrides. A retry after a breach must not quietly drop
 * `--revoke-sessions` or send Graph-generated passwords where the job generated its own. Refused where
 * repeating them cannot work; `csvPath` holds the rows to retry, for a job started by hand instead.
 */
export function retrySettings(
  originalJobId: string,
  original: JobSettings | undefined,
  options: Omit<RetryOptions, 'allFailed'>,
  csvPath: string,
): JobSettings {
  if (!original) {
    throw new RetryRefusedError(
      `the report of job ${originalJobId} does not say how the job ran (it predates jobs recording it), so a retry cannot repeat it: ` +
        `${csvPath} holds the rows to retry; start it with the options the job had (bulk-reset start ${csvPath} ...)`,
    );
  }
  const password = original.policy.password;
  if (password?.mode === 'csv') {
    throw new RetryRefusedError(
      `job ${originalJobId} took its passwords from its CSV's newPassword column, which a retry cannot reuse: ` +
        `add a newPassword column to ${csvPath}, which holds the rows to retry, and start it with --password csv`,
    );
  }
  if (password?.secretsFile && !options.secretsFile) {
    throw new RetryRefusedError(
      `job ${originalJobId} wrote its new passwords to ${password.secretsFile}, and each job needs a secrets file of its own: retry with --secrets-file <a new file>`,
    );
  }
  const retryPassword = options.secretsFile
    ? { ...(password ?? { mode: 'graph' as const }), secretsFile: options.secretsFile }
    : password;
  return {
    windowSize: options.windowSize ?? original.windowSize,
    policy: { ...original.policy, ...options.policy, ...(retryPassword && { password: retryPassword }) },
    ...(original.secretsRecipient && { secretsRecipient: original.secretsRecipient }),
  };
}

export async function retryFailed(
  client: Client,
  settings: Settings,
  originalJobId: string,
  options: RetryOptions,
): Promise<{ jobId: string; rows: number } | undefined> {
  const original = jobPaths(settings.dataDir, originalJobId);
  let text: string;
  try {
    text = await readFile(original.reportJson, 'utf8');
  } catch {
    throw new Error(
      `no report for job ${originalJobId} in ${original.dir}: only a finished job can be retried (see \`bulk-reset status ${originalJobId}\`)`,
    );
  }
  const report = JSON.parse(text) as { job: Record<string, unknown>; outcomes: ResetOutcome[] };
  const rows = rowsToRetry(report.outcomes, options.allFailed);
  if (rows.length === 0) return undefined;

  const jobId = newJobId();
  const csvPath = join(settings.dataDir, 'retries', `${jobId}.csv`);
  await mkdir(join(settings.dataDir, 'retries'), { recursive: true, mode: 0o700 });
  // A new file for a new job id: never over another retry's rows (startJob refuses a used id as well).
  await writePrivateFile(csvPath, retryCsv(rows));
  const { windowSize, policy, secretsRecipient } = retrySettings(
    originalJobId,
    report.job.settings as JobSettings | undefined,
    options,
    csvPath,
  );
  const csv = await checkCsv(csvPath);
  await startJob(client, settings.taskQueue, csv, {
    jobId,
    dataDir: settings.dataDir,
    windowSize,
    policy,
    secretsRecipient,
    startedBy: operatorIdentity(),
    retryOf: originalJobId,
    // The original job already passed the blast-radius check; its retry is a subset.
  });
  await linkRetry(original.reportJson, report, jobId);
  return { jobId, rows: rows.length };
}

/** Adds the retry's job id to the original JSON report's header (`retriedBy`), replacing it atomically. */
async function linkRetry(
  reportPath: string,
  report: { job: Record<string, unknown>; outcomes: ResetOutcome[] },
  retryJobId: string,
): Promise<void> {
  const retriedBy = [...((report.job.retriedBy as string[] | undefined) ?? []), retryJobId];
  const updated = { ...report, job: { ...report.job, retriedBy } };
  await writePrivateFile(reportPath, `${JSON.stringify(updated, null, 2)}\n`, { replace: true });
}
