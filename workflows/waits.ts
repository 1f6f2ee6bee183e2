/**
 * The wait and retry rules, in one place: how long to wait before the next poll, the next resend, the
 * next try after a refused sign-in, and how Temporal retries Graph reads and job-file activities. The
 * user's workflow, the job and `bulk-reset plan` all take their waits from here. Pure and
 * deterministic: safe in workflow code.
 */
import type { ResetPolicy } from './types';

/** Bounds of a wait: the first one without Retry-After, and the shortest and longest allowed. */
export interface WaitBounds {
  firstMs: number;
  minMs: number;
  maxMs: number;
}

/**
 * Graph's Retry-After when it sent one; otherwise `firstMs`, doubled for each further try that came
 * back without one; always within [minMs, maxMs].
 */
export function backoffMs(
  retryAfterMs: number | undefined,
  triesWithoutRetryAfter: number,
  { firstMs, minMs, maxMs }: WaitBounds,
): number {
  const wanted =
    retryAfterMs !== undefined
      ? retryAfterMs
      : firstMs * 2 ** Math.min(Math.max(triesWithoutRetryAfter - 1, 0), 16);
  return Math.min(Math.max(wanted, minMs), maxMs);
}

/**
 * The wait before the next poll: Graph's Retry-After when it sent one, clamped to the policy's bounds;
 * otherwise the default wait, doubled for each consecutive answer without one.
 */
export function nextWaitMs(
  retryAfterMs: number | undefined,
  answersWithoutRetryAfter: number,
  policy: ResetPolicy,
): number {
  return backoffMs(retryAfterMs, answersWithoutRetryAfter, {
    firstMs: policy.defaultWaitMs,
    minMs: policy.minWaitMs,
    maxMs: policy.maxWaitMs,
  });
}

/**
 * The wait before sending a refused reset again (after `sends` requests): like nextWaitMs, but never
 * shorter than the Retry-After of the 429 or 503 that refused it. Graph asked for that wait, and sending
 * sooner only earns another refusal; the policy's maximum bounds only the waits this tool picks itself.
 * The user's deadline still bounds the whole.
 */
export function resendWaitMs(retryAfterMs: number | undefined, sends: number, policy: ResetPolicy): number {
  const chosen = nextWaitMs(retryAfterMs, retryAfterMs === undefined ? sends : 0, policy);
  return Math.max(chosen, retryAfterMs ?? 0);
}

/** The first wait after a refused sign-in; it doubles twice, then repeats, never beyond the policy's maximum. */
export const SIGN_IN_FIRST_WAIT_MS = 15_000;

/** The wait of a sign-in hold after `waitsSoFar` waits in it. */
export function signInWaitMs(waitsSoFar: number, policy: ResetPolicy): number {
  return Math.min(
    Math.max(SIGN_IN_FIRST_WAIT_MS * 2 ** Math.min(waitsSoFar, 2), policy.minWaitMs),
    policy.maxWaitMs,
  );
}

/** How Temporal retries a Graph read (a GET is safe to repeat): from the policy's minimum to its maximum wait. */
export function graphReadRetry(policy: ResetPolicy) {
  return { initialInterval: policy.minWaitMs, backoffCoefficient: 2, maximumInterval: policy.maxWaitMs };
}

/** How Temporal retries the job's own file activities (rows, ledger, report): soon, then up to a minute. */
export const JOB_FILE_RETRY = { initialInterval: '1 second', maximumInterval: '1 minute' } as const;

/** How Temporal retries the job's look for inherited users that ended without reporting. */
export const INHERITED_CHECK_RETRY = { initialInterval: '1 second', maximumInterval: '30 seconds' } as const;

/**
 * Identity Protection allows about one request per second per tenant, all apps together: a job's
 * confirmCompromised batches are sent at least this far apart (the next one waits this long after the
 * last one ended, retries included).
 */
export const CONFIRM_SPACING_MS = 1_000;

/** Bounds of the wait after an Identity Protection 429, which never carries a Retry-After. */
export const CONFIRM_BACKOFF: WaitBounds = { firstMs: 2_000, minMs: CONFIRM_SPACING_MS, maxMs: 60_000 };

/**
 * Exponential backoff with equal jitter, for a service that names no wait: half of backoffMs's wait for
 * this try, plus a random share (`random` in [0, 1)) of the other half, never below `minMs`. The jitter
 * keeps two jobs (or two tenants' workers) that were throttled together from retrying in step. The caller
 * draws `random` (an activity, not workflow code).
 */
export function jitteredBackoffMs(tries: number, bounds: WaitBounds, random: number): number {
  const full = backoffMs(undefined, tries, bounds);
  const share = Math.min(Math.max(random, 0), 1);
  return Math.max(bounds.minMs, Math.round(full / 2 + (full / 2) * share));
}

/**
 * How Temporal retries a confirmCompromised batch when the activity names no wait of its own (the
 * activity sets each retry's delay with jitteredBackoffMs after a 429).
 */
export const CONFIRM_RETRY = {
  initialInterval: CONFIRM_BACKOFF.firstMs,
  backoffCoefficient: 2,
  maximumInterval: CONFIRM_BACKOFF.maxMs,
} as const;
