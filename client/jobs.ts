/**
 * What the CLI does with jobs: check a CSV, start a job, read its progress, wait for it, fetch its report.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { access, lstat } from 'node:fs/promises';
import { resolve } from 'node:path';
import {
  type Client,
  QueryNotRegisteredError,
  WorkflowExecutionAlreadyStartedError,
  WorkflowFailedError,
  WorkflowIdConflictPolicy,
  WorkflowIdReusePolicy,
  type WorkflowExecutionDescription,
  WorkflowNotFoundError,
} from '@temporalio/client';
import { scanUserCsv, sha256File } from '../jobs/csvReader';
import { JOB_ID_PATTERN, jobPaths } from '../jobs/jobFiles';
import type { FailureCause, ReportedJobSummary } from '../jobs/report';
import { type PrivateContent, PrivateFileError, writePrivateFile } from '../secrets/privateFile';
import {
  approveUpdate,
  bulkReset,
  cancelUpdate,
  pauseUpdate,
  progressQuery,
  resumeUpdate,
} from '../workflows';
import {
  type BulkResetInput,
  type ControlRequest,
  DEFAULT_RESET_POLICY,
  JOB_ID_SEARCH_ATTRIBUTE,
  JOB_PHASE_SEARCH_ATTRIBUTE,
  type JobProgress,
  type JobSummary,
  type OutcomeStatus,
  type ResetPolicy,
  emptyCounts,
} from '../workflows/types';

// The job flags' limits live with the flags, which the CLI declares without loading Temporal's client.
import { DEFAULT_MAX_USERS, DEFAULT_WINDOW_SIZE, MAX_WINDOW_SIZE } from './jobFlags';
export { DEFAULT_MAX_USERS, DEFAULT_WINDOW_SIZE, MAX_WINDOW_SIZE };

export interface CsvCheck {
  path: string;
  sha256: string;
  totalRows: number;
  runnableRows: number;
  /** The first problems found, for the operator to see before anything starts. */
  problems: { row: number; reason: string }[];
  problemCount: number;
}

/**
 * Reads the CSV the way the worker will, so an operator sees bad rows before the job starts. A newPassword
 * column is refused unless the job's passwords come from it (`require`, password mode csv).
 */
export async function checkCsv(
  csvPath: string,
  maxProblems = 20,
  passwordColumn: 'require' | 'refuse' = 'refuse',
): Promise<CsvCheck> {
  const path = resolve(csvPath);
  const sha256 = await sha256File(path);
  const check: CsvCheck = { path, sha256, totalRows: 0, runnableRows: 0, problems: [], problemCount: 0 };
  for await (const row of scanUserCsv(path, { passwordColumn })) {
    check.totalRows += 1;
    if (row.disposition === 'run') {
      check.runnableRows += 1;
    } else {
      check.problemCount += 1;
      if (check.problems.length < maxProblems) check.problems.push({ row: row.row, reason: row.reason });
    }
  }
  return check;
}

export function newJobId(now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `reset-${stamp}-${randomBytes(3).toString('hex')}`;
}

export interface StartJobOptions {
  /** A job id of the operator's choosing; refused if any workflow or job folder already has it. */
  jobId?: string;
  /**
   * The workers' data folder, when this machine sees it: an id whose job folder exists there is refused
   * before anything starts (the worker refuses it anyway, when it prepares the job).
   */
  dataDir?: string;
  windowSize?: number;
  policy?: Partial<ResetPolicy>;
  maxHistoryEvents?: number;
  /** Users continue as new at this many history events (tests). */
  userMaxHistoryEvents?: number;
  /** How often a run looks for inherited users whose workflows ended without reporting (tests). */
  inheritedCheckMs?: number;
  /** The operator starting the job (see operatorIdentity). */
  startedBy?: string;
  /** Wait this long for another operator's approval before any reset. */
  approvalTimeoutMs?: number;
  /** A plan file (`bulk-reset plan`): run exactly its users. */
  planPath?: string;
  retryOf?: string;
  /** Refuse a job with more users to reset than this, unless allowLarge (the blast-radius limit; the CLI sets it). */
  maxUsers?: number;
  allowLarge?: boolean;
  /** PEM public key the secrets file's passwords are encrypted to (with policy.password.secretsFile). */
  secretsRecipient?: string;
}

