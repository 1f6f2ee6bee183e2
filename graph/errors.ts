/**
 * The one place where Graph answers are classified. Everything downstream (activities, workflows,
 * the report) works with a GraphError's `kind`, never with HTTP statuses.
 */
import type { PasswordMode } from '../workflows/types';

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

/**
 * What a password-policy refusal (400) asks of the operator depends on where the password came from:
 * a `graph`-mode job sent none, so "let Graph generate one" would be advice it already followed.
 */
const PASSWORD_POLICY_ADVICE: Record<PasswordMode | 'unknown', string> = {
  graph:
    "Graph generated this password itself: an account synced from on-premises (hybrid) needs --password generated; otherwise check the tenant's password policy",
  generated:
    "the generated password did not meet the tenant's password policy: retry with a longer --password-length, or check the policy",
  csv: "put a password that meets the tenant's password policy in the CSV's newPassword column, or use --password generated",
  unknown:
    'Graph refused the request; for a password policy error choose a stronger password or let Graph generate one',
};

/**
 * A one-line hint for the operator, by Graph status, fitting the job's password mode when it is known.
 * Without a mode, the hint is what it always was, which reasons recorded before stay free to end with.
 */
export function adviceFor(status: number | undefined, code: string, mode?: PasswordMode): string {
  if (status === 403)
    return 'the signed-in operator (or, app-only, the app) lacks the role or the permission to reset this user (see README: permissions)';
  if (status === 404) return 'check the userPrincipalName or id in the CSV';
  if (status === 400) return PASSWORD_POLICY_ADVICE[mode ?? 'unknown'];
  if (status === 401) return 'sign in again with `bulk-reset login`';
  if (code === 'AppOnlyResetRefused') return 'an app-only credential can only run --method password-profile';
  if (code === 'Timeout') return 'Graph did not answer in time';
  return 'Graph or the network had trouble; it will be retried';
}

/**
 * Every hint adviceFor gives, in every mode: the hints a recorded reason may end with (`...; <hint>`), which
 * the report takes off the reason because its own hint column says it.
 */
export const ALL_ADVICE: readonly string[] = [
  ...new Set(
    [403, 404, 400, 401, undefined].flatMap((status) =>
      (['graph', 'generated', 'csv', undefined] as const).flatMap((mode) => [
        adviceFor(status, '', mode),
        adviceFor(status, 'Timeout', mode),
        adviceFor(status, 'AppOnlyResetRefused', mode),
      ]),
    ),
  ),
];

/**
 * The hint a report row gives for a failure decided by Graph, after the job: passing trouble is for
 * `bulk-reset retry`, a refusal gets adviceFor's hint in the job's password mode. Undefined for rows that
 * Graph did not decide (their reason says what to do) and for rows that did not fail.
 */
export function reportHintFor(
  outcome: { status: string; httpStatus?: number; graphCode?: string; retryable?: boolean },
  mode: PasswordMode | undefined,
): string | undefined {
  if (outcome.status !== 'failed' && outcome.status !== 'unconfirmed') return undefined;
  if (outcome.status === 'failed' && outcome.retryable === true) {
    return 'passing trouble (throttling, an outage, a timeout): `bulk-reset retry <job>` runs these rows again';
  }
  if (outcome.httpStatus === undefined && outcome.graphCode === undefined) return undefined;
  if (outcome.status === 'unconfirmed')
    return "check the user's lastPasswordChangeDateTime in Entra before resetting again";
  // No HTTP status: Graph accepted the reset and its operation ended so (graphCode is its final status).
  if (
    outcome.httpStatus === undefined &&
    outcome.graphCode !== 'Timeout' &&
    outcome.graphCode !== 'NetworkError'
  ) {
    return "Graph's reset operation failed: fix what the reason names (an on-premises writeback, say), then `bulk-reset retry --all-failed <job>`";
  }
  return adviceFor(outcome.httpStatus, outcome.graphCode ?? '', mode);
}
