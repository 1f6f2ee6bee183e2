/**
 * The one place where Graph answers are classified. Everything downstream (activities, workflows,
 * the report) works with a GraphError's `kind`, never with HTTP statuses.
 */

/**
 * - `permanent`: retrying cannot help (400, 403, 404, ...): the user's reset ends at once.
 * - `transient`: try again later (429, 5xx, network, timeout), honouring `retryAfterMs` when Graph gave one.
 * - `auth`: the operator's token was refused (401): not the user's fault; retried after a token refresh.
 */
export type GraphErrorKind = 'permanent' | 'transient' | 'auth';

export interface GraphErrorInit {
  kind: GraphErrorKind;
  /** HTTP status, absent for network errors and timeouts. */
  status?: number;
  /** Graph's error code (`Authorization_RequestDenied`), or a local one (`NetworkError`, `Timeout`). */
  code: string;
  requestId?: string;
  retryAfterMs?: number;
  /**
   * True when the request may have reached Graph and been applied although no answer came back
   * (connection dropped or timed out after sending). Re-sending such a reset may reset the user twice.
   */
  ambiguous?: boolean;
  /**
   * The refusal concerns the tenant or the caller (a missing licence, permission or role), not the users
   * the request named: every request of that kind would get the same answer, so the caller stops sending.
   */
  tenantWide?: boolean;
  cause?: unknown;
}

export class GraphError extends Error {
  readonly kind: GraphErrorKind;
  readonly status?: number;
  readonly code: string;
  readonly requestId?: string;
  readonly retryAfterMs?: number;
  readonly ambiguous: boolean;
  readonly tenantWide: boolean;

  constructor(message: string, init: GraphErrorInit) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = 'GraphError';
    this.kind = init.kind;
    this.status = init.status;
    this.code = init.code;
    this.requestId = init.requestId;
    this.retryAfterMs = init.retryAfterMs;
    this.ambiguous = init.ambiguous ?? false;
    this.tenantWide = init.tenantWide ?? false;
  }
}

/** Statuses worth trying again: throttling, timeouts and server trouble. */
const TRANSIENT_STATUSES = new Set([408, 429, 500, 502, 503, 504]);

export function kindForStatus(status: number): GraphErrorKind {
  if (status === 401) return 'auth';
  if (TRANSIENT_STATUSES.has(status)) return 'transient';
  return 'permanent';
}

/** The fields of Graph's error JSON we keep; anything else in the body is ignored. */
export interface GraphErrorBody {
  code?: string;
  message?: string;
  requestId?: string;
}

/** Reads Graph's `{"error": {"code", "message", "innerError": {"request-id"}}}`, leniently. */
export function parseGraphErrorBody(text: string): GraphErrorBody {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return {};
  }
  const error = isRecord(parsed) && isRecord(parsed.error) ? parsed.error : undefined;
  if (!error) return {};
  const inner = isRecord(error.innerError)
    ? error.innerError
    : isRecord(error.innererror)
      ? error.innererror
      : {};
  return {
    code: typeof error.code === 'string' ? error.code : undefined,
    message: typeof error.message === 'string' ? error.message : undefined,
    requestId: typeof inner['request-id'] === 'string' ? inner['request-id'] : undefined,
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A one-line hint for the operator, by Graph status. */
export function adviceFor(status: number | undefined, code: string): string {
  if (status === 403)
    return 'the signed-in operator (or, app-only, the app) lacks the role or the permission to reset this user (see README: permissions)';
  if (status === 404) return 'check the userPrincipalName or id in the CSV';
  if (status === 400)
    return 'Graph refused the request; for a password policy error choose a stronger password or let Graph generate one';
  if (status === 401) return 'sign in again with `bulk-reset login`';
  if (code === 'AppOnlyResetRefused') return 'an app-only credential can only run --method password-profile';
  if (code === 'Timeout') return 'Graph did not answer in time';
  return 'Graph or the network had trouble; it will be retried';
}
