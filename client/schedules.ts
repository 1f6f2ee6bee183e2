/**
 * `bulk-reset schedule create|list|delete`: recurring bulk resets (password rotations) through Temporal
 * Schedules.
 *
 * Each run of a schedule is its own job: Temporal starts `bulkReset` with the workflow id
 * `<schedule id>-<RFC 3339 time>` (e.g. `weekly-rotation-2025-11-23T03:00:00Z`), the workflow takes its
 * own id as the job id, and the job's files and report are under `jobs/<that id>/` like any other job's.
 *
 * The CSV is checked once, when the schedule is created, and its SHA-256 goes into every run: a run whose
 * CSV has changed since stops before any reset, and the schedule pauses (`pauseOnFailure`) rather than
 * fail again on every run. When the list of users changes, delete the schedule and create it again.
 */
import {
  type Client,
  type ScheduleDescription,
  ScheduleAlreadyRunning,
  ScheduleNotFoundError,
  ScheduleOverlapPolicy,
  type ScheduleSpec,
  WorkflowNotFoundError,
} from '@temporalio/client';
import { bulkReset } from '../workflows';
import {
  type BulkResetInput,
  DEFAULT_GENERATED_PASSWORD_LENGTH,
  DEFAULT_RESET_POLICY,
  type JobSummary,
  type ResetPolicy,
} from '../workflows/types';
import { type Settings, createClient, operatorIdentity } from '../temporal/config';
import { type JobFlagValues, policyFromFlags, printCsvCheck, refuseAppOnlyResetPassword } from './jobFlags';
import { parseDuration } from './durations';
import { type CsvCheck, DEFAULT_MAX_USERS, checkCsv, checkJobShape, failureMessage } from './jobs';

// ---------------------------------------------------------------------------------------------------------
// Types

/** When a schedule runs, as Temporal takes it and as the operator wrote it. */
export interface ScheduleTiming {
  spec: ScheduleSpec;
  /** `every 1h`, `cron "0 3 * * 0" (UTC)`: what `list` shows. */
  description: string;
}

export interface CreateScheduleOptions {
  scheduleId: string;
  timing: ScheduleTiming;
  windowSize?: number;
  policy?: Partial<ResetPolicy>;
  /** The operator creating the schedule: each run's report names it. */
  createdBy: string;
  /** Refuse a CSV with more users to reset than this, unless allowLarge (the blast-radius limit). */
  maxUsers?: number;
  allowLarge?: boolean;
}

/** What the schedule keeps for `list`, beside the action itself. */
interface ScheduleMemo {
  timing: string;
  createdBy: string;
}

export interface ScheduledRun {
  /** The run's workflow id, which is its job id. */
  jobId: string;
  startedAt: Date;
  /** Temporal's status of the run (`running`, `completed`, `failed`, ...), when it could be read. */
  status?: string;
}

export interface ScheduledJobs {
  scheduleId: string;
  timing: string;
  csvPath?: string;
  csvSha256?: string;
  paused: boolean;
  note?: string;
  nextRuns: Date[];
  /** Oldest first, as Temporal keeps them (its last ten). */
  recentRuns: ScheduledRun[];
}

// ---------------------------------------------------------------------------------------------------------
// Helpers

/**
 * A schedule id leaves room in the job-id pattern (128 characters of letters, digits, `.`, `_`, `:`, `-`)
 * for the `-<RFC 3339 time>` Temporal appends to name each run.
 */
const SCHEDULE_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

export function checkScheduleId(scheduleId: string): string {
  if (!SCHEDULE_ID_PATTERN.test(scheduleId)) {
    throw new Error(
      `schedule id "${scheduleId}" must be 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit`,
    );
  }
  return scheduleId;
}