/**
 * The job's Details in the Web UI (Markdown, sealed by the codec like every payload): what was asked
 * for, once, at the start. How far it got is in its current details, kept by the workflow.
 */
export function jobStaticDetails(input: BulkResetInput, csv: CsvCheck): string {
  const { policy } = input;
  return [
    `CSV \`${csv.path}\` (SHA-256 \`${csv.sha256}\`): ${csv.runnableRows} users to reset`,
    `started by ${input.startedBy ?? 'unknown'}${input.approval ? '; waits for a second operator to approve' : ''}${input.retryOf ? `; retries job \`${input.retryOf}\`` : ''}`,
    `password: ${policy.password?.mode ?? 'graph'}; sessions ${policy.revokeSessions ? 'revoked' : 'kept'}; window ${input.windowSize}; deadline per user ${Math.round(policy.deadlineMs / 60_000)} min`,
  ].join('\n\n');
}

export async function startJob(
  client: Client,
  taskQueue: string,
  csv: CsvCheck,
  options: StartJobOptions = {},
): Promise<string> {
  const jobId = options.jobId ?? newJobId();
  if (!JOB_ID_PATTERN.test(jobId)) {
    throw new Error(
      `job id "${jobId}" must be 1-128 letters, digits, '.', '_', ':' or '-', starting with a letter or digit`,
    );
  }
  await checkJobIdFree(client, jobId, options.dataDir);
  const windowSize = checkJobShape(csv, options, 'this job');
  const plan = options.planPath
    ? { path: resolve(options.planPath), sha256: await sha256File(resolve(options.planPath)) }
    : undefined;
  const input: BulkResetInput = {
    jobId,
    csv: { path: csv.path, sha256: csv.sha256 },
    windowSize,
    policy: { ...DEFAULT_RESET_POLICY, ...options.policy },
    maxHistoryEvents: options.maxHistoryEvents,
    userMaxHistoryEvents: options.userMaxHistoryEvents,
    inheritedCheckMs: options.inheritedCheckMs,
    startedBy: options.startedBy,
    approval: options.approvalTimeoutMs !== undefined ? { timeoutMs: options.approvalTimeoutMs } : undefined,
    plan,
    retryOf: options.retryOf,
    secretsRecipient: options.secretsRecipient,
    // Users started in batches, each reporting once (see BulkResetInput.userStarts).
    userStarts: 'batched',
  };
  try {
    await client.workflow.start(bulkReset, {
      workflowId: jobId,
      taskQueue,
      args: [input],
      // Temporal itself refuses an id any workflow it still knows has, running or closed: of two starts
      // racing for one id, the second fails here.
      workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
      workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
      staticSummary: `bulk password reset of ${csv.runnableRows} users from ${csv.path}`,
      staticDetails: jobStaticDetails(input, csv),
      typedSearchAttributes: [
        { key: JOB_ID_SEARCH_ATTRIBUTE, value: jobId },
        { key: JOB_PHASE_SEARCH_ATTRIBUTE, value: 'preparing' },
      ],
    });
  } catch (error) {
    if (error instanceof WorkflowExecutionAlreadyStartedError) {
      throw new JobIdTakenError(jobId, 'a job with this id was started meanwhile');
    }
    throw error;
  }
  return jobId;
}

/** A job id that is already used: the operator must choose another. The CLI exits with 2. */
export class JobIdTakenError extends Error {
  override name = 'JobIdTakenError';
  constructor(jobId: string, why: string) {
    super(
      `job id ${jobId} is already taken: ${why}; job ids are used once, so nothing was started: choose another --job-id, or leave it out for a new one`,
    );
  }
}

/**
 * Refuses an id that a workflow (running or closed, as long as Temporal keeps it) or a job folder
 * already has. A convenience that explains the refusal: what guarantees it is the worker's claim of the
 * job folder (claimJobFolder) and Temporal's own refusal of a duplicate id at start.
 */
async function checkJobIdFree(client: Client, jobId: string, dataDir: string | undefined): Promise<void> {
  try {
    const { status } = await client.workflow.getHandle(jobId).describe();
    throw new JobIdTakenError(
      jobId,
      status.name === 'RUNNING'
        ? 'a job with this id is running'
        : `a job with this id already ran (${status.name.toLowerCase().replaceAll('_', ' ')})`,
    );
  } catch (error) {
    if (!(error instanceof WorkflowNotFoundError)) throw error;
  }
  if (dataDir === undefined) return;
  const { dir } = jobPaths(dataDir, jobId);
  try {
    await lstat(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  throw new JobIdTakenError(jobId, `${dir} holds the files of an earlier job with this id`);
}

/**
 * The window to use, after checking it and the blast-radius limit; `subject` names what would reset
 * the users ("this job", "each run").
 */
export function checkJobShape(
  csv: CsvCheck,
  options: { windowSize?: number; maxUsers?: number; allowLarge?: boolean },
  subject: string,
): number {
  const windowSize = options.windowSize ?? DEFAULT_WINDOW_SIZE;
  if (!Number.isInteger(windowSize) || windowSize < 1 || windowSize > MAX_WINDOW_SIZE) {
    throw new Error(`the window must be a whole number from 1 to ${MAX_WINDOW_SIZE}`);
  }
  const { maxUsers } = options;
  if (maxUsers !== undefined && csv.runnableRows > maxUsers && !options.allowLarge) {
    throw new Error(
      `${subject} would reset ${csv.runnableRows} users, more than the limit of ${maxUsers}; ` +
        'if that is intended, say so with --allow-large (or raise BULK_RESET_MAX_USERS)',
    );
  }
  return windowSize;
}

export type JobState =
  | { state: 'running'; progress: JobProgress }
  | { state: 'completed'; summary: JobSummary }
  | { state: 'failed'; message: string }
  | { state: 'not-found' };

export async function jobState(client: Client, jobId: string): Promise<JobState> {
  const handle = client.workflow.getHandle(jobId);
  let status: string;
  try {
    status = (await handle.describe()).status.name;
  } catch (error) {
    if (error instanceof WorkflowNotFoundError) return { state: 'not-found' };
    throw error;
  }
  if (status === 'RUNNING' || status === 'CONTINUED_AS_NEW') {
    try {
      return { state: 'running', progress: await handle.query(progressQuery) };
    } catch (error) {
      // A job that fails in its first workflow task (its input refused, say) never answers the query:
      // it is about to close, so look again rather than show the SDK's error.
      if (!(error instanceof QueryNotRegisteredError)) throw error;
      await new Promise((done) => setTimeout(done, 500));
      return jobState(client, jobId);
    }
  }
  try {
    return { state: 'completed', summary: (await handle.result()) as JobSummary };
  } catch (error) {
    return { state: 'failed', message: failureMessage(error) };
  }
}

/**
 * An error about a job that says, in one sentence, what happened and what to do: printed as it is, never
 * replaced by the SDK's text of a cause (see failureMessage). The CLI exits with 2.
 */
export class JobCommandError extends Error {
  override name = 'JobCommandError';
}

/** No job has this id in the namespace: a typo, another namespace, or gone past retention. */
export class UnknownJobError extends JobCommandError {
  override name = 'UnknownJobError';
  constructor(jobId: string, namespace: string) {
    super(
      `there is no job ${jobId} in namespace ${namespace}: check the id (bulk-reset list shows recent jobs) and ` +
        `TEMPORAL_NAMESPACE; a job that ended longer ago than the namespace keeps closed workflows is gone`,
    );
  }
}

/** A pause, resume, cancel or approval of a job that has already ended. */
export class JobFinishedError extends JobCommandError {
  override name = 'JobFinishedError';
  constructor(jobId: string, action: string, status: string) {
    super(
      `job ${jobId} has already finished (${status}): there is nothing to ${action}; ` +
        `bulk-reset status ${jobId} shows how it ended, bulk-reset retry ${jobId} runs its failed rows again`,
    );
  }
}

/** Temporal's status of a closed workflow, in words (`completed`, `timed out`). */
function statusWords(status: string): string {
  return status.toLowerCase().replaceAll('_', ' ');
}

/**
 * Checks that `jobId` names a bulk-reset job (not a user's workflow, not nothing) and answers its
 * Temporal status (`RUNNING`, `COMPLETED`, ...). Refuses an unknown id with UnknownJobError.
 */
export async function describeJob(client: Client, jobId: string): Promise<string> {
  let description: WorkflowExecutionDescription;
  try {
    description = await client.workflow.getHandle(jobId).describe();
  } catch (error) {
    // The SDK's `workflow not found for ID` is replaced by a sentence that says what to do.
    if (error instanceof WorkflowNotFoundError) throw new UnknownJobError(jobId, client.options.namespace);
    throw error;
  }
  if (description.type !== bulkReset.name) {
    throw new JobCommandError(
      `${jobId} is not a bulk-reset job but a ${description.type} workflow (a user's, if the id has a /): ` +
        'give the job id (bulk-reset list shows recent jobs)',
    );
  }
  return description.status.name;
}

