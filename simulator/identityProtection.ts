/**
 * Identity Protection's `POST /identityProtection/riskyUsers/confirmCompromised`, as Graph answers it:
 * 204 for a body of object ids; about one request per second per tenant (all apps together), over which
 * it answers 429 without a Retry-After; and 403 for a tenant without the Entra ID P2 licence (option
 * `identityProtection.licensed: false`). Every request is recorded, with its time and ids, for tests.
 */
import type { IncomingMessage } from 'node:http';
import { performance } from 'node:perf_hooks';
import { type Answer, badRequestAnswer } from './answers';
import { readBody } from './resets';
import type { Simulation } from './state';

/** One confirmCompromised request as the simulator saw it. */
export interface ConfirmCompromisedRequest {
  /** Wall-clock arrival (ms since the epoch). */
  at: number;
  /** performance.now() at arrival: what the one-a-second limit is measured on. */
  arrivedAtMs: number;
  status: number;
  /** The ids the body named (empty for a body that could not be read). */
  userIds: string[];
}

/** What the simulator remembers of Identity Protection. */
export interface IdentityProtectionState {
  requests: ConfirmCompromisedRequest[];
  /** Times each object id was confirmed compromised (204 answers only). */
  confirmed: Map<string, number>;
  /** performance.now() of the last request that was let through, for the rate limit. */
  lastAcceptedAtMs?: number;
}

export function emptyIdentityProtection(): IdentityProtectionState {
  return { requests: [], confirmed: new Map() };
}

const OBJECT_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** 429 as Identity Protection sends it: Graph's error body, and no Retry-After. */
function throttledWithoutRetryAfter(): Answer {
  return {
    status: 429,
    error: { code: 'TooManyRequests', message: 'Too many requests.' },
  };
}

/** 403 for a tenant without Entra ID P2 (the wording Graph uses is not documented; this is a plausible one). */
function notLicensedAnswer(): Answer {
  return {
    status: 403,
    error: {
      code: 'Forbidden',
      message:
        'Your tenant is not licensed for this feature. The riskyUsers API requires a Microsoft Entra ID P2 license.',
    },
  };
}

export async function confirmCompromised(sim: Simulation, req: IncomingMessage): Promise<Answer> {
  const { state } = sim;
  const seen: ConfirmCompromisedRequest = {
    at: Date.now(),
    arrivedAtMs: performance.now(),
    status: 0,
    userIds: [],
  };
  state.identityProtection.requests.push(seen);
  const answer = await answerConfirm(sim, req, seen);
  seen.status = answer.status;
  if (answer.status === 429) state.counters.throttled++;
  return answer;
}

async function answerConfirm(
  { state: { identityProtection }, settings }: Simulation,
  req: IncomingMessage,
  seen: ConfirmCompromisedRequest,
): Promise<Answer> {
  const body = await readBody(req);
  // Measured between requests let through, as a token bucket of one refilled each 1/rate seconds.
  const spacingMs = 1000 / settings.identityProtection.requestsPerSecond;
  const last = identityProtection.lastAcceptedAtMs;
  if (last !== undefined && seen.arrivedAtMs - last < spacingMs) return throttledWithoutRetryAfter();
  identityProtection.lastAcceptedAtMs = seen.arrivedAtMs;
  if (!settings.identityProtection.licensed) return notLicensedAnswer();
  let userIds: unknown;
  try {
    userIds = body.ok ? (JSON.parse(body.text) as { userIds?: unknown }).userIds : undefined;
  } catch {
    userIds = undefined;
  }
  if (!Array.isArray(userIds) || userIds.length === 0 || !userIds.every((id) => typeof id === 'string')) {
    return badRequestAnswer('userIds must be a non-empty array of strings.', 'badRequest');
  }
  seen.userIds = userIds;
  const malformed = seen.userIds.find((id) => !OBJECT_ID.test(id));
  if (malformed !== undefined) {
    return badRequestAnswer(`Invalid user id '${malformed}': userIds must hold object ids.`, 'badRequest');
  }
  for (const id of seen.userIds) {
    const key = id.toLowerCase();
    identityProtection.confirmed.set(key, (identityProtection.confirmed.get(key) ?? 0) + 1);
  }
  return { status: 204 };
}