/** Exactly one of `--every` (a duration) or `--cron` (five fields, UTC). */
export function scheduleTiming(every: string | undefined, cron: string | undefined): ScheduleTiming {
  if ((every === undefined) === (cron === undefined)) {
    throw new Error('say when the schedule runs: either --every (e.g. 1h) or --cron (e.g. "0 3 * * 0")');
  }
  if (every !== undefined) {
    const everyMs = parseDuration(every);
    if (everyMs < 1_000)
      throw new Error(`--every ${every} is too often: a schedule runs at most every second`);
    return { spec: { intervals: [{ every: everyMs }] }, description: `every ${every.trim()}` };
  }
  const expression = (cron as string).trim();
  if (expression.split(/\s+/).length !== 5) {
    throw new Error(
      `--cron "${expression}" must have five fields: minute hour day-of-month month day-of-week (UTC)`,
    );
  }
  return { spec: { cronExpressions: [expression] }, description: `cron "${expression}" (UTC)` };
}

/** The job each run starts: the CSV by reference and hash, and no job id, so each run's own id is used. */
export function scheduledJobInput(csv: CsvCheck, options: CreateScheduleOptions): BulkResetInput {
  const windowSize = checkJobShape(csv, options, 'each run');
  return {
    csv: { path: csv.path, sha256: csv.sha256 },
    windowSize,
    policy: { ...DEFAULT_RESET_POLICY, ...options.policy },
    startedBy: `schedule ${options.scheduleId} (created by ${options.createdBy})`,
    // Users started in batches, each reporting once (see BulkResetInput.userStarts).
    userStarts: 'batched',
  };
}

// ---------------------------------------------------------------------------------------------------------
// Schedules

/** Creates the schedule; refuses an id already taken. Answers the next run times. */
export async function createSchedule(
  client: Client,
  taskQueue: string,
  csv: CsvCheck,
  options: CreateScheduleOptions,
): Promise<Date[]> {
  const scheduleId = checkScheduleId(options.scheduleId);
  const input = scheduledJobInput(csv, options);
  const memo: ScheduleMemo = { timing: options.timing.description, createdBy: options.createdBy };
  const handle = await client.schedule
    .create({
      scheduleId,
      spec: options.timing.spec,
      action: {
        type: 'startWorkflow',
        workflowType: bulkReset,
        // Temporal appends `-<RFC 3339 time>` to this for each run: the runs' job ids.
        workflowId: scheduleId,
        taskQueue,
        args: [input],
        staticSummary: `scheduled bulk password reset of ${csv.runnableRows} users from ${csv.path}`,
      },
      policies: {
        // A rotation still running when the next is due is not doubled up: that run is skipped.
        overlap: ScheduleOverlapPolicy.SKIP,
        // A run that cannot run (the CSV changed, the data folder is gone) would fail again every time.
        pauseOnFailure: true,
      },
      memo: { bulkReset: memo },
    })
    .catch((error: unknown) => {
      if (error instanceof ScheduleAlreadyRunning) return undefined;
      throw error;
    });
  if (!handle) {
    throw new Error(
      `a schedule named ${scheduleId} already exists; to change it, delete it first (bulk-reset schedule delete ${scheduleId})`,
    );
  }
  return (await handle.describe()).info.nextActionTimes;
}

function isBulkReset(description: ScheduleDescription, taskQueue: string): boolean {
  return description.action.workflowType === bulkReset.name && description.action.taskQueue === taskQueue;
}

/** The bulk-reset schedules of this task queue, with their next and recent runs. */
export async function listSchedules(client: Client, taskQueue: string): Promise<ScheduledJobs[]> {
  const schedules: ScheduledJobs[] = [];
  for await (const summary of client.schedule.list()) {
    if (summary.action?.workflowType !== bulkReset.name) continue;
    let description: ScheduleDescription;
    try {
      // The list comes from Temporal's visibility store, which lags; the description is current.
      description = await client.schedule.getHandle(summary.scheduleId).describe();
    } catch (error) {
      if (error instanceof ScheduleNotFoundError) continue;
      throw error;
    }
    if (!isBulkReset(description, taskQueue)) continue;
    const input = description.action.args?.[0] as BulkResetInput | undefined;
    const memo = description.memo?.bulkReset as Partial<ScheduleMemo> | undefined;
    const recentRuns = await Promise.all(
      description.info.recentActions.map(async ({ takenAt, action }): Promise<ScheduledRun> => ({
        jobId: action.workflow.workflowId,
        startedAt: takenAt,
        status: await runStatus(client, action.workflow.workflowId),
      })),
    );
    schedules.push({
      scheduleId: description.scheduleId,
      timing: memo?.timing ?? describeSpec(description),
      csvPath: input?.csv.path,
      csvSha256: input?.csv.sha256,
      paused: description.state.paused,
      note: description.state.note || undefined,
      nextRuns: description.info.nextActionTimes,
      recentRuns,
    });
  }
  return schedules.sort((a, b) => a.scheduleId.localeCompare(b.scheduleId));
}