/** The root cause's message: what actually went wrong, not Temporal's wrapping. */
export function failureMessage(error: unknown): string {
  if (error instanceof JobCommandError) return error.message;
  let current: unknown = error;
  while (current instanceof Error && current.cause instanceof Error) current = current.cause;
  if (error instanceof WorkflowFailedError && current instanceof Error) return current.message;
  return current instanceof Error ? current.message : String(current);
}

/** Waits for the job, calling onProgress every interval while it runs. */
export async function waitForJob(
  client: Client,
  jobId: string,
  onProgress: (progress: JobProgress) => void,
  intervalMs = 1_000,
): Promise<Exclude<JobState, { state: 'running' }>> {
  for (;;) {
    const current = await jobState(client, jobId);
    if (current.state !== 'running') return current;
    onProgress(current.progress);
    await new Promise((done) => setTimeout(done, intervalMs));
  }
}

/**
 * Copies the finished job's report (CSV or JSON) to `out`, a new file readable by its owner only
 * (written like every private file: see secrets/privateFile). A symbolic link at `out` is refused,
 * an existing file is replaced only with `replace` (`--force`).
 */
export async function copyReport(
  dataDir: string,
  jobId: string,
  out: string,
  format: 'csv' | 'json',
  { replace = false }: { replace?: boolean } = {},
): Promise<string> {
  const paths = jobPaths(dataDir, jobId);
  const source = format === 'csv' ? paths.reportCsv : paths.reportJson;
  try {
    await access(source);
  } catch {
    throw new Error(
      `no report for job ${jobId} in ${paths.dir}: the job may still be running (see \`bulk-reset status ${jobId}\`) or ran against another data folder (BULK_RESET_DATA_DIR)`,
    );
  }
  return writeReportFile(out, createReadStream(source), { replace });
}

