/**
 * A request as the routes see it, and the answers they give: Graph's wire facts and its error
 * answers, written once so every route refuses, throttles and misses in Graph's own words.
 */
import type { SimulatorState, UserState } from './state';

export interface RequestContext {
  requestId: string;
  clientRequestId: string;
  arrivedAt: number;
  /** Control-plane requests (/_sim/...) are neither delayed nor counted. */
  control: boolean;
  /** Method and path, for the early-request details. */
  request: string;
  /** The v1.0 base URL as the caller named it (or the public base URL): what Graph puts in its links. */
  base: string;
  /** The caller's token is app-only (see SimulatorOptions.token). */
  appOnly: boolean;
  user?: UserState;
}

export interface Answer {
  status: number;
  body?: unknown;
  error?: { code: string; message: string };
  headers?: Record<string, string>;
  /** Sent as Retry-After; also sets when the user's next request stops being early. */
  retryAfterSeconds?: number;
  /** The answer ends the user's work; unset, permanent 400/403/404 answers do and others do not. */
  terminal?: boolean;
  /** Destroy the socket instead of answering. */
  drop?: boolean;
}

export const GRAPH_CONTEXT = 'https://graph.microsoft.com/v1.0/$metadata';
export const JSON_CONTENT_TYPE =
  'application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8';
/** Statuses that end a user's work unless the answer says otherwise (see Answer.terminal). */
export const PERMANENT_STATUSES: ReadonlySet<number> = new Set([400, 403, 404]);

/** The connection is destroyed without an answer. */
export const DROPPED: Answer = Object.freeze({ status: 0, drop: true });

/** 429 TooManyRequests with Retry-After; counted in the simulator's `throttled`. */
export function throttledAnswer(state: SimulatorState, seconds: number): Answer {
  state.counters.throttled++;
  return {
    status: 429,
    error: {
      code: 'TooManyRequests',
      message: 'Too many requests. Please retry after the time given in the Retry-After header.',
    },
    retryAfterSeconds: seconds,
  };
}

/** 503 serviceNotAvailable with Retry-After. */
export function unavailableAnswer(retryAfterSeconds: number): Answer {
  return {
    status: 503,
    error: {
      code: 'serviceNotAvailable',
      message: 'The service is temporarily unavailable. Please retry after the time given in Retry-After.',
    },
    retryAfterSeconds,
  };
}

/** 401 InvalidAuthenticationToken, with Graph's challenge. */
export function invalidTokenAnswer(message: string): Answer {
  return {
    status: 401,
    error: { code: 'InvalidAuthenticationToken', message },
    headers: { 'WWW-Authenticate': 'Bearer realm="", error="invalid_token"' },
  };
}

export function badRequestAnswer(message: string, code = 'BadRequest'): Answer {
  return { status: 400, error: { code, message } };
}

/** 400 as Graph refuses a password its policy or banned-password list rejects. */
export function passwordRejectedAnswer(): Answer {
  return badRequestAnswer(
    'The password does not comply with the password complexity or banned password requirements.',
    'invalidRequest',
  );
}

/** 403 as Graph refuses a caller without the role to reset this user. */
export function accessDeniedAnswer(): Answer {
  return {
    status: 403,
    error: {
      code: 'Authorization_RequestDenied',
      message: 'Insufficient privileges to complete the operation.',
    },
  };
}

/** 403 as Graph refuses a call that takes no application permission, made with an app-only token. */
export function appOnlyRefusedAnswer(): Answer {
  return {
    status: 403,
    error: {
      code: 'Authorization_RequestDenied',
      message: 'This operation is not supported with application permissions; a signed-in user is required.',
    },
  };
}

/** 400 as Graph refuses to change what on-premises AD masters for a synced user. */
export function onPremisesMasteredAnswer(): Answer {
  return badRequestAnswer(
    'Unable to update the specified properties for on-premises mastered Directory Sync objects or objects currently undergoing migration.',
    'Request_BadRequest',
  );
}

export function notFoundUserAnswer(segment: string): Answer {
  return {
    status: 404,
    error: {
      code: 'Request_ResourceNotFound',
      message: `Resource '${segment}' does not exist or one of its queried reference-property objects are not present.`,
    },
  };
}

export function notFoundRouteAnswer(url: URL): Answer {
  return {
    status: 404,
    error: {
      code: 'Request_ResourceNotFound',
      message: `Resource not found for the segment '${url.pathname}'.`,
    },
  };
}

export function operationNotFoundAnswer(operationId: string, hint = ''): Answer {
  return {
    status: 404,
    error: {
      code: 'Request_ResourceNotFound',
      message: `Operation '${operationId}' was not found.${hint}`,
    },
  };
}