/** How a run ended, read from Temporal alone (no query), so that `list` works with no worker running. */
async function runStatus(client: Client, workflowId: string): Promise<string | undefined> {
  const handle = client.workflow.getHandle(workflowId);
  let status: string;
  try {
    status = (await handle.describe()).status.name;
  } catch (error) {
    if (error instanceof WorkflowNotFoundError) return 'gone (past retention)';
    return undefined;
  }
  if (status === 'COMPLETED') {
    const { counts } = (await handle.result()) as JobSummary;
    return `completed: ${counts.succeeded} succeeded, ${counts.failed} failed, ${counts.unconfirmed} unconfirmed, ${counts.skipped} skipped, ${counts.cancelled} cancelled`;
  }
  if (status === 'FAILED') {
    return handle.result().then(
      () => 'failed',
      (error: unknown) => `failed: ${failureMessage(error)}`,
    );
  }
  return status.toLowerCase();
}

/** For a schedule made without this CLI: its intervals in seconds, or a pointer to Temporal's own view. */
function describeSpec(description: ScheduleDescription): string {
  const intervals = description.spec.intervals ?? [];
  if (intervals.length > 0) return intervals.map(({ every }) => `every ${every / 1_000}s`).join(', ');
  return `calendar (temporal schedule describe --schedule-id ${description.scheduleId})`;
}

/**
 * Deletes a bulk-reset schedule of this task queue. Runs already started go on to the end; answers them.
 */
export async function deleteSchedule(
  client: Client,
  taskQueue: string,
  scheduleId: string,
): Promise<string[]> {
  const handle = client.schedule.getHandle(scheduleId);
  const description = await handle.describe().catch((error: unknown) => {
    if (error instanceof ScheduleNotFoundError) return undefined;
    throw error;
  });
  if (!description) throw new Error(`no schedule named ${scheduleId} (see bulk-reset schedule list)`);
  if (!isBulkReset(description, taskQueue)) {
    throw new Error(
      `schedule ${scheduleId} does not start bulk resets on task queue ${taskQueue}; not deleted (use the temporal CLI for other schedules)`,
    );
  }
  await handle.delete();
  return description.info.runningActions.map(({ workflow }) => workflow.workflowId);
}

// ---------------------------------------------------------------------------------------------------------
// The command

/** What `schedule create` reads from its flags. */
export interface ScheduleCreateFlags extends JobFlagValues {
  id: string;
  every?: string;
  cron?: string;
  allowLarge?: boolean;
  /** One JSON object on standard output, every message on standard error. */
  json?: boolean;
}