/**
 * Writes a report the operator asked for to `out`, a new file of mode 0600 (see secrets/privateFile): an
 * existing file only with `replace` (`--force`), a symbolic link never. Answers the absolute path.
 */
export async function writeReportFile(
  out: string,
  content: PrivateContent,
  { replace = false }: { replace?: boolean } = {},
): Promise<string> {
  const target = resolve(out);
  try {
    await writePrivateFile(target, content, { replace });
  } catch (error) {
    if (error instanceof PrivateFileError && error.problem === 'exists') {
      // No `cause`: the CLI prints the innermost cause, and this message says what to do.
      // eslint-disable-next-line preserve-caught-error
      throw new Error(
        `${target} already exists: nothing was written; choose another --out, or add --force to replace it`,
      );
    }
    throw error;
  }
  return target;
}

/** `N in flight · succeeded N · failed N · ...`: cancelled only when there are any. */
export function countParts(inFlight: number, counts: Record<OutcomeStatus, number>): string[] {
  const parts = [
    `${inFlight} in flight`,
    `succeeded ${counts.succeeded}`,
    `failed ${counts.failed}`,
    `unconfirmed ${counts.unconfirmed}`,
    `skipped ${counts.skipped}`,
  ];
  if (counts.cancelled > 0) parts.push(`cancelled ${counts.cancelled}`);
  return parts;
}

/** One line for a terminal or a log: counts by outcome, in flight, rate. */
export function formatProgress(progress: JobProgress, elapsedMs?: number): string {
  const counts = progress.counts ?? emptyCounts();
  const total = progress.total ?? 0;
  const parts = [`${progress.done}/${total || '?'} rows done`, ...countParts(progress.inFlight, counts)];
  if (progress.needSignIn)
    parts.push(`${progress.needSignIn} waiting for the operator's sign-in: run bulk-reset login`);
  if (elapsedMs && elapsedMs > 0 && progress.done > 0)
    parts.push(`${((progress.done * 1000) / elapsedMs).toFixed(1)} rows/s`);
  return `[${progress.phase}] ${parts.join(' · ')}`;
}

/**
 * The job's end: counts, how long it took, the failures by cause with what to do about each (from jobs
 * whose report groups them, see jobs/report failuresByCause), and where the report is.
 */
