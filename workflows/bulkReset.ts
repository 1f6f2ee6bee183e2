/**
 * A bulk reset job: every row of a CSV, reset by its own resetUser workflow, in a sliding window that an
 * operator can pause, resume or cancel, after an optional approval by a second identity.
 */
import {
  ParentClosePolicy,
  WorkflowIdReusePolicy,
  allHandlersFinished,
  condition,
  continueAsNew,
  defineQuery,
  defineUpdate,
  getExternalWorkflowHandle,
  log,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  sleep,
  startChild,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import {
  ActivityFailure,
  ApplicationFailure,
  WorkflowExecutionAlreadyStartedError,
} from '@temporalio/common';
import type { Activities } from '../activities';
import { countAmbiguousResends, countOutcomes } from './metrics';
import { CONFIRM_RETRY, CONFIRM_SPACING_MS, INHERITED_CHECK_RETRY, JOB_FILE_RETRY } from './waits';
import {
  MAX_PENDING_CONFIRMATIONS,
  batchDue,
  confirmedOutcomes,
  emptyContainment,
  giveUpPending,
  nextBatch,
  notConfirmedOutcome,
  settleBatch,
} from './containment';
import { resetUser, signInSignal, userFinishedSignal } from './resetUser';
import {
  type BulkResetCarried,
  type BulkResetInput,
  CONTAINMENT_REFUSED,
  type ContainmentState,
  DEFAULT_MAX_HISTORY_EVENTS,
  type ControlRequest,
  type InFlightUser,
  JOB_ID_SEARCH_ATTRIBUTE,
  JOB_PHASE_SEARCH_ATTRIBUTE,
  type JobControl,
  type JobPhase,
  type JobProgress,
  type JobSummary,
  type ResetOutcome,
  type ResetUserInput,
  type UserRow,
  REFUSED_PAYLOAD_REASON,
  emptyCounts,
  writeTaskQueue,
  isRefusedPayload,
  outcomeOfFailedUser,
  refuseUnsealedInput,
  normaliseOperator,
  sameOperator,
  userWorkflowsQuery,
} from './types';

// ---------------------------------------------------------------------------------------------
// Messages

export const progressQuery = defineQuery<JobProgress>('progress');

/** Start no new users; those in flight finish. Answers the progress after the change. */
export const pauseUpdate = defineUpdate<JobProgress, [ControlRequest]>('pause');
export const resumeUpdate = defineUpdate<JobProgress, [ControlRequest]>('resume');
/**
 * End the job: users in flight are cancelled (each reports how far it got), users never started are
 * recorded as cancelled, and the report is written as usual.
 */
export const cancelUpdate = defineUpdate<JobProgress, [ControlRequest]>('cancel');
/** Let a job that waits for approval run; refused for the identity that started it. */
export const approveUpdate = defineUpdate<JobProgress, [ControlRequest]>('approve');

// ---------------------------------------------------------------------------------------------
// Helpers

/** Rows read from the job's row file at a time. */
const PAGE_SIZE = 250;
/** Outcomes are written to the ledger in batches of at most this many... */
const FLUSH_SIZE = 200;
/** ...or after they have waited this long. */
const FLUSH_INTERVAL_MS = 2_000;
/** How often a run looks for users it inherited whose workflows ended without reporting. */
const DEFAULT_INHERITED_CHECK_MS = 2 * 60_000;
/** Marks the runs that look for such users; runs recorded before it never did. */
export const INHERITED_CHECK_PATCH = 'check-inherited-users';
/** Marks the runs that keep a report arriving before its user is in flight; runs before it ignored it. */
export const EARLY_REPORTS_PATCH = 'early-reports';
/** Marks the runs that flush buffered outcomes by how long the wait lasted, not by what ended it. */
export const FLUSH_ON_TIME_PATCH = 'flush-on-time';
/** Marks the runs that decide an approval wait by the job's state after it, not by what ended it. */
export const APPROVAL_BY_STATE_PATCH = 'approval-by-state';
/**
 * Users started by one startUsers activity at most (jobs with `userStarts: 'batched'`), and the room the
 * window must have before a batch is started: one activity's few events are shared by this many users,
 * where a child cost the job's history four events of its own. A quarter of the window for small windows.
 */
const START_BATCH_SIZE = 50;

/** Once per job: read or write every row (the CSV, the report), so they may take minutes on 100,000 rows. */
const jobActivities = proxyActivities<Activities>({
  startToCloseTimeout: '5 minutes',
  retry: JOB_FILE_RETRY,
});

/**
 * Many times per job, each one page of rows or one batch of outcomes: done in milliseconds, so a short
 * timeout lets another worker take over soon when the one running it dies, instead of the whole job
 * standing still for five minutes.
 */
const pageActivities = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: JOB_FILE_RETRY,
});