/** `bulk-reset schedule create <users.csv> --id NAME (--every 1h | --cron "0 3 * * 0") [job flags]`. */
export async function scheduleCreateCommand(
  settings: Settings,
  csvPath: string,
  flags: ScheduleCreateFlags,
): Promise<number> {
  const scheduleId = checkScheduleId(flags.id);
  const timing = scheduleTiming(flags.every, flags.cron);
  const flagged = policyFromFlags(flags);
  refuseAppOnlyResetPassword(settings.credential, flagged.method);
  // A passwordProfile PATCH carries the worker's password: each run generates them (nobody receives them;
  // users regain access through self-service reset, the helpdesk or a Temporary Access Pass).
  const policy =
    flagged.method === 'password-profile'
      ? { ...flagged, password: { mode: 'generated' as const, length: DEFAULT_GENERATED_PASSWORD_LENGTH } }
      : flagged;
  const csv = await checkCsv(csvPath);
  printCsvCheck(csv, "each run's report", flags.json ? process.stderr : process.stdout);
  if (csv.runnableRows === 0) throw new Error('no row of this CSV can be reset; no schedule was created');

  const client = await createClient(settings);
  const nextRuns = await createSchedule(client, settings.taskQueue, csv, {
    scheduleId,
    timing,
    createdBy: operatorIdentity(),
    maxUsers: settings.maxUsers ?? DEFAULT_MAX_USERS,
    allowLarge: flags.allowLarge,
    windowSize: flags.window,
    policy,
  });
  if (flags.json) {
    process.stdout.write(
      `${JSON.stringify({
        scheduleId,
        timing: timing.description,
        nextRuns: nextRuns.map((time) => time.toISOString()),
        csv: { path: csv.path, sha256: csv.sha256, runnableRows: csv.runnableRows },
      })}\n`,
    );
    return 0;
  }
  console.log(scheduleId);
  console.log(`  runs ${timing.description}; next: ${formatTimes(nextRuns.slice(0, 3))}`);
  console.log(`  each run is its own job, named ${scheduleId}-<time>; see bulk-reset schedule list`);
  console.log(
    `  the CSV is pinned by its SHA-256 (${csv.sha256.slice(0, 12)}…): if the file changes, runs stop before any reset and the schedule pauses; delete and create the schedule again when the list changes`,
  );
  return 0;
}

/** `bulk-reset schedule list`. */
export async function scheduleListCommand(settings: Settings): Promise<number> {
  const client = await createClient(settings);
  const schedules = await listSchedules(client, settings.taskQueue);
  if (schedules.length === 0) {
    console.log(`no bulk-reset schedules on task queue ${settings.taskQueue}`);
    return 0;
  }
  for (const schedule of schedules) console.log(formatSchedule(schedule));
  return 0;
}

/** `bulk-reset schedule delete <NAME>`. */
export async function scheduleDeleteCommand(
  settings: Settings,
  scheduleId: string,
  options: { json?: boolean } = {},
): Promise<number> {
  const client = await createClient(settings);
  const running = await deleteSchedule(client, settings.taskQueue, scheduleId);
  if (options.json) {
    process.stdout.write(`${JSON.stringify({ scheduleId, deleted: true, stillRunning: running })}\n`);
    return 0;
  }
  console.log(`schedule ${scheduleId} deleted; no further runs`);
  for (const jobId of running)
    console.log(`  still running, to the end: ${jobId} (bulk-reset watch ${jobId})`);
  return 0;
}

function formatTimes(times: Date[]): string {
  return times.length > 0 ? times.map((time) => time.toISOString()).join(', ') : 'none';
}

/** A schedule for `list`: its timing, state, CSV, next runs and recent runs (by job id). */
export function formatSchedule(schedule: ScheduledJobs): string {
  const lines = [
    `${schedule.scheduleId}  ${schedule.timing}${schedule.paused ? `  PAUSED${schedule.note ? `: ${schedule.note}` : ''}` : ''}`,
    `  csv:         ${schedule.csvPath ?? '?'}${schedule.csvSha256 ? ` (sha256 ${schedule.csvSha256.slice(0, 12)}…)` : ''}`,
    `  next runs:   ${schedule.paused ? 'none while paused' : formatTimes(schedule.nextRuns.slice(0, 3))}`,
  ];
  if (schedule.paused && schedule.note?.includes('workflow failure')) {
    lines.push('  a run failed (see below): if the CSV changed, delete the schedule and create it again');
  }
  if (schedule.recentRuns.length === 0) {
    lines.push('  recent runs: none yet');
  } else {
    lines.push('  recent runs (job ids):');
    for (const run of schedule.recentRuns) {
      lines.push(
        `    ${run.jobId}  started ${run.startedAt.toISOString()}  ${run.status ?? 'status unknown'}`,
      );
    }
  }
  return lines.join('\n');
}
