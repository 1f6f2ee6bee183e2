/**
 * A bulk reset job: every row of a CSV, reset by its own resetUser workflow, in a sliding window.
 */
import {
  ParentClosePolicy,
  WorkflowIdReusePolicy,
  allHandlersFinished,
  condition,
  continueAsNew,
  defineQuery,
  proxyActivities,
  setHandler,
  startChild,
  workflowInfo,
} from '@temporalio/workflow';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import type { Activities } from '../activities';
import { resetUser, userFinishedSignal } from './resetUser';
import {
  type BulkResetCarried,
  type BulkResetInput,
  type InFlightUser,
  type JobProgress,
  type JobSummary,
  type ResetOutcome,
  type UserRow,
  emptyCounts,
} from './types';

// ---------------------------------------------------------------------------------------------
// Messages

export const progressQuery = defineQuery<JobProgress>('progress');

// ---------------------------------------------------------------------------------------------
// Helpers

/** Rows read from the job's row file at a time. */
const PAGE_SIZE = 250;
/** Outcomes are written to the ledger in batches of at most this many... */
const FLUSH_SIZE = 200;
/** ...or after they have waited this long. */
const FLUSH_INTERVAL_MS = 2_000;
/** Continue as new well before Temporal's 10,240-event warning. */
const DEFAULT_MAX_HISTORY_EVENTS = 4_000;

const jobActivities = proxyActivities<Activities>({
  startToCloseTimeout: '5 minutes',
  retry: { initialInterval: '1 second', maximumInterval: '1 minute' },
});

/** A user's workflow id: derived from the job and the user, so a user can never be started twice in a job. */
export function userWorkflowId(jobId: string, row: UserRow): string {
  return `${jobId}/user-${row.key}`;
}

// ---------------------------------------------------------------------------------------------
// Workflow

/**
 * Resets every user of a CSV and reports what happened to each row.
 *
 * Guarantees:
 * - Every data row of the CSV ends with exactly one outcome in the report: invalid and duplicate rows are
 *   skipped with their reason before anything is reset; every other row gets its own resetUser workflow,
 *   whose id is derived from the job and the user, and whose outcome is recorded.
 * - Never more than `windowSize` users in flight.
 * - The CSV is read by reference, after checking its SHA-256: a changed file stops the job before any reset.
 * - State stays small (counters, one window, one page of rows) and the history bounded: the job continues
 *   as new with its in-flight users, who report to whichever run is current.
 */
