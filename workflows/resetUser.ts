/**
 * One user's password reset: start Graph's long-running resetPassword, then poll the operation on
 * durable timers until it ends, and report one outcome to the job.
 */
import {
  ApplicationFailure,
  CancellationScope,
  continueAsNew,
  defineSignal,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  sleep,
  TemporalFailure,
  TimeoutFailure,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import type {
  GraphFailureDetails,
  PollOperationResult,
  ResetOutcome,
  ResetPolicy,
  ResetUserInput,
  SignInState,
  StartResetInput,
  StartResetResult,
} from './types';
import {
  DEFAULT_MAX_SIGN_IN_HOLD_MS,
  PROTECTED_ACCOUNT,
  type ResetUserCarried,
  USER_FAILED_TYPE,
  type SignInHoldState,
  refuseUnsealedInput,
  writeTaskQueue,
} from './types';
import { graphReadRetry, nextWaitMs, resendWaitMs, signInWaitMs } from './waits';

export { nextWaitMs, resendWaitMs } from './waits';
import { recordWait } from './metrics';

// ---------------------------------------------------------------------------------------------
// Messages

/** Sent by each user's workflow to its job when the user has a final outcome. */
export const userFinishedSignal = defineSignal<[ResetOutcome]>('userFinished');

/** Sent by a user's workflow to its job when it starts and stops waiting for the operator's sign-in. */
export const signInSignal = defineSignal<[SignInState]>('signIn');

// ---------------------------------------------------------------------------------------------
// Helpers

/** Graph's terminal statuses; anything else (`unknownFutureValue`, a new value) is never success. */
const RUNNING_STATUSES = new Set(['notStarted', 'running']);

/**
 * The outcome's fields that say which Graph answer decided it (HTTP status, Graph code, request-id):
 * every outcome decided by a Graph failure takes them from here.
 */
function graphFacts(
  details: Pick<GraphFailureDetails, 'httpStatus' | 'graphCode' | 'requestId'> | undefined,
): Pick<ResetOutcome, 'httpStatus' | 'graphCode' | 'requestId'> {
  return { httpStatus: details?.httpStatus, graphCode: details?.graphCode, requestId: details?.requestId };
}

/** The Graph facts a failed activity carried, found anywhere in its cause chain. */
function graphDetailsOf(error: unknown): { message: string; details?: GraphFailureDetails } {
  let message = error instanceof Error ? error.message : String(error);
  for (let current: unknown = error; current instanceof Error; current = current.cause) {
    if (current instanceof ApplicationFailure) {
      message = current.message;
      const [details] = (current.details ?? []) as (GraphFailureDetails | undefined)[];
      return { message, details };
    }
  }
  return { message };
}

/**
 * One poll of the operation. A GET is safe to repeat, so Temporal retries it: transient failures (429,
 * 5xx, network) are retried waiting the Retry-After the activity passes back as nextRetryDelay, and the
 * user's deadline bounds the whole thing.
 *
 * For users started with `polls: 'local'`, a local activity: it runs inside the workflow task that follows
 * the poll's timer, so a poll costs the history one marker where an activity cost three events and a
 * second workflow task (a one-poll user: 23 events instead of 28), and the server dispatches one task
 * less. Its retries wait on durable timers, like the password-change read. Users started before that
 * change poll with an activity until they end.
 */
function pollOperationWithin(
  local: boolean,
  policy: ResetPolicy,
  remainingMs: number,
  row: number,
  oneGetEach: boolean,
) {
  const options = {
    summary: `poll the reset operation of row ${row}`,
    startToCloseTimeout: policy.requestTimeoutMs + 5_000,
    scheduleToCloseTimeout: Math.max(remainingMs, 1_000),
    retry: oneGetEach ? { maximumAttempts: 1 } : graphReadRetry(policy),
  };
  return local
    ? proxyLocalActivities<Activities>({ ...options, localRetryThreshold: policy.minWaitMs })
    : proxyActivities<Activities>(options);
}

/**
 * One password write, never retried by Temporal (see sendUntilAccepted): resetPassword's POST, or with
 * `method: 'password-profile'` the passwordProfile PATCH, which carries the force-change flags.
 */
function sendWriteOnce(policy: ResetPolicy, row: number) {
  const profile = policy.method === 'password-profile';
  const activities = proxyActivities<Activities>({
    summary: `${profile ? 'passwordProfile PATCH' : 'resetPassword'} for row ${row}`,
    // The write queue's dispatch rate is the tenant's write budget, shared by all workers.
    taskQueue: writeTaskQueue(workflowInfo().taskQueue),
    startToCloseTimeout: policy.requestTimeoutMs + 5_000,
    retry: { maximumAttempts: 1 },
  });
  return (request: StartResetInput): Promise<StartResetResult> =>
    profile
      ? activities.setPasswordProfile({
          ...request,
          forceChange: policy.forceChange ?? true,
          ...(policy.forceChangeWithMfa && { forceChangeWithMfa: true }),
        })
      : activities.startReset(request);
}

interface StartFailure {
  message: string;
  details?: GraphFailureDetails;
  /** Graph may have applied the request: no answer came back (dropped connection, timeout, worker lost). */
  ambiguous: boolean;
  /** Sending again may succeed (429, 5xx, network, an expired token, a lost worker). */
  retryable: boolean;
  /** For the timer's summary. */
  why: string;
}

/** What a failed resetPassword activity means for the next step. */
export function startFailureOf(error: unknown): StartFailure {
  const { message, details } = graphDetailsOf(error);
  if (details) {
    const why = details.ambiguous
      ? 'no answer to the last one'
      : details.httpStatus
        ? `Graph answered ${details.httpStatus}`
        : details.graphCode;
    return { message, details, ambiguous: details.ambiguous, retryable: details.kind !== 'permanent', why };
  }
  for (let current: unknown = error; current instanceof Error; current = current.cause) {
    if (current instanceof TimeoutFailure) {
      return {
        message: `the request was not answered in time (${current.timeoutType === 'START_TO_CLOSE' ? 'request timeout or worker lost' : 'timeout'})`,
        ambiguous: true,
        retryable: true,
        why: 'the last one timed out or its worker was lost',
      };
    }
  }
  // Anything else happened before or around the request without an answer from Graph (e.g. the
  // credential could not get a token): worth another try until the deadline, and nothing was applied.
  return { message, ambiguous: false, retryable: true, why: message };
}

/**
 * Ends the user's sign-in sessions once the new password is in place, so a stolen session dies with the
 * old password. Repeating it is harmless, so Temporal retries it; a failure is reported, not hidden.
 */
async function revokeSessionsAfterReset(
  policy: ResetPolicy,
  deadlineMs: number,
  row: number,
  user: string,
): Promise<Partial<ResetOutcome>> {
  const { revokeSessions } = proxyActivities<Activities>({
    summary: `revoke the sign-in sessions of row ${row}`,
    taskQueue: writeTaskQueue(workflowInfo().taskQueue),
    startToCloseTimeout: policy.requestTimeoutMs + 5_000,
    scheduleToCloseTimeout: Math.max(deadlineMs - Date.now(), 60_000),
    retry: graphReadRetry(policy),
  });
  try {
    await revokeSessions({ user });
    return { status: 'succeeded', sessionsRevoked: true };
  } catch (error) {
    if (isCancellation(error)) {
      return {
        status: 'succeeded',
        sessionsRevoked: false,
        reason: 'the password was reset; the job was cancelled before the sign-in sessions were revoked',
      };
    }
    const { message, details } = graphDetailsOf(error);
    return {
      status: 'succeeded',
      sessionsRevoked: false,
      reason: `the password was reset, but revoking the sign-in sessions failed: ${message}; revoke them by hand`,
      ...graphFacts(details),
    };
  }
}

/** The ApplicationFailure type for a token Graph refused or the credential could not give (activities). */
const SIGN_IN_REQUIRED = 'SignInRequired';

/** Whether a failed activity was refused for the operator's sign-in rather than for anything about the user. */
export function isSignInRequired(error: unknown): boolean {
  for (let current: unknown = error; current instanceof Error; current = current.cause) {
    if (current instanceof ApplicationFailure) return current.type === SIGN_IN_REQUIRED;
  }
  return false;
}

/**
 * Waiting out a refused sign-in. While the operator's token is refused (401) or cannot be had, the user
 * is not failed and its deadline stands still: the job is told (so it starts nobody else and shows
 * `needs-sign-in`), and the request is tried again on a durable timer, every 15 s then up to every 60 s
 * (never longer than the policy's maximum wait), until `bulk-reset login` has renewed the sign-in. A
 * request refused with 401 was not applied, so sending it again is safe.
 */
class SignInHold {
  /** `state` is the user's carried state, changed in place so that a continued run keeps the hold. */
  constructor(
    private readonly row: number,
    private readonly policy: ResetPolicy,
    private readonly state: SignInHoldState = { waits: 0, endedHoldsMs: 0 },
    private readonly jobWorkflowId: string | undefined = undefined,
  ) {}

  /**
   * For users started with `followThrough`: whether the holds so far, with the next wait, would pass the
   * policy's bound; the caller then ends the user instead of waiting again.
   */
  exhausted(): boolean {
    const boundMs = this.policy.maxSignInHoldMs ?? DEFAULT_MAX_SIGN_IN_HOLD_MS;
    return this.state.endedHoldsMs + this.heldMs() + signInWaitMs(this.state.waits, this.policy) > boundMs;
  }

  /** The reason a user gives up waiting for the sign-in. */
  exhaustedReason(): string {
    const heldMinutes = Math.round((this.state.endedHoldsMs + this.heldMs()) / 60_000);
    const boundMinutes = Math.round((this.policy.maxSignInHoldMs ?? DEFAULT_MAX_SIGN_IN_HOLD_MS) / 60_000);
    return (
      `the operator's sign-in was refused or could not be had for ${heldMinutes} min in all, the most this job ` +
      `waits (${boundMinutes} min, --sign-in-hold); run bulk-reset login, then retry this user`
    );
  }

  /** Tells the job (once per hold) and waits before the next try. Throws if cancelled. */
  async wait(what: string): Promise<void> {
    if (this.state.heldSinceMs === undefined) {
      this.state.heldSinceMs = Date.now();
      await tellJob(this.jobWorkflowId, { row: this.row, needed: true });
    }
    const waitMs = signInWaitMs(this.state.waits, this.policy);
    this.state.waits += 1;
    await sleep(waitMs, {
      summary: `wait ${waitMs} ms for the operator to sign in again (bulk-reset login) before ${what} row ${this.row}`,
    });
  }

  /** How long the current hold has lasted so far (0 when not holding). */
  heldMs(): number {
    return this.state.heldSinceMs === undefined ? 0 : Date.now() - this.state.heldSinceMs;
  }

  /** Ends a hold once a request went through; returns how long it lasted (0 if there was none). */
  async release(): Promise<number> {
    if (this.state.heldSinceMs === undefined) return 0;
    const heldMs = Date.now() - this.state.heldSinceMs;
    this.state.heldSinceMs = undefined;
    this.state.waits = 0;
    this.state.endedHoldsMs += heldMs;
    await tellJob(this.jobWorkflowId, { row: this.row, needed: false });
    return heldMs;
  }
}

async function tellJob(jobWorkflowId: string | undefined, state: SignInState): Promise<void> {
  if (!jobWorkflowId) return;
  await CancellationScope.nonCancellable(() =>
    getExternalWorkflowHandle(jobWorkflowId).signal(signInSignal, state),
  );
}

/**
 * The workflow id of the job this user reports to: the one it was told (users started in batches, which
 * have no parent), else its parent's (users started as children), else none (a user started on its own).
 */
function jobToReportTo(input: ResetUserInput): string | undefined {
  return input.reportTo ?? workflowInfo().parent?.workflowId;
}

/**
 * When the user's password last changed, in epoch ms, or undefined when it cannot be told (no permission
 * to read users, the user is missing, Graph unreachable until the deadline). A GET is safe to repeat, so
 * Temporal retries it; it runs as a local activity, which costs the user's history one marker where an
 * activity costs three events and often a workflow task of its own.
 */
async function passwordChangedAt(
  policy: ResetPolicy,
  deadlineMs: number,
  user: string,
): Promise<PasswordChange> {
  const { readPasswordChange } = proxyLocalActivities<Activities>({
    summary: 'read when the password last changed',
    startToCloseTimeout: policy.requestTimeoutMs + 5_000,
    scheduleToCloseTimeout: Math.max(deadlineMs - Date.now(), 1_000),
    retry: graphReadRetry(policy),
    // Waits for Retry-After on a durable timer rather than inside a held-open workflow task, so a
    // throttled or unavailable Graph (an outage) never keeps workflow tasks running until they time out.
    localRetryThreshold: policy.minWaitMs,
  });
  try {
    const { lastPasswordChangeDateTime } = await readPasswordChange({ user });
    const at = lastPasswordChangeDateTime === undefined ? NaN : Date.parse(lastPasswordChangeDateTime);
    return { at: Number.isFinite(at) ? at : undefined };
  } catch (error) {
    if (isCancellation(error)) throw error;
    // Whatever comes next is another request to Graph: it must not come before the Retry-After of the
    // read's last answer, within the deadline. A timeout hides that answer: then the longest wait the
    // policy allows. An answer without Retry-After (404, 403, a dropped connection) asks for no wait.
    const failure = graphDetailsOf(error);
    const askedMs = failure.details ? (failure.details.retryAfterMs ?? 0) : policy.maxWaitMs;
    const pauseMs = Math.min(askedMs, deadlineMs - Date.now());
    if (pauseMs > 0) {
      await sleep(pauseMs, {
        summary: `wait ${pauseMs} ms after the password-change time could not be read`,
      });
    }
    return { failure };
  }
}

/** When the password last changed (epoch ms), or why it could not be read. */
interface PasswordChange {
  at?: number;
  failure?: { message: string; details?: GraphFailureDetails };
}

/**
 * After a resetPassword that got no answer: did it land? Yes when the user's lastPasswordChangeDateTime
 * moved past the baseline read before the first request (not merely past the send time: a change by
 * someone else minutes earlier must not pass for ours). Graph changes the password only when the reset's
 * operation completes, so a reset accepted but still running does not show yet; rather than start a
 * second operation at once, this looks once more after a further wait (twice the default poll wait,
 * bounded by the deadline). `undefined`: it cannot be told.
 */
async function ambiguousSendLanded(
  policy: ResetPolicy,
  deadlineMs: number,
  row: number,
  user: string,
  baselineMs: number,
): Promise<boolean | undefined> {
  const first = (await passwordChangedAt(policy, deadlineMs, user)).at;
  if (first !== undefined && first > baselineMs) return true;
  const settleMs = nextWaitMs(undefined, 2, policy);
  if (deadlineMs - Date.now() <= settleMs) return first === undefined ? undefined : false;
  await sleep(settleMs, {
    summary: `wait ${settleMs} ms for a reset of row ${row} that may still be running before sending it again`,
  });
  const second = (await passwordChangedAt(policy, deadlineMs, user)).at;
  if (second === undefined) return undefined;
  return second > baselineMs;
}

const LANDED_REASON =
  "a reset request got no answer, but the user's password changed after the reset began " +
  '(lastPasswordChangeDateTime moved past the value read before the first request), so it landed and was not sent again; ' +
  'confirmed by the password-change time, no operation was polled';

/**
 * A user's workflow (with followThrough) continues as new once its history reaches this many events: far
 * below Temporal's warning at 10,240, and far above the 23 events of a user with one poll, so only a user
 * held for hours by throttling, an outage or a sign-in ever does.
 */
export const USER_CONTINUE_AS_NEW_EVENTS = 2_000;

/**
 * Steps a Graph call is retried by Temporal, at the policy's minimum wait or more, before control comes
 * back to the workflow (users with followThrough): every retry after a wait adds a timer and a workflow
 * task to the history, so a call retried through a long outage would otherwise grow it without a check.
 */
const RETRY_CHUNK_STEPS = 300;

function retryChunkMs(policy: ResetPolicy): number {
  return Math.max(RETRY_CHUNK_STEPS * policy.minWaitMs, 1_000);
}

/**
 * Where a user was when its job cancelled it, and what the operator must be told: the one place that
 * maps a cancellation to an outcome's reason.
 */
const CANCELLED_WHEN = {
  'before-accepted': 'the job was cancelled before Graph accepted the reset',
  'after-unanswered':
    'the job was cancelled after a reset request that got no answer; it may have been applied, check the user in Entra',
  'holding-for-sign-in':
    'the job was cancelled while it waited for the operator to sign in; the reset was not sent',
  'as-accepted':
    'the job was cancelled as Graph accepted the reset; it will most likely be applied: check the user in Entra',
  'while-running': 'the job was cancelled while Graph was processing the reset; its result is unknown',
} as const;

type CancelPoint = keyof typeof CANCELLED_WHEN;

const CANCELLED_WHILE_RUNNING = CANCELLED_WHEN['while-running'];

// ---------------------------------------------------------------------------------------------
// Workflow

/**
 * Resets one user's password and reports exactly one outcome.
 *
 * Guarantees:
 * - resetPassword is requested once; it is re-sent only after a failure that may be transient (429, 5xx,
 *   network, timeout, a lost worker), each time by this workflow, after a durable wait honouring Graph's
 *   Retry-After. `startAttempts` says how many requests it took and `ambiguousResends` how many were sent
 *   after one that got no answer (the only way a user can be reset twice). If the last request got no
 *   answer, the outcome is `unconfirmed`, never `failed`: the reset may have landed.
 * - Between polls it waits on durable timers as long as Graph's Retry-After asked (within the policy's
 *   bounds): a restart of workers or server never shortens a wait.
 * - Before re-sending after a request that got no answer, it checks whether that one landed: if the
 *   user's lastPasswordChangeDateTime moved past the value read before the first request, the reset is
 *   not sent again (see ambiguousSendLanded).
 * - `succeeded` only when Graph's operation said `succeeded`, or (`confirmedBy: 'passwordChange'`) when a
 *   request that got no answer is shown to have landed by the password-change time. A 202 without
 *   Location, an unknown status, or a deadline passed after Graph accepted the reset end as `unconfirmed`.
 * - Permanent Graph errors (400, 403, 404) end the user at once as `failed`, with Graph's code and request-id.
 * - A refused sign-in (401, or no token to be had) never fails the user: it waits (see SignInHold), tells
 *   the job, and the wait does not count toward the deadline nor as a request.
 * - With `method: 'password-profile'` the write is a passwordProfile PATCH, sent by the same loop with the
 *   same rules (one write unless no answer came, checked by the password-change time), and Graph's 204 is
 *   the success: there is no operation to poll (see profileWritten).
 * - The outcome is signalled once to its job (`reportTo`, else the parent, if any) and returned.
 */
export async function resetUser(input: ResetUserInput): Promise<ResetOutcome> {
  refuseUnsealedInput(input, "this user's", 'nothing was sent');
  let outcome: ResetOutcome;
  try {
    outcome = await runReset(input);
  } catch (error) {
    // Only cancellation and Temporal failures end up here; a bug fails the workflow task instead and
    // is retried once fixed, rather than being recorded as the user's outcome.
    if (!isCancellation(error) && !(error instanceof TemporalFailure)) throw error;
    outcome = {
      row: input.target.row,
      user: input.target.user,
      status: isCancellation(error) ? 'cancelled' : 'failed',
      reason:
        error instanceof TemporalFailure
          ? `the reset stopped unexpectedly: ${error.message}`
          : CANCELLED_WHILE_RUNNING,
      polls: 0,
      startAttempts: 0,
    };
  }
  // The one report to the job: users started as children report to their parent, users started in
  // batches to the job they were told (they have no parent, and the job does not wait on their result).
  const jobWorkflowId = jobToReportTo(input);
  if (jobWorkflowId) {
    // Delivered even if this workflow is being cancelled: the job must hear about every user.
    try {
      await CancellationScope.nonCancellable(() =>
        getExternalWorkflowHandle(jobWorkflowId).signal(userFinishedSignal, outcome),
      );
    } catch (error) {
      // A job that is gone (terminated by hand, say) cannot hear it; the outcome stays this workflow's
      // result. Users started before this change fail here instead, as they always did.
      if (!input.followThrough || !(error instanceof TemporalFailure)) throw error;
      log.warn(
        `the job ${jobWorkflowId} could not be told this user's outcome; it is in this workflow's result`,
      );
    }
  }
  setCurrentDetails(describeOutcome(input.jobId, outcome));
  if (input.endState === 'outcome' && outcome.status === 'failed') {
    // The Web UI colours and filters by how a workflow ended; the job already has the outcome (signal).
    throw ApplicationFailure.create({
      type: USER_FAILED_TYPE,
      message: `row ${outcome.row} of job ${input.jobId} failed${outcomeCauseText(outcome)}`,
      nonRetryable: true,
      details: [outcome],
    });
  }
  return outcome;
}

/** ` (HTTP 403, Authorization_RequestDenied)`: what decided a failure, without the user's name. */
function outcomeCauseText(outcome: ResetOutcome): string {
  const parts = [
    outcome.httpStatus !== undefined ? `HTTP ${outcome.httpStatus}` : undefined,
    outcome.graphCode,
  ].filter((part) => part !== undefined);
  return parts.length > 0 ? ` (${parts.join(', ')})` : '';
}

/**
 * The user's page in the Web UI (current details, read through the codec like everything else): the
 * row, the outcome and what decided it. Never the user's name, which stays in the sealed input.
 */
function describeOutcome(jobId: string, outcome: ResetOutcome): string {
  const lines = [`**${outcome.status}**: row ${outcome.row} of job \`${jobId}\`${outcomeCauseText(outcome)}`];
  if (outcome.requestId) lines.push(`Graph request-id: ${outcome.requestId}`);
  if (outcome.operationId) lines.push(`operation: ${outcome.operationId}`);
  return lines.join('\n\n');
}

/**
 * One user's reset in progress: its input, the state a continued run carries, and what every phase
 * uses. The phases below (readBaseline, sendUntilAccepted, pollUntilDone) each either finish the user
 * with an outcome or hand over to the next.
 */
class UserReset {
  readonly st: ResetUserCarried;
  readonly outcome: ResetOutcome;
  readonly signIn: SignInHold;

  constructor(readonly input: ResetUserInput) {
    const { target, policy } = input;
    const startedMs = Date.now();
    // Everything a continued run needs to go on where the last one stopped (users with followThrough).
    this.st = input.carried ?? {
      outcome: {
        row: target.row,
        user: target.user,
        status: 'failed',
        polls: 0,
        startAttempts: 0,
        startedAt: new Date(startedMs).toISOString(),
      },
      // Moved later by the time spent waiting for the operator's sign-in: that wait is not the user's.
      deadlineMs: startedMs + policy.deadlineMs,
      signIn: { waits: 0, endedHoldsMs: 0 },
      sends: 0,
      ambiguousResends: 0,
      lastSendAmbiguous: false,
      ambiguityChecked: false,
      resendCountedAmbiguous: false,
      unsentAttempts: 0,
      answersWithoutRetryAfter: 0,
      lastSeen: 'not polled yet',
      runs: 1,
    };
    this.outcome = this.st.outcome;
    this.signIn = new SignInHold(target.row, policy, this.st.signIn, jobToReportTo(input));
  }

  /** The user's outcome: what is known so far, with these fields. */
  readonly finish = (fields: Partial<ResetOutcome>): ResetOutcome => ({
    ...this.outcome,
    ...fields,
    finishedAt: new Date(Date.now()).toISOString(),
  });

  /** Users with followThrough continue as new before their history grows long, keeping id, state and deadline. */
  readonly continueIfLong = async (): Promise<void> => {
    if (!this.input.followThrough) return;
    const info = workflowInfo();
    const limit = this.input.continueAsNewAt ?? USER_CONTINUE_AS_NEW_EVENTS;
    if (info.historyLength < limit && !info.continueAsNewSuggested) return;
    await continueAsNew<typeof resetUser>({ ...this.input, carried: { ...this.st, runs: this.st.runs + 1 } });
  };

  /** The outcome of a user cancelled by its job at this point (see CANCELLED_WHEN). */
  readonly cancelled = (when: CancelPoint, fields: Partial<ResetOutcome> = {}): ResetOutcome =>
    this.finish({ ...fields, status: 'cancelled', reason: CANCELLED_WHEN[when] });

  /** How long the next Graph call may be retried before control comes back here (see RETRY_CHUNK_STEPS). */
  readonly retryUntil = (untilMs: number): number =>
    this.input.followThrough ? Math.min(untilMs, Date.now() + retryChunkMs(this.input.policy)) : untilMs;
}

/** Resets one user: its phases in order, each finishing the user or handing over to the next. */
async function runReset(input: ResetUserInput): Promise<ResetOutcome> {
  const run = new UserReset(input);
  const afterAccepted = input.policy.method === 'password-profile' ? profileWritten : pollUntilDone;
  return (await readBaseline(run)) ?? (await sendUntilAccepted(run)) ?? afterAccepted(run);
}

/**
 * Before anything is sent: when the password last changed, so that after a request that got no answer a
 * change since then shows that it landed (see ambiguousSendLanded). A refused sign-in is waited out here.
 */
async function readBaseline(run: UserReset): Promise<ResetOutcome | undefined> {
  const { st, signIn, finish, continueIfLong, retryUntil } = run;
  const { target, policy, followThrough } = run.input;
  if (!st.baseline) {
    let baseline: PasswordChange;
    try {
      baseline = await passwordChangedAt(policy, retryUntil(st.deadlineMs), target.user);
      // A refused sign-in is waited out here too (the job holds), so the baseline exists when it is needed.
      // Users with followThrough also come back here when Graph cannot be read (an outage), until the deadline.
      while (
        baseline.failure?.details?.kind === 'auth' ||
        (followThrough &&
          baseline.failure &&
          baseline.failure.details?.kind !== 'permanent' &&
          Date.now() < st.deadlineMs + signIn.heldMs())
      ) {
        await continueIfLong();
        if (baseline.failure?.details?.kind === 'auth') {
          if (followThrough && signIn.exhausted()) {
            return finish({
              status: 'failed',
              reason: `${signIn.exhaustedReason()}; nothing was sent`,
              retryable: true,
            });
          }
          await signIn.wait('reading the password-change time of');
        }
        baseline = await passwordChangedAt(policy, retryUntil(st.deadlineMs + signIn.heldMs()), target.user);
      }
      st.deadlineMs += await signIn.release();
    } catch (error) {
      if (!isCancellation(error)) throw error;
      return run.cancelled('before-accepted');
    }
    if (baseline.failure && Date.now() >= st.deadlineMs) {
      // Graph could not even be read until the deadline (an outage): nothing was sent.
      return finish({
        status: 'failed',
        reason: `Graph did not accept the reset before the deadline: ${baseline.failure.message}`,
        ...graphFacts(baseline.failure.details),
        retryable: true,
      });
    }
    st.baseline = { at: baseline.at };
  }
  return undefined;
}

/**
 * Sends resetPassword until Graph accepts it, the deadline passes, or it is refused for good.
 *
 * Every POST is its own activity, and this loop alone decides whether to send another: after a worker
 * crash or a timeout, Temporal cannot tell a request Graph never saw from one it applied, so a blind
 * retry could reset the user twice without anyone knowing. Here each re-send is counted and reported.
 * The check below runs once per request that got no answer (st.ambiguityChecked): a resend held back by a
 * refused sign-in (401) comes round the loop again without being checked or counted a second time.
 * st.resendCountedAmbiguous says whether the request about to be sent is counted as a resend after one
 * that got no answer; st.unsentAttempts counts requests that provably never left a worker (the send
 * journal says so): neither reached Graph.
 */
async function sendUntilAccepted(run: UserReset): Promise<ResetOutcome | undefined> {
  const { st, outcome, signIn, finish, continueIfLong, retryUntil } = run;
  const { target, policy, jobId, csv, followThrough } = run.input;
  /** When the worker says the previous request never left: it did not reach Graph, so it is no resend. */
  const previousNeverLeft = (): void => {
    st.unsentAttempts += 1;
    st.lastSendAmbiguous = false;
    if (st.resendCountedAmbiguous) st.ambiguousResends -= 1;
  };
  const baselineMs = st.baseline?.at;
  while (!st.accepted) {
    await continueIfLong();
    if (st.lastSendAmbiguous && !st.ambiguityChecked && baselineMs !== undefined) {
      let landed: boolean | undefined;
      try {
        landed = await ambiguousSendLanded(
          policy,
          retryUntil(st.deadlineMs),
          target.row,
          target.user,
          baselineMs,
        );
      } catch (error) {
        if (!isCancellation(error)) throw error;
        return run.cancelled('after-unanswered', {
          startAttempts: st.sends - st.unsentAttempts,
          ambiguousResends: st.ambiguousResends,
        });
      }
      if (landed) {
        outcome.startAttempts = st.sends - st.unsentAttempts;
        outcome.ambiguousResends = st.ambiguousResends;
        const confirmed = {
          status: 'succeeded' as const,
          reason: LANDED_REASON,
          confirmedBy: 'passwordChange' as const,
        };
        if (!policy.revokeSessions) return finish(confirmed);
        const revoked = await revokeSessionsAfterReset(policy, st.deadlineMs, target.row, target.user);
        return finish({
          ...confirmed,
          ...revoked,
          reason: revoked.reason ? `${LANDED_REASON}; ${revoked.reason}` : LANDED_REASON,
        });
      }
      if (Date.now() >= st.deadlineMs) {
        return finish({
          status: 'unconfirmed',
          reason:
            'a reset request got no answer and the deadline passed before it could be checked or sent again; it may have been applied, check the user in Entra',
          startAttempts: st.sends - st.unsentAttempts,
          ambiguousResends: st.ambiguousResends,
        });
      }
      st.ambiguousResends += 1;
      st.resendCountedAmbiguous = true;
      st.ambiguityChecked = true;
    }
    st.sends += 1;
    // Only how to get the password travels to the activity (mode, length, the CSV by reference), never one.
    const request = {
      jobId,
      user: target.user,
      row: target.row,
      attempt: st.sends,
      password: policy.password,
      csv,
    };
    try {
      // Never abandoned half-way: once sent, the request's answer is what tells whether Graph took it.
      st.accepted = await CancellationScope.nonCancellable(() => sendWriteOnce(policy, target.row)(request));
      if (st.accepted.previousAttemptUnsent) previousNeverLeft();
      st.resendCountedAmbiguous = false;
      st.deadlineMs += await signIn.release();
    } catch (error) {
      if (graphDetailsOf(error).details?.previousAttemptUnsent) previousNeverLeft();
      st.resendCountedAmbiguous = false;
      if (isSignInRequired(error)) {
        // Refused before Graph did anything: not counted as a request, and the user waits, never fails.
        st.sends -= 1;
        if (followThrough && signIn.exhausted()) {
          return finish({
            status: st.lastSendAmbiguous ? 'unconfirmed' : 'failed',
            reason: st.lastSendAmbiguous
              ? `${signIn.exhaustedReason()}; an earlier reset request got no answer and may have been applied, check the user in Entra`
              : `${signIn.exhaustedReason()}; the reset was not sent`,
            startAttempts: st.sends - st.unsentAttempts,
            ambiguousResends: st.ambiguousResends,
            retryable: st.lastSendAmbiguous ? undefined : true,
          });
        }
        try {
          await signIn.wait('sending the reset of');
        } catch (cancelled) {
          if (!isCancellation(cancelled)) throw cancelled;
          return run.cancelled('holding-for-sign-in', {
            startAttempts: st.sends - st.unsentAttempts,
            ambiguousResends: st.ambiguousResends,
          });
        }
        continue;
      }
      if (isCancellation(error)) {
        return run.cancelled(st.lastSendAmbiguous ? 'after-unanswered' : 'before-accepted', {
          startAttempts: st.sends - 1 - st.unsentAttempts,
          ambiguousResends: st.ambiguousResends,
        });
      }
      const failure = startFailureOf(error);
      if (failure.details?.graphCode === PROTECTED_ACCOUNT) {
        // The worker found Graph's identity of this user on the protected list and sent nothing.
        return finish({
          status: st.lastSendAmbiguous ? 'unconfirmed' : 'skipped',
          reason: st.lastSendAmbiguous
            ? `${failure.message}; an earlier reset request got no answer and may have been applied, check the user in Entra`
            : failure.message,
          startAttempts: st.sends - 1 - st.unsentAttempts,
          ambiguousResends: st.ambiguousResends,
        });
      }
      // Graph answered with something other than 401: the token was taken, the sign-in hold is over.
      if (failure.details?.httpStatus !== undefined) st.deadlineMs += await signIn.release();
      const hadAmbiguousSend = st.lastSendAmbiguous || failure.ambiguous;
      const waitMs = resendWaitMs(failure.details?.retryAfterMs, st.sends, policy);
      if (!failure.retryable || st.deadlineMs + signIn.heldMs() - Date.now() <= waitMs) {
        const unconfirmed = hadAmbiguousSend && failure.retryable;
        return finish({
          status: unconfirmed ? 'unconfirmed' : 'failed',
          reason: unconfirmed
            ? `a reset request got no answer and Graph did not accept another before the deadline: ${failure.message}; it may have been applied, check the user in Entra`
            : failure.retryable
              ? `Graph did not accept the reset before the deadline: ${failure.message}`
              : failure.message,
          startAttempts: st.sends - st.unsentAttempts,
          ambiguousResends: st.ambiguousResends,
          ...graphFacts(failure.details),
          graphCode: failure.details?.graphCode ?? (failure.ambiguous ? 'Timeout' : undefined),
          retryable: unconfirmed ? undefined : failure.retryable,
        });
      }
      // Counted as a resend only once it is sent: the check above may find that this one landed.
      if (failure.ambiguous && baselineMs === undefined) {
        st.ambiguousResends += 1;
        st.resendCountedAmbiguous = true;
      }
      st.lastSendAmbiguous = failure.ambiguous;
      st.ambiguityChecked = false;
      recordWait(waitMs, 'resend', failure.details?.retryAfterMs);
      try {
        await sleep(waitMs, {
          summary: `wait ${waitMs} ms before sending the reset of row ${target.row} again (${failure.why})`,
        });
      } catch (cancelled) {
        if (!isCancellation(cancelled)) throw cancelled;
        return run.cancelled(st.lastSendAmbiguous ? 'after-unanswered' : 'before-accepted', {
          startAttempts: st.sends - st.unsentAttempts,
          ambiguousResends: st.ambiguousResends,
        });
      }
    }
  }
  return undefined;
}

/** Polls Graph's operation of an accepted reset until it succeeds, fails, or the deadline passes. */
async function pollUntilDone(run: UserReset): Promise<ResetOutcome> {
  const { st, outcome, signIn, finish, continueIfLong } = run;
  const { target, policy, polls, followThrough } = run.input;
  const accepted = st.accepted as StartResetResult;
  outcome.startAttempts = st.sends - st.unsentAttempts;
  outcome.ambiguousResends = st.ambiguousResends;
  outcome.operationId = accepted.operationId;
  if (CancellationScope.current().consideredCancelled) {
    return run.cancelled('as-accepted', { requestId: accepted.requestId });
  }

  if (!accepted.operationUrl) {
    return finish({
      status: 'unconfirmed',
      reason:
        'Graph accepted the reset (202) but gave no operation to poll, so completion could not be confirmed; check the user in Entra',
      requestId: accepted.requestId,
    });
  }

  if (!st.polling) {
    st.polling = true;
    st.retryAfterMs = accepted.retryAfterMs;
    st.answersWithoutRetryAfter = st.retryAfterMs === undefined ? 1 : 0;
  }
  const checkByHand =
    "the reset may still complete: check the user's lastPasswordChangeDateTime in Entra before resetting again";
  for (;;) {
    await continueIfLong();
    const remainingMs = st.deadlineMs + signIn.heldMs() - Date.now();
    if (remainingMs <= 0) {
      return finish({
        status: 'unconfirmed',
        reason: `Graph accepted the reset but the operation had not finished after ${Math.round(policy.deadlineMs / 1000)} s (last seen: ${st.lastSeen}); ${checkByHand}`,
      });
    }
    const waitMs = Math.min(nextWaitMs(st.retryAfterMs, st.answersWithoutRetryAfter, policy), remainingMs);
    recordWait(waitMs, 'poll', st.retryAfterMs);
    try {
      await sleep(waitMs, {
        summary: `wait ${waitMs} ms (${st.retryAfterMs === undefined ? 'default' : 'Retry-After'}) before polling row ${target.row}`,
      });
    } catch (error) {
      if (isCancellation(error)) return run.cancelled('while-running');
      throw error;
    }

    let state: PollOperationResult;
    try {
      // Users with followThrough: one GET a poll; this loop waits and polls again after a passing failure,
      // so every GET is counted and the last answer is known if the deadline comes first.
      state = await pollOperationWithin(
        polls === 'local',
        policy,
        st.deadlineMs + signIn.heldMs() - Date.now(),
        target.row,
        followThrough === true,
      ).pollOperation({
        user: target.user,
        operationUrl: accepted.operationUrl,
      });
    } catch (error) {
      if (isCancellation(error)) return run.cancelled('while-running');
      if (isSignInRequired(error)) {
        if (followThrough && signIn.exhausted()) {
          return finish({
            status: 'unconfirmed',
            reason: `Graph accepted the reset, but ${signIn.exhaustedReason()}; ${checkByHand}`,
          });
        }
        try {
          await signIn.wait('polling');
        } catch (cancelled) {
          if (!isCancellation(cancelled)) throw cancelled;
          return run.cancelled('while-running');
        }
        // Poll again at once: the wait for the sign-in was long enough.
        st.retryAfterMs = 0;
        continue;
      }
      const { message, details } = graphDetailsOf(error);
      // Every GET of the poll reached Graph or may have (Temporal retried it).
      outcome.polls += details?.attempt ?? 1;
      if (followThrough && details?.kind !== 'permanent') {
        // Not readable yet (404), throttled, Graph in trouble, or no answer: poll again within the deadline,
        // after Graph's Retry-After or the default wait, doubled while none comes.
        st.lastSeen = details ? message : `no answer (${message})`;
        st.retryAfterMs = details?.retryAfterMs;
        st.answersWithoutRetryAfter = st.retryAfterMs === undefined ? st.answersWithoutRetryAfter + 1 : 0;
        continue;
      }
      return finish({
        status: 'unconfirmed',
        reason: `Graph accepted the reset but its operation could not be read: ${message}; ${checkByHand}`,
        ...graphFacts(details),
      });
    }
    st.deadlineMs += await signIn.release();
    outcome.polls += state.attempts ?? 1;
    st.lastSeen = `status "${state.status}"`;

    if (state.status === 'succeeded') {
      if (!policy.revokeSessions) return finish({ status: 'succeeded' });
      return finish(await revokeSessionsAfterReset(policy, st.deadlineMs, target.row, target.user));
    }
    if (state.status === 'failed') {
      return finish({
        status: 'failed',
        reason: `Graph's reset operation failed: ${state.statusDetail ?? 'no detail given'}`,
        graphCode: 'failed',
        requestId: state.requestId,
        retryable: false,
      });
    }
    // A status this tool does not know (`unknownFutureValue`, a newer value) is neither success nor
    // failure: users started with followThrough poll again until a known end or the deadline.
    if (!RUNNING_STATUSES.has(state.status) && !followThrough) {
      return finish({
        status: 'unconfirmed',
        reason: `Graph reported the operation as "${state.status}", which this tool does not treat as success; check the user in Entra`,
        graphCode: state.status,
        requestId: state.requestId,
      });
    }
    st.retryAfterMs = state.retryAfterMs;
    st.answersWithoutRetryAfter = st.retryAfterMs === undefined ? st.answersWithoutRetryAfter + 1 : 0;
  }
}

/**
 * After Graph answered a passwordProfile PATCH with 204: the password is in place (the call is synchronous,
 * there is no operation to poll), so the user succeeded; then the optional session revocation.
 */
async function profileWritten(run: UserReset): Promise<ResetOutcome> {
  const { st, outcome, finish } = run;
  const { target, policy } = run.input;
  outcome.startAttempts = st.sends - st.unsentAttempts;
  outcome.ambiguousResends = st.ambiguousResends;
  if (!policy.revokeSessions) return finish({ status: 'succeeded' });
  return finish(await revokeSessionsAfterReset(policy, st.deadlineMs, target.row, target.user));
}