export function formatSummary(summary: ReportedJobSummary): string {
  const { counts } = summary;
  const duration = formatDuration(summary.startedAt, summary.finishedAt);
  return [
    `job ${summary.jobId}: ${summary.total} rows${duration ? ` in ${duration}` : ''}`,
    `  succeeded   ${counts.succeeded}`,
    `  failed      ${counts.failed}`,
    `  unconfirmed ${counts.unconfirmed}`,
    `  skipped     ${counts.skipped}`,
    `  cancelled   ${counts.cancelled}`,
    ...containmentLines(summary),
    ...formatFailureCauses(summary.failuresByCause ?? []),
    `report: ${summary.reportCsvPath}`,
    `        ${summary.reportJsonPath}`,
  ].join('\n');
}

/**
 * `failures by cause:` then one line per cause: how many rows, the cause, what to do, the first rows.
 * Nothing when no row failed. Names no user and no Graph message: a summary may go to a shared log.
 */
export function formatFailureCauses(causes: readonly FailureCause[]): string[] {
  if (causes.length === 0) return [];
  const width = Math.max(...causes.map(({ count }) => String(count).length));
  return [
    'failures by cause:',
    ...causes.map(({ cause, count, retryable, whatToDo, rows }) => {
      const more = count > rows.length ? ', …' : '';
      const passing = retryable > 0 ? ` (${retryable} retryable)` : '';
      return `  ${String(count).padStart(width)} ${cause}${passing}: ${whatToDo} (rows ${rows.join(', ')}${more})`;
    }),
  ];
}

/** `1:05` or `1:02:03` from two ISO times; undefined when either is missing or unreadable. */
export function formatDuration(
  startedAt: string | undefined,
  finishedAt: string | undefined,
): string | undefined {
  if (!startedAt || !finishedAt) return undefined;
  const ms = Date.parse(finishedAt) - Date.parse(startedAt);
  if (!Number.isFinite(ms) || ms < 0) return undefined;
  const totalSeconds = Math.round(ms / 1_000);
  const hours = Math.floor(totalSeconds / 3_600);
  const minutes = Math.floor((totalSeconds % 3_600) / 60);
  const seconds = String(totalSeconds % 60).padStart(2, '0');
  return hours > 0 ? `${hours}:${String(minutes).padStart(2, '0')}:${seconds}` : `${minutes}:${seconds}`;
}

/** With --confirm-compromised: how many succeeded users Identity Protection was told of, and any refusal. */
function containmentLines({ containment }: JobSummary): string[] {
  if (!containment) return [];
  const lines = [
    `  confirmed compromised ${containment.confirmed}, not confirmed ${containment.notConfirmed}`,
  ];
  if (containment.refused) lines.push(`  containment refused for the job: ${containment.refused}`);
  return lines;
}

/**
 * 0: every row succeeded or was skipped (and, with --confirm-compromised, every succeeded user was
 * confirmed); 1: some users failed, are unconfirmed or were not confirmed compromised.
 */
export function exitCodeFor(summary: JobSummary): number {
  const notContained = summary.containment?.notConfirmed ?? 0;
  return summary.counts.failed + summary.counts.unconfirmed + summary.counts.cancelled + notContained > 0
    ? 1
    : 0;
}

export type ControlAction = 'pause' | 'resume' | 'cancel' | 'approve';

const CONTROL_UPDATES = {
  pause: pauseUpdate,
  resume: resumeUpdate,
  cancel: cancelUpdate,
  approve: approveUpdate,
};

/** Pauses, resumes, cancels or approves a running job; answers its progress after the change. */
export async function controlJob(
  client: Client,
  jobId: string,
  action: ControlAction,
  request: ControlRequest,
): Promise<JobProgress> {
  const status = await describeJob(client, jobId);
  if (status !== 'RUNNING') throw new JobFinishedError(jobId, action, statusWords(status));
  const handle = client.workflow.getHandle(jobId);
  let refusal: unknown;
  try {
    return await handle.executeUpdate(CONTROL_UPDATES[action], { args: [request] });
  } catch (error) {
    refusal = error;
  }
  // It may have ended between the look and the update.
  const now = await describeJob(client, jobId);
  if (now !== 'RUNNING') throw new JobFinishedError(jobId, action, statusWords(now));
  throw new JobCommandError(`cannot ${action} job ${jobId}: ${failureMessage(refusal)}`);
}
