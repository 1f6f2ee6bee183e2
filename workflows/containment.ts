/**
 * Containment (`--confirm-compromised`): the job, not each user, tells Identity Protection which users to
 * mark compromised, in batches, because Identity Protection allows about one request per second for the
 * whole tenant. These are the job's rules for it, pure and deterministic (safe in workflow code): when a
 * batch is due, which users it takes, and what each user's outcome says afterwards.
 *
 * A succeeded user's outcome is held by the job until its batch has ended, and only then recorded, with
 * `confirmedCompromised` set: the ledger gets each row once, with its final word, whatever crashes or
 * continue-as-new happen in between (the held outcomes are part of the job's carried state).
 */
import type { ConfirmCompromisedResult, ContainmentState, ResetOutcome } from './types';

/**
 * Users per confirmCompromised request. Microsoft does not document a maximum for `userIds`; 60 is a
 * conservative choice that keeps each request small while one request a second still confirms 60 users a
 * second, more than the reset itself can reach within Graph's write budget (20 writes a second).
 */
export const CONFIRM_BATCH_SIZE = 60;

/**
 * While this many succeeded users wait for their batch the job starts nobody else: it bounds the state
 * the job carries over continue-as-new when Identity Protection throttles for a long time.
 */
export const MAX_PENDING_CONFIRMATIONS = 1_000;

/** A batch that is not full is sent once its oldest user has waited this long. */
export const CONFIRM_PARTIAL_AFTER_MS = 5_000;

export function emptyContainment(): ContainmentState {
  return { pending: [], confirmed: 0, notConfirmed: 0 };
}

/**
 * Whether a batch should be sent now: a full one, or any when no more succeeded users can come
 * (`noMoreComing`: every user has reported) or the oldest has waited CONFIRM_PARTIAL_AFTER_MS. Spacing
 * from the previous batch is the sender's to keep (a durable timer), not a reason to hold a batch back.
 */
export function batchDue(state: ContainmentState, nowMs: number, noMoreComing: boolean): boolean {
  if (state.pending.length === 0 || state.refused !== undefined) return false;
  if (state.pending.length >= CONFIRM_BATCH_SIZE || noMoreComing) return true;
  return state.pendingSinceMs !== undefined && nowMs - state.pendingSinceMs >= CONFIRM_PARTIAL_AFTER_MS;
}

/** The users the next batch takes: the oldest pending ones, at most CONFIRM_BATCH_SIZE. */
export function nextBatch(state: ContainmentState): ResetOutcome[] {
  return state.pending.slice(0, CONFIRM_BATCH_SIZE);
}

/** The batch's outcomes as Graph's answer left them: each row confirmed, or not with why. */
export function confirmedOutcomes(batch: ResetOutcome[], result: ConfirmCompromisedResult): ResetOutcome[] {
  const confirmed = new Set(result.confirmed);
  const reasons = new Map(result.notConfirmed.map(({ row, reason }) => [row, reason]));
  return batch.map((outcome) =>
    confirmed.has(outcome.row)
      ? { ...outcome, confirmedCompromised: true }
      : notConfirmedOutcome(
          outcome,
          reasons.get(outcome.row) ?? 'Graph was not asked to confirm this user (no answer for its row)',
        ),
  );
}

export function notConfirmedOutcome(outcome: ResetOutcome, reason: string): ResetOutcome {
  return { ...outcome, confirmedCompromised: false, confirmedCompromisedReason: reason };
}

/**
 * Takes `batch` (the first users of the pending list) out of the state with their final outcomes, counts
 * them, and restarts the partial-batch clock for those still waiting. Returns the outcomes to record.
 */
export function settleBatch(
  state: ContainmentState,
  outcomes: ResetOutcome[],
  nowMs: number,
): ResetOutcome[] {
  state.pending.splice(0, outcomes.length);
  for (const outcome of outcomes) {
    if (outcome.confirmedCompromised) state.confirmed += 1;
    else state.notConfirmed += 1;
  }
  state.pendingSinceMs = state.pending.length > 0 ? nowMs : undefined;
  return outcomes;
}

/** Every pending user, not confirmed for `reason` (a refusal for the whole job, or a cancelled job). */
export function giveUpPending(state: ContainmentState, reason: string, nowMs: number): ResetOutcome[] {
  return settleBatch(
    state,
    state.pending.map((outcome) => notConfirmedOutcome(outcome, reason)),
    nowMs,
  );
}