export async function bulkReset(input: BulkResetInput): Promise<JobSummary> {
  const { csv, windowSize } = input;
  const jobId = input.jobId ?? workflowInfo().workflowId;
  const maxHistoryEvents = input.maxHistoryEvents ?? DEFAULT_MAX_HISTORY_EVENTS;
  let phase: JobProgress['phase'] = input.carried ? 'running' : 'preparing';
  let carried: BulkResetCarried | undefined = input.carried;
  const inFlight = new Map<number, InFlightUser>((carried?.inFlight ?? []).map((user) => [user.row, user]));
  const buffered: ResetOutcome[] = [];

  setHandler(progressQuery, () => ({
    jobId,
    phase,
    total: carried?.prepared.totalRows,
    done: carried ? Object.values(carried.counts).reduce((sum, count) => sum + count, 0) : 0,
    inFlight: inFlight.size,
    dispatched: carried?.dispatched ?? 0,
    counts: carried?.counts ?? emptyCounts(),
    runs: carried?.runs ?? 1,
    startedAt: carried?.startedAt,
  }));

  const settle = (outcome: ResetOutcome): void => {
    // A user reports once; a second report (or one for a row not in flight) is ignored.
    if (!carried || !inFlight.delete(outcome.row)) return;
    carried.counts[outcome.status] += 1;
    buffered.push(outcome);
  };
  setHandler(userFinishedSignal, settle);

  if (!carried) {
    const prepared = await jobActivities.prepareJob({ jobId, csv });
    carried = {
      prepared,
      startedAt: new Date(Date.now()).toISOString(),
      nextByteOffset: 0,
      rowsExhausted: prepared.runnableRows === 0,
      pendingRows: [],
      inFlight: [],
      counts: { ...emptyCounts(), skipped: prepared.skippedRows },
      dispatched: 0,
      runs: 1,
    };
    phase = 'running';
  }
  const state: BulkResetCarried = carried;

  const flush = async (): Promise<void> => {
    while (buffered.length > 0) {
      const batch = buffered.slice(0, FLUSH_SIZE);
      await jobActivities.recordOutcomes({ jobId, outcomes: batch });
      buffered.splice(0, batch.length);
    }
  };

  const hasRowsLeft = () => state.pendingRows.length > 0 || !state.rowsExhausted;
  const canStartMore = () => inFlight.size < windowSize && hasRowsLeft();
  const finished = () => !hasRowsLeft() && inFlight.size === 0;

  const startUsers = async (): Promise<void> => {
    const starts: Promise<void>[] = [];
    while (canStartMore()) {
      if (state.pendingRows.length === 0) {
        const page = await jobActivities.readRows({
          jobId,
          byteOffset: state.nextByteOffset,
          limit: PAGE_SIZE,
        });
        state.pendingRows = page.rows;
        state.nextByteOffset = page.nextByteOffset;
        state.rowsExhausted = page.exhausted;
        continue;
      }
      const target = state.pendingRows.shift() as UserRow;
      const workflowId = userWorkflowId(jobId, target);
      inFlight.set(target.row, { row: target.row, user: target.user, workflowId });
      state.dispatched += 1;
      starts.push(startUser(target, workflowId));
    }
    await Promise.all(starts);
  };

  const startUser = async (target: UserRow, workflowId: string): Promise<void> => {
    try {
      const handle = await startChild(resetUser, {
        workflowId,
        args: [{ jobId, target, policy: input.policy }],
        // Users outlive a run of the job (continue-as-new) and report to whichever run is current.
        parentClosePolicy: ParentClosePolicy.ABANDON,
        workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
        staticSummary: `reset row ${target.row} of job ${jobId}`,
      });
      // A user's workflow that ends without reporting (terminated, timed out) still gets an outcome.
      handle.result().catch((error: Error) =>
        settle({
          row: target.row,
          user: target.user,
          status: 'failed',
          reason: `the user's workflow ${workflowId} ended without an outcome: ${error.message}`,
          polls: 0,
          startAttempts: 0,
        }),
      );
    } catch (error) {
      if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
      settle({
        row: target.row,
        user: target.user,
        status: 'skipped',
        reason: `a reset for this user was already started in this job (${workflowId}); not started twice`,
        polls: 0,
        startAttempts: 0,
      });
    }
  };

  const shouldContinueAsNew = () =>
    workflowInfo().continueAsNewSuggested || workflowInfo().historyLength >= maxHistoryEvents;

  for (;;) {
    await startUsers();
    if (buffered.length >= FLUSH_SIZE) await flush();
    if (finished()) break;
    if (shouldContinueAsNew()) {
      await flush();
      await condition(allHandlersFinished);
      // Reports that arrive after this are delivered to the new run: the user ids stay the same. One that
      // slipped in meanwhile is flushed on the next pass rather than carried.
      if (buffered.length === 0) {
        return continueAsNew<typeof bulkReset>({
          ...input,
          jobId,
          carried: { ...state, inFlight: [...inFlight.values()], runs: state.runs + 1 },
        });
      }
      continue;
    }
    const wake = () => canStartMore() || buffered.length >= FLUSH_SIZE || finished();
    if (buffered.length === 0) {
      await condition(wake);
    } else if (!(await condition(wake, FLUSH_INTERVAL_MS))) {
      await flush();
    }
  }

  await flush();
  phase = 'reporting';
  const summary = await jobActivities.writeReport({ jobId, csv, startedAt: state.startedAt });
  phase = 'done';
  return summary;
}