/**
 * Starts a batch of users (jobs with `userStarts: 'batched'`): up to START_BATCH_SIZE workflow starts, so
 * seconds under load. A local activity: the batch costs the job's history one marker, inside the workflow
 * task that decided it, where an activity cost three events and a workflow task of its own. Retried until
 * it succeeds, and run again if the worker is lost mid-way: a second run cannot start a user twice (see
 * startUsers).
 */
const userStarter = proxyLocalActivities<Activities>({
  summary: "start a batch of the job's users",
  startToCloseTimeout: '1 minute',
  retry: JOB_FILE_RETRY,
});

/** A user's workflow id: derived from the job and the user, so a user can never be started twice in a job. */
export function userWorkflowId(jobId: string, row: UserRow): string {
  return `${jobId}/user-${row.key}`;
}

/** What a user said before it was in flight: its outcome, whether it waits for the operator's sign-in. */
interface EarlyReport {
  outcome?: ResetOutcome;
  needsSignIn?: boolean;
}

/** The outcome of a user whose workflow ended without reporting one: failed, with why. */
function endedWithoutOutcome(user: { row: number; user: string }, reason: string): ResetOutcome {
  return { row: user.row, user: user.user, status: 'failed', reason, polls: 0, startAttempts: 0 };
}

/** Why a control request is refused, or undefined when it may go ahead. */
function refusal(phase: JobPhase, request: ControlRequest): string | undefined {
  if (isRefusedPayload(request)) return `the request is refused: ${REFUSED_PAYLOAD_REASON}`;
  if (!request || typeof request.by !== 'string' || normaliseOperator(request.by) === '') {
    return 'say who you are: the request needs a non-empty "by"';
  }
  if (phase === 'reporting' || phase === 'done') return 'the job has already finished';
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Workflow

/**
 * Resets every user of a CSV and reports what happened to each row.
 *
 * Guarantees:
 * - Every data row of the CSV ends with exactly one outcome in the report: invalid, duplicate, protected
 *   and unplanned rows are skipped with their reason before anything is reset; every other row gets its
 *   own resetUser workflow, whose id is derived from the job and the user, and whose outcome is recorded;
 *   on cancel, rows never started are recorded as cancelled.
 * - Never more than `windowSize` users in flight; none started while paused, before approval, or while a
 *   user waits for the operator's sign-in (phase `needs-sign-in`).
 * - The CSV (and the plan, if any) is read by reference after checking its SHA-256: a changed file stops
 *   the job before any reset.
 * - State stays small (counters, one window, one page of rows) and the history bounded: the job continues
 *   as new with its in-flight users, who report to whichever run is current.
 */
export async function bulkReset(input: BulkResetInput): Promise<JobSummary> {
  refuseUnsealedInput(input, "this job's", 'nothing was reset');
  const { csv, windowSize } = input;
  const jobId = input.jobId ?? workflowInfo().workflowId;
  // Users started in batches by an activity, reporting once by signal (see userStarts); else children.
  const batched = input.userStarts === 'batched';
  const startBatchSize = Math.max(1, Math.min(START_BATCH_SIZE, Math.ceil(windowSize / 4)));
  const maxHistoryEvents = input.maxHistoryEvents ?? DEFAULT_MAX_HISTORY_EVENTS;
  let carried: BulkResetCarried | undefined = input.carried;
  const control: JobControl = carried?.control ?? { paused: false };
  const inFlight = new Map<number, InFlightUser>((carried?.inFlight ?? []).map((user) => [user.row, user]));
  const buffered: ResetOutcome[] = [];
  let finishing = false;
  // Containment (policy.confirmCompromised): succeeded outcomes wait here for their batch; see containment.ts.
  const containment: ContainmentState | undefined = input.policy.confirmCompromised
    ? (carried?.containment ?? emptyContainment())
    : undefined;

  const usersNeedingSignIn = (): number => [...inFlight.values()].filter((user) => user.needsSignIn).length;
  const currentPhase = (): JobPhase => {
    if (finishing) return 'reporting';
    if (!carried) return 'preparing';
    if (control.cancel) return 'cancelling';
    if (input.approval && !control.approvedBy) return 'awaiting-approval';
    if (usersNeedingSignIn() > 0) return 'needs-sign-in';
    return control.paused ? 'paused' : 'running';
  };
  let shownPhase: JobPhase | undefined;
  /** Keeps the phase search attribute current, so operators can find paused or waiting jobs. */
  const showPhase = (phase: JobPhase = currentPhase()): void => {
    if (phase !== shownPhase) {
      shownPhase = phase;
      upsertSearchAttributes([
        { key: JOB_ID_SEARCH_ATTRIBUTE, value: jobId },
        { key: JOB_PHASE_SEARCH_ATTRIBUTE, value: phase },
      ]);
    }
    showDetails();
  };

  /** The job's page in the Web UI says what it is and how far it got (no events: read by query). */
  const showDetails = (): void => setCurrentDetails(jobDetails(progress(), csv.path));

  const progress = (): JobProgress => ({
    jobId,
    phase: shownPhase === 'done' ? 'done' : currentPhase(),
    total: carried?.prepared.totalRows,
    done: carried ? Object.values(carried.counts).reduce((sum, count) => sum + count, 0) : 0,
    inFlight: inFlight.size,
    needSignIn: usersNeedingSignIn(),
    dispatched: carried?.dispatched ?? 0,
    counts: carried?.counts ?? emptyCounts(),
    runs: carried?.runs ?? 1,
    startedAt: carried?.startedAt,
    startedBy: input.startedBy,
    approvedBy: control.approvedBy,
    cancelledBy: control.cancel?.by,
    runnable: carried?.prepared.runnableRows,
    rowsSha256: carried?.prepared.rowsSha256,
  });
  setHandler(progressQuery, progress);

  const validator =
    (extra?: (request: ControlRequest) => string | undefined) => (request: ControlRequest) => {
      const problem = refusal(currentPhase(), request) ?? extra?.(request);
      if (problem)
        throw ApplicationFailure.create({ message: problem, type: 'ControlRefused', nonRetryable: true });
    };
  setHandler(
    pauseUpdate,
    ({ by }) => {
      control.paused = true;
      control.pausedBy = normaliseOperator(by);
      showPhase();
      return progress();
    },
    {
      validator: validator(() =>
        control.cancel ? `the job is being cancelled (by ${control.cancel.by})` : undefined,
      ),
    },
  );
  setHandler(
    resumeUpdate,
    () => {
      control.paused = false;
      control.pausedBy = undefined;
      showPhase();
      return progress();
    },
    {
      validator: validator(() =>
        control.cancel ? `the job is being cancelled (by ${control.cancel.by})` : undefined,
      ),
    },
  );
  setHandler(
    cancelUpdate,
    ({ by, reason }) => {
      const operator = normaliseOperator(by);
      control.cancel ??= {
        by: operator,
        at: new Date(Date.now()).toISOString(),
        reason: reason ?? `cancelled by ${operator}`,
      };
      showPhase();
      return progress();
    },
    { validator: validator() },
  );
  setHandler(
    approveUpdate,
    ({ by }) => {
      control.approvedBy ??= normaliseOperator(by);
      control.approvedAt ??= new Date(Date.now()).toISOString();
      showPhase();
      return progress();
    },
    {
      validator: validator(({ by, rowsSha256 }) => {
        if (!input.approval) return 'this job was not started with approval required';
        if (control.approvedBy) return undefined;
        if (control.cancel) return `the job is being cancelled (by ${control.cancel.by})`;
        // Look-alike names (full-width letters, a zero-width space) are the same operator.
        if (sameOperator(by, input.startedBy)) {
          return `${normaliseOperator(by)} started this job and cannot also approve it: another operator must`;
        }
        const prepared = carried?.prepared.rowsSha256;
        if (rowsSha256 !== undefined) {
          const shown = String(rowsSha256).toLowerCase();
          if (!prepared) return 'the job has not finished preparing its rows: look again, then approve';
          if (shown.length < 12 || !prepared.startsWith(shown)) {
            return `the job's prepared rows (SHA-256 ${prepared.slice(0, 12)}…) are not the ones you were shown (${shown.slice(0, 12)}…): look again before approving`;
          }
        }
        return undefined;
      }),
    },
  );

  /**
   * Reports that came before their user was in flight. A batch's users run as soon as startUsers has
   * started them, before the job's workflow task that started them is recorded: when that task is lost (its
   * worker killed, the server restarted), Temporal runs it again from the history, where their reports may
   * already be, and hands them over before the job has put those users in flight again. Each is kept until
   * its user is (see putInFlight); runs recorded before this ignored them (EARLY_REPORTS_PATCH).
   */
  const early = new Map<number, EarlyReport>();
  const keepEarly = (row: number, report: EarlyReport): void => {
    if (!batched || !patched(EARLY_REPORTS_PATCH)) return;
    early.set(row, { ...early.get(row), ...report });
  };
  /** A user is in flight from here until it reports; one that already did is settled at once. */
  const putInFlight = (user: InFlightUser): void => {
    inFlight.set(user.row, user);
    const report = early.get(user.row);
    if (!report) return;
    early.delete(user.row);
    if (report.needsSignIn) user.needsSignIn = true;
    if (report.outcome) settle(report.outcome);
  };
  const settle = (outcome: ResetOutcome): void => {
    // A user reports once; a second report is ignored, one for a row not in flight yet is kept for it.
    const user = inFlight.get(outcome.row);
    if (!user) return keepEarly(outcome.row, { outcome });
    if (!carried) return;
    inFlight.delete(outcome.row);
    carried.counts[outcome.status] += 1;
    countOutcomes(outcome.status);
    countAmbiguousResends(outcome.ambiguousResends);
    if (containment && outcome.status === 'succeeded') holdForContainment(outcome);
    else buffered.push(outcome);
    if (user.needsSignIn) showPhase();
  };
  /** A succeeded user waits for its containment batch, unless no batch will be sent for it. */
  const holdForContainment = (outcome: ResetOutcome): void => {
    const state = containment as ContainmentState;
    const givenUp = state.refused ?? (control.cancel ? cancelledBeforeConfirming() : undefined);
    if (givenUp !== undefined) {
      state.notConfirmed += 1;
      buffered.push(notConfirmedOutcome(outcome, givenUp));
      return;
    }
    state.pending.push(outcome);
    state.pendingSinceMs ??= Date.now();
  };
  const cancelledBeforeConfirming = (): string =>
    `the job was cancelled by ${control.cancel?.by ?? 'an operator'} before this user was confirmed compromised`;
  setHandler(userFinishedSignal, (outcome) => {
    if (isRefusedPayload(outcome)) {
      log.warn(`an outcome signal was ignored: ${REFUSED_PAYLOAD_REASON}`);
      return;
    }
    settle(outcome);
  });
  // While any user waits for the operator's sign-in, nobody else is started: they would only wait too.
  setHandler(signInSignal, (state) => {
    if (isRefusedPayload(state)) {
      log.warn(`a sign-in signal was ignored: ${REFUSED_PAYLOAD_REASON}`);
      return;
    }
    const { row, needed } = state;
    const user = inFlight.get(row);
    if (!user) return keepEarly(row, { needsSignIn: needed });
    user.needsSignIn = needed || undefined;
    showPhase();
  });

  showPhase();
  if (!carried) {
    const prepared = await jobActivities.prepareJob({
      jobId,
      csv,
      plan: input.plan,
      password: input.policy.password,
      secretsRecipient: input.secretsRecipient,
    });
    countOutcomes('skipped', prepared.skippedRows);
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
      control,
    };
    showPhase();
  }
  const state: BulkResetCarried = carried;

  // A user this run started gets an outcome even if its workflow is terminated: the child's result
  // fails (see startUser). A user inherited from an earlier run can only report by signal, so if its
  // workflow ends without one (terminated from the Web UI, say) this run would wait for it forever; it
  // asks Temporal now and then instead, beside the main loop, which it never holds up: the loop sees the
  // outcomes it settles. Runs recorded before this check never started its timer. Users started in
  // batches (userStarts) are nobody's children: every one of them is checked like an inherited user.
  const inherited = new Set((input.carried?.inFlight ?? []).map((user) => user.row));
  const inheritedCheckMs = input.inheritedCheckMs ?? DEFAULT_INHERITED_CHECK_MS;
  const inheritedCheck = proxyActivities<Activities>({
    summary: 'look for inherited users whose workflows ended without reporting',
    startToCloseTimeout: '1 minute',
    // Given up after a while rather than retried forever: the next check asks again.
    scheduleToCloseTimeout: Math.max(inheritedCheckMs, 60_000),
    retry: INHERITED_CHECK_RETRY,
  });
  // Users started in batches are nobody's children: like inherited users they report only by signal, so
  // the check covers every user in flight of such a job.
  // Not those of a batch whose startUsers has not answered yet: Temporal may not know them yet.
  const starting = new Set<number>();
  const watched = (): InFlightUser[] =>
    batched
      ? [...inFlight.values()].filter((user) => !starting.has(user.row))
      : [...inherited].flatMap((row) => inFlight.get(row) ?? []);
  let checkArmed = false;
  const settleEndedInherited = async (): Promise<void> => {
    checkArmed = false;
    const waiting = watched();
    if (waiting.length === 0) return;
    try {
      const ended = await inheritedCheck.endedUserWorkflows({
        workflowIds: waiting.map((user) => user.workflowId),
      });
      const byId = new Map(waiting.map((user) => [user.workflowId, user]));
      for (const { workflowId, status, outcome } of ended) {
        const user = byId.get(workflowId);
        // A user whose report arrived meanwhile is no longer in flight, and settle ignores it. One whose
        // report never came gets the outcome its workflow ended with (answers recorded before the outcome
        // was read have none).
        if (user)
          settle(
            outcome?.row === user.row
              ? outcome
              : endedWithoutOutcome(
                  user,
                  `the user's workflow ${workflowId} ended without an outcome: ${status}`,
                ),
          );
      }
    } catch (error) {
      log.warn('could not tell whether inherited users ended without reporting; asking again later', {
        error: error instanceof Error ? error.message : String(error),
      });
    }
    armInheritedCheck();
  };
  const armInheritedCheck = (): void => {
    if (checkArmed || watched().length === 0) return;
    checkArmed = true;
    void sleep(inheritedCheckMs, {
      summary: batched
        ? 'then look for users whose workflows ended without reporting'
        : `then look for users inherited from an earlier run whose workflows ended without reporting`,
    }).then(settleEndedInherited);
  };
  // Batched jobs were all started after the check existed: they need no patch marker for it.
  if (batched) armInheritedCheck();
  else if (inherited.size > 0 && patched(INHERITED_CHECK_PATCH)) armInheritedCheck();

  if (input.approval && !control.approvedBy && !control.cancel) {
    const deadlineMs = Date.parse(state.startedAt) + input.approval.timeoutMs;
    const isDecided = (): boolean => control.approvedBy !== undefined || control.cancel !== undefined;
    const decidedInTime = await condition(isDecided, Math.max(deadlineMs - Date.now(), 0));
    // An approval that comes in the same workflow task as the deadline's timer counts, whichever of the two
    // the SDK hands over first (the order is not in the history, so a replay could see the other one).
    // Runs before this went by the order.
    const decided = patched(APPROVAL_BY_STATE_PATCH) ? isDecided() : decidedInTime;
    if (!decided) {
      control.cancel = {
        by: 'approval timeout',
        at: new Date(Date.now()).toISOString(),
        reason: `nobody approved the job within ${Math.round(input.approval.timeoutMs / 60_000)} min`,
      };
    }
    showPhase();
  }

  const containmentActivities = proxyActivities<Activities>({
    summary: 'confirm a batch of reset users compromised in Identity Protection',
    // One request per batch, counted against the tenant's write budget like every other write.
    taskQueue: writeTaskQueue(workflowInfo().taskQueue),
    // Up to CONFIRM_BATCH_SIZE user lookups (ten at a time) and the one request.
    startToCloseTimeout: input.policy.requestTimeoutMs * 8 + 5_000,
    // Given up after the users' own deadline (at least five minutes): its rows then say why.
    scheduleToCloseTimeout: Math.max(input.policy.deadlineMs, 5 * 60_000),
    retry: CONFIRM_RETRY,
  });
  let confirming: Promise<void> | undefined;
  /** Batches ended so far in this run: the main loop's wait ends when one does. */
  let batchesEnded = 0;
  /** Sends the next batch, at least CONFIRM_SPACING_MS after the last one ended, and records its rows. */
  const confirmBatch = async (): Promise<void> => {
    const state = containment as ContainmentState;
    const batch = nextBatch(state);
    const waitMs = (state.lastSentAtMs ?? -Infinity) + CONFIRM_SPACING_MS - Date.now();
    if (waitMs > 0) {
      await sleep(waitMs, { summary: "keep to Identity Protection's one request a second" });
    }
    let outcomes: ResetOutcome[];
    try {
      const result = await containmentActivities.confirmCompromised({
        users: batch.map(({ row, user }) => ({ row, user })),
      });
      outcomes = confirmedOutcomes(batch, result);
    } catch (error) {
      const failure = error instanceof ActivityFailure ? error.cause : error;
      const message = failure instanceof Error ? failure.message : String(failure);
      if (failure instanceof ApplicationFailure && failure.type === CONTAINMENT_REFUSED) {
        state.refused = message;
        log.warn(`containment refused for the whole job: ${message}`);
      }
      outcomes = batch.map((outcome) =>
        notConfirmedOutcome(outcome, state.refused ?? `confirmCompromised failed: ${message}`),
      );
    }
    state.lastSentAtMs = Date.now();
    buffered.push(...settleBatch(state, outcomes, Date.now()));
    if (state.refused !== undefined) buffered.push(...giveUpPending(state, state.refused, Date.now()));
  };
  /** Starts the next batch beside the main loop when one is due and none is on its way. */
  const startConfirming = (): void => {
    if (!containment || confirming) return;
    if (control.cancel && containment.pending.length > 0) {
      buffered.push(...giveUpPending(containment, cancelledBeforeConfirming(), Date.now()));
      return;
    }
    if (!batchDue(containment, Date.now(), allReported())) return;
    confirming = confirmBatch().finally(() => {
      confirming = undefined;
      batchesEnded += 1;
    });
  };
  const holdingForContainment = (): boolean =>
    containment !== undefined && (containment.pending.length > 0 || confirming !== undefined);

  const flush = async (): Promise<void> => {
    // The Web UI's counts are refreshed once a flush, not once a user: building them walks the window.
    showDetails();
    while (buffered.length > 0) {
      const batch = buffered.slice(0, FLUSH_SIZE);
      await pageActivities.recordOutcomes({ jobId, outcomes: batch });
      buffered.splice(0, batch.length);
    }
  };

  const hasRowsLeft = () => state.pendingRows.length > 0 || !state.rowsExhausted;
  const shouldContinueAsNew = () =>
    workflowInfo().continueAsNewSuggested || workflowInfo().historyLength >= maxHistoryEvents;
  // Once this run is due to continue as new it starts nobody else, so its history stops near the limit.
  const canStartMore = () =>
    !control.paused &&
    !control.cancel &&
    usersNeedingSignIn() === 0 &&
    inFlight.size < windowSize &&
    hasRowsLeft() &&
    !shouldContinueAsNew() &&
    !(containment && containment.pending.length >= MAX_PENDING_CONFIRMATIONS);
  /**
   * Whether to start users now. Children start as soon as the window has room; batched users wait until it
   * has room for a batch (or nobody is in flight, or every row left fits), so each startUsers activity
   * starts many.
   */
  const startDue = (): boolean => {
    if (!canStartMore()) return false;
    if (!batched) return true;
    const room = windowSize - inFlight.size;
    return (
      room >= startBatchSize ||
      inFlight.size === 0 ||
      (state.rowsExhausted && state.pendingRows.length <= room)
    );
  };
  const allReported = () => !hasRowsLeft() && inFlight.size === 0;
  const finished = () => allReported() && !holdingForContainment();
  const cancelPending = () => control.cancel !== undefined && !control.cancelRecorded;

  const startUsers = async (): Promise<void> => {
    const starts: Promise<void>[] = [];
    const batch: UserRow[] = [];
    // Children are started as before, one by one as the window frees up.
    if (batched && !startDue()) return;
    while (canStartMore()) {
      if (state.pendingRows.length === 0) {
        const page = await pageActivities.readRows({
          jobId,
          byteOffset: state.nextByteOffset,
          limit: PAGE_SIZE,
          rowsSha256: state.prepared.rowsSha256,
        });
        state.pendingRows = page.rows;
        state.nextByteOffset = page.nextByteOffset;
        state.rowsExhausted = page.exhausted;
        continue;
      }
      const target = state.pendingRows.shift() as UserRow;
      const workflowId = userWorkflowId(jobId, target);
      putInFlight({ row: target.row, user: target.user, workflowId });
      state.dispatched += 1;
      if (batched) batch.push(target);
      else starts.push(startUser(target, workflowId));
    }
    for (let first = 0; first < batch.length; first += START_BATCH_SIZE) {
      starts.push(startBatch(batch.slice(first, first + START_BATCH_SIZE)));
    }
    await Promise.all(starts);
    if (batched) armInheritedCheck();
  };

  /** What a user's workflow is started with, as a child or in a batch. */
  const userInput = (target: UserRow): ResetUserInput => ({
    jobId,
    target,
    policy: input.policy,
    polls: 'local',
    followThrough: true,
    endState: 'outcome',
    ...(input.userMaxHistoryEvents !== undefined && { continueAsNewAt: input.userMaxHistoryEvents }),
    // In password mode csv the user's worker reads the row's password from the CSV itself.
    ...(input.policy.password?.mode === 'csv' && { csv }),
  });
  const staticSummaryOf = (target: UserRow): string => `reset row ${target.row} of job ${jobId}`;

  /**
   * Starts a batch of users through one activity (see startUsers in activities). They are in flight from
   * now on whether this attempt or an earlier one started them: each reports once, by signal, and one
   * that ends without reporting is found by the periodic check (armInheritedCheck).
   */
  const startBatch = async (targets: UserRow[]): Promise<void> => {
    for (const target of targets) starting.add(target.row);
    await userStarter.startUsers({
      jobId,
      taskQueue: workflowInfo().taskQueue,
      users: targets.map((target) => ({
        workflowId: userWorkflowId(jobId, target),
        input: { ...userInput(target), reportTo: jobId },
        staticSummary: staticSummaryOf(target),
      })),
    });
    for (const target of targets) starting.delete(target.row);
  };

  const startUser = async (target: UserRow, workflowId: string): Promise<void> => {
    try {
      const handle = await startChild(resetUser, {
        workflowId,
        args: [userInput(target)],
        // Users outlive a run of the job (continue-as-new) and report to whichever run is current.
        parentClosePolicy: ParentClosePolicy.ABANDON,
        workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
        staticSummary: staticSummaryOf(target),
        typedSearchAttributes: [{ key: JOB_ID_SEARCH_ATTRIBUTE, value: jobId }],
      });
      // A user's workflow that ends without reporting (terminated, timed out) still gets an outcome. A
      // failed user's workflow fails with its outcome, which the signal has normally brought already.
      handle
        .result()
        .catch((error: Error) =>
          settle(
            outcomeOfFailedUser(error) ??
              endedWithoutOutcome(
                target,
                `the user's workflow ${workflowId} ended without an outcome: ${error.message}`,
              ),
          ),
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

  /** Cancels the users in flight and records every row not started as cancelled. */
  const cancelRest = async (): Promise<void> => {
    const cancel = control.cancel as NonNullable<JobControl['cancel']>;
    await Promise.all(
      [...inFlight.values()].map((user) => {
        const cancelled = getExternalWorkflowHandle(user.workflowId).cancel();
        // A batched user ended by hand and not yet found cannot be cancelled: the periodic check records
        // it, and the job goes on rather than failing on it.
        return batched
          ? cancelled.catch((error: unknown) =>
              log.warn(`could not cancel the user's workflow ${user.workflowId}; it is checked later`, {
                error: error instanceof Error ? error.message : String(error),
              }),
            )
          : cancelled;
      }),
    );
    const reason = `the job was cancelled by ${cancel.by} before this user was started (${cancel.reason})`;
    const recorded = await jobActivities.cancelRows({
      jobId,
      pendingRows: state.pendingRows,
      byteOffset: state.rowsExhausted ? undefined : state.nextByteOffset,
      reason,
    });
    state.counts.cancelled += recorded;
    countOutcomes('cancelled', recorded);
    state.pendingRows = [];
    state.rowsExhausted = true;
    control.cancelRecorded = true;
  };

  for (;;) {
    if (cancelPending()) await cancelRest();
    startConfirming();
    await startUsers();
    if (buffered.length >= FLUSH_SIZE) await flush();
    if (finished()) break;
    if (shouldContinueAsNew()) {
      // A batch on its way ends in this run; the users still waiting for one are carried.
      if (confirming) await confirming;
      await flush();
      await condition(allHandlersFinished);
      // Reports that arrive after this are delivered to the new run: the user ids stay the same. One that
      // slipped in meanwhile is flushed on the next pass rather than carried.
      if (buffered.length === 0 && !cancelPending()) {
        return continueAsNew<typeof bulkReset>({
          ...input,
          jobId,
          carried: {
            ...state,
            inFlight: [...inFlight.values()],
            runs: state.runs + 1,
            control,
            ...(containment && { containment }),
          },
        });
      }
      continue;
    }
    const endedBefore = batchesEnded;
    const wake = () =>
      startDue() ||
      // A batched job's starts cost few events, so its history may reach the limit while it waits.
      (batched && shouldContinueAsNew()) ||
      buffered.length >= FLUSH_SIZE ||
      finished() ||
      cancelPending() ||
      batchesEnded !== endedBefore ||
      (containment !== undefined && !confirming && batchDue(containment, Date.now(), allReported()));
    // Held outcomes wake the loop now and then too: a batch that is not full falls due with time. A batch
    // on its way wakes it when it ends.
    const batchMayFallDue = containment !== undefined && !confirming && containment.pending.length > 0;
    if (buffered.length === 0 && !batchMayFallDue) {
      await condition(wake);
    } else {
      const waitFromMs = Date.now();
      const woken = await condition(wake, FLUSH_INTERVAL_MS);
      // When the wait's timer and a report come in the same workflow task, which of them ended the wait
      // is not in the history, and a replay may see the other order: the outcomes are flushed when the
      // wait lasted its full interval, which every replay sees alike. Runs before this went by the order.
      const waitedInterval = patched(FLUSH_ON_TIME_PATCH)
        ? Date.now() - waitFromMs >= FLUSH_INTERVAL_MS
        : !woken;
      if (waitedInterval) await flush();
    }
  }

  await flush();
  finishing = true;
  showPhase();
  const summary = await jobActivities.writeReport({
    jobId,
    csv,
    startedAt: state.startedAt,
    record: {
      settings: { windowSize, policy: input.policy, secretsRecipient: input.secretsRecipient },
      startedBy: input.startedBy,
      approvedBy: control.approvedBy,
      approvedAt: control.approvedAt,
      cancelledBy: control.cancel?.by,
      cancelReason: control.cancel?.reason,
      retryOf: input.retryOf,
      ...(containment && {
        containment: {
          confirmed: containment.confirmed,
          notConfirmed: containment.notConfirmed,
          ...(containment.refused !== undefined && { refused: containment.refused }),
        },
      }),
    },
  });
  showPhase('done');
  await condition(allHandlersFinished);
  return summary;
}

/**
 * The job's current details in the Web UI (Markdown): the CSV, who started and approved it, and the
 * outcome counts so far. No user's name.
 */
export function jobDetails(progress: JobProgress, csvPath: string): string {
  const csvName = csvPath.split('/').pop() ?? csvPath;
  const total = progress.total === undefined ? 'being read' : `${progress.total} rows`;
  const counts = Object.entries(progress.counts)
    .filter(([, count]) => count > 0)
    .map(([status, count]) => `${status} ${count}`)
    .join(', ');
  const lines = [
    `**${progress.phase}**: CSV \`${csvName}\`, ${total}; ${progress.done} done, ${progress.inFlight} in flight`,
    `outcomes: ${counts || 'none yet'}`,
    `started by ${progress.startedBy ?? 'unknown'}${progress.startedAt ? ` at ${progress.startedAt}` : ''}`,
  ];
  if (progress.approvedBy) lines.push(`approved by ${progress.approvedBy}`);
  if (progress.cancelledBy) lines.push(`cancelled by ${progress.cancelledBy}`);
  if (progress.counts.failed > 0)
    lines.push(`failed users (a Workflows filter): \`${userWorkflowsQuery(progress.jobId, 'Failed')}\``);
  return lines.join('\n\n');
}
