/**
 * The one Microsoft Graph client: the calls bulk-reset makes, over Node's fetch.
 *
 * It never retries on its own (Temporal owns retries) and never logs: every failure becomes a
 * GraphError classified once, here, with the status, Graph's code and message, request-id and
 * Retry-After kept for the outcome.
 */
import type { TokenCredential } from '@azure/identity';
import { GraphError, kindForStatus, parseGraphErrorBody } from './errors';
import { parseRetryAfter } from './retryAfter';
import { type TokenFacts, tokenFacts } from './tokenClaims';

/** The password authentication method has this fixed id in every tenant. */
export const PASSWORD_METHOD_ID = '28c10230-6103-485e-b985-444c60001490';

export const DEFAULT_GRAPH_BASE_URL = 'https://graph.microsoft.com/v1.0';

/** The least-privileged delegated permission that allows resetPassword, for the Graph host in use. */
export function graphScopes(baseUrl: string): string[] {
  return [`${new URL(baseUrl).origin}/UserAuthenticationMethod.ReadWrite.All`];
}

/**
 * The delegated permissions a read-only preflight (`bulk-reset plan`) needs: `User.Read.All` for the
 * user and its memberships, `RoleManagement.Read.Directory` for the names of its directory roles.
 */
export function preflightScopes(baseUrl: string): string[] {
  const origin = new URL(baseUrl).origin;
  return [`${origin}/User.Read.All`, `${origin}/RoleManagement.Read.Directory`];
}

/**
 * The least-privileged permission for a passwordProfile PATCH, delegated or application: what a token
 * must carry for `--method password-profile` (see README: the password-profile method).
 */
export const PASSWORD_PROFILE_PERMISSION = 'User-PasswordProfile.ReadWrite.All';

/** The delegated permission resetPassword needs. */
export const RESET_PASSWORD_PERMISSION = 'UserAuthenticationMethod.ReadWrite.All';

/** The scope an app-only credential asks for: every application permission the app was granted. */
export function appOnlyScopes(baseUrl: string): string[] {
  return [`${new URL(baseUrl).origin}/.default`];
}

export interface GraphClientOptions {
  /** `https://graph.microsoft.com/v1.0`, a national cloud's host, or the simulator. */
  baseUrl: string;
  credential: TokenCredential;
  /** Scopes to request tokens for; defaults to {@link graphScopes}. */
  scopes?: string[];
  /** Each request is aborted after this long; default 30 s. */
  requestTimeoutMs?: number;
  /** Told of every answer (or its absence), for metrics; it must not throw or block. */
  observer?: GraphObserver;
  /**
   * The credential is an application's own (certificate, managed or workload identity, secret): no
   * resetPassword is sent with it, whatever its tokens say (see refuseAppOnlyReset).
   */
  appOnly?: boolean;
}

/** Which of the client's calls a request belongs to. */
export type GraphCall =
  'resetPassword' | 'passwordProfile' | 'poll' | 'revoke' | 'getUser' | 'getRoles' | 'confirmCompromised';

/**
 * One request as a metric sees it: the call, and Graph's HTTP status or why there was none. Nothing
 * that names the user or the request: observers feed metrics, which must stay low-cardinality.
 */
export interface GraphExchange {
  call: GraphCall;
  /**
   * The HTTP status; without an answer, `timeout` (the request timed out), `cancelled` (the caller
   * aborted it) or `network` (the connection failed or was dropped).
   */
  status: number | 'timeout' | 'cancelled' | 'network';
  /** The Retry-After Graph sent with the answer, if any. */
  retryAfterMs?: number;
}

export type GraphObserver = (exchange: GraphExchange) => void;

export interface RequestOptions {
  /** Aborts the request (for example when Temporal cancels the activity). */
  abortSignal?: AbortSignal;
  /**
   * Runs after the token is in hand and right before the request leaves, as late as the caller can
   * learn it may leave (the send journal records a reset's intent here). If it throws, nothing is sent.
   */
  beforeSend?: () => Promise<void>;
}

/** Graph accepted the reset (202). */
export interface ResetAccepted {
  /** The operation to poll, exactly as Graph gave it; absent when Graph sent no Location. */
  operationUrl?: string;
  operationId?: string;
  retryAfterMs?: number;
  requestId?: string;
  /**
   * The password Graph generated when the caller supplied none. A secret: callers must not put it in
   * Temporal payloads, logs or reports.
   */
  generatedPassword?: string;
}

/** One poll of the long-running operation. `status` is Graph's string as sent, known or not. */
export interface OperationState {
  status: string;
  statusDetail?: string;
  operationId?: string;
  retryAfterMs?: number;
  requestId?: string;
}

export interface GraphUser {
  id: string;
  userPrincipalName?: string;
  accountEnabled?: boolean;
  onPremisesSyncEnabled?: boolean | null;
  lastPasswordChangeDateTime?: string;
}

interface GraphResponse {
  status: number;
  headers: Headers;
  body: string;
}

export class GraphClient {
  private readonly baseUrl: string;
  private readonly credential: TokenCredential;
  private readonly scopes: string[];
  private readonly requestTimeoutMs: number;
  private readonly observer?: GraphObserver;
  private readonly appOnly: boolean;

  constructor(options: GraphClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.credential = options.credential;
    this.appOnly = options.appOnly === true;
    this.scopes = options.scopes ?? (this.appOnly ? appOnlyScopes(this.baseUrl) : graphScopes(this.baseUrl));
    this.requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
    this.observer = options.observer;
  }

  /** What the token this client sends says of its caller and permissions (bulk-reset plan checks them). */
  async tokenFacts(): Promise<TokenFacts> {
    return tokenFacts(await this.token());
  }

  /** Whether this client's credential is an application's own (no signed-in operator). */
  get isAppOnly(): boolean {
    return this.appOnly;
  }

  /** `POST /users/{user}/authentication/methods/{password}/resetPassword`. */
  async startPasswordReset(
    user: string,
    options: RequestOptions & { newPassword?: string } = {},
  ): Promise<ResetAccepted> {
    const url = `${this.userUrl(user)}/authentication/methods/${PASSWORD_METHOD_ID}/resetPassword`;
    const body = options.newPassword === undefined ? {} : { newPassword: options.newPassword };
    const response = await this.send('resetPassword', 'POST', url, body, options);
    const operationUrl = response.headers.get('location') ?? undefined;
    return {
      operationUrl,
      operationId: operationUrl ? operationIdFrom(operationUrl) : undefined,
      retryAfterMs: parseRetryAfter(response.headers.get('retry-after')),
      requestId: response.headers.get('request-id') ?? undefined,
      generatedPassword: readString(parseJsonObject(response.body), 'newPassword'),
    };
  }

  /**
   * `PATCH /users/{user}` with a passwordProfile: the new password, and whether the user must change it
   * at next sign-in (after MFA). Graph answers 204 at once; there is no operation to poll.
   */
  async updatePasswordProfile(
    user: string,
    options: RequestOptions & { password: string; forceChange: boolean; forceChangeWithMfa?: boolean },
  ): Promise<{ requestId?: string }> {
    const body = {
      passwordProfile: {
        password: options.password,
        forceChangePasswordNextSignIn: options.forceChange,
        ...(options.forceChangeWithMfa !== undefined && {
          forceChangePasswordNextSignInWithMfa: options.forceChangeWithMfa,
        }),
      },
    };
    const response = await this.send('passwordProfile', 'PATCH', this.userUrl(user), body, options);
    return { requestId: response.headers.get('request-id') ?? undefined };
  }

  /** `GET {Location}`: the URL is followed verbatim, query string included. */
  async getOperation(operationUrl: string, options: RequestOptions = {}): Promise<OperationState> {
    this.assertSameOrigin(operationUrl);
    let response: GraphResponse;
    try {
      response = await this.send('poll', 'GET', operationUrl, undefined, options);
    } catch (error) {
      // Graph is eventually consistent: the operation of an accepted reset may not be readable yet. A 404
      // here is "not visible yet", polled again like a 429 until the user's deadline; a 404 on the reset
      // itself (the user does not exist) stays permanent.
      if (!(error instanceof GraphError) || error.status !== 404) throw error;
      throw new GraphError(
        `Graph does not show the accepted reset's operation yet (${error.message}); polling again`,
        {
          kind: 'transient',
          status: 404,
          code: 'OperationNotVisibleYet',
          requestId: error.requestId,
          retryAfterMs: error.retryAfterMs,
          cause: error,
        },
      );
    }
    const operation = parseJsonObject(response.body);
    const status = readString(operation, 'status');
    if (status === undefined) {
      throw new GraphError(`Graph answered the operation poll without a status`, {
        kind: 'transient',
        status: response.status,
        code: 'MalformedOperation',
        requestId: response.headers.get('request-id') ?? undefined,
      });
    }
    return {
      status,
      statusDetail: readString(operation, 'statusDetail'),
      operationId: readString(operation, 'id') ?? operationIdFrom(operationUrl),
      retryAfterMs: parseRetryAfter(response.headers.get('retry-after')),
      requestId: response.headers.get('request-id') ?? undefined,
    };
  }

  /** `POST /users/{user}/revokeSignInSessions`. */
  async revokeSignInSessions(user: string, options: RequestOptions = {}): Promise<void> {
    await this.send('revoke', 'POST', `${this.userUrl(user)}/revokeSignInSessions`, {}, options);
  }

  /**
   * `POST /identityProtection/riskyUsers/confirmCompromised` with `{ userIds }` (Graph's object ids, not
   * userPrincipalNames): sets each user's risk to high. Graph answers 204 and allows about one such
   * request per second per tenant, all apps together; its 429s carry no Retry-After, so the caller picks
   * the wait. A 403 is the tenant's or the caller's (no Entra ID P2 licence, no
   * IdentityRiskyUser.ReadWrite.All, no Security Administrator role), never one user's: it comes back
   * marked `tenantWide`, as does any refusal that names a licence.
   */
  async confirmCompromised(
    objectIds: string[],
    options: RequestOptions = {},
  ): Promise<{ requestId?: string }> {
    try {
      const response = await this.send(
        'confirmCompromised',
        'POST',
        `${this.baseUrl}/identityProtection/riskyUsers/confirmCompromised`,
        { userIds: objectIds },
        options,
      );
      return { requestId: response.headers.get('request-id') ?? undefined };
    } catch (error) {
      if (!(error instanceof GraphError) || !refusesTenant(error)) throw error;
      throw new GraphError(
        `Identity Protection refused confirmCompromised for this tenant or caller (${error.message})`,
        {
          kind: 'permanent',
          status: error.status,
          code: error.code,
          requestId: error.requestId,
          tenantWide: true,
          cause: error,
        },
      );
    }
  }

  /** `GET /users/{user}` with the fields a preflight needs. */
  async getUser(user: string, options: RequestOptions = {}): Promise<GraphUser> {
    const select = 'id,userPrincipalName,accountEnabled,onPremisesSyncEnabled,lastPasswordChangeDateTime';
    const response = await this.send(
      'getUser',
      'GET',
      `${this.userUrl(user)}?$select=${select}`,
      undefined,
      options,
    );
    const body = parseJsonObject(response.body);
    return {
      id: readString(body, 'id') ?? '',
      userPrincipalName: readString(body, 'userPrincipalName'),
      accountEnabled: typeof body.accountEnabled === 'boolean' ? body.accountEnabled : undefined,
      onPremisesSyncEnabled:
        typeof body.onPremisesSyncEnabled === 'boolean' ? body.onPremisesSyncEnabled : null,
      lastPasswordChangeDateTime: readString(body, 'lastPasswordChangeDateTime'),
    };
  }

  /**
   * The display names of the directory roles the user holds, directly or through a role-assignable
   * group: `GET /users/{user}/transitiveMemberOf/microsoft.graph.directoryRole`. An empty list means
   * no active role; a role the user is only eligible for (Privileged Identity Management) is not listed.
   *
   * Permissions (delegated): `User.Read.All` for the membership and `RoleManagement.Read.Directory` for
   * the roles' names. Without the latter Graph still lists the roles but with their ids only: the role
   * template id (or object id) then stands in for the name, so an admin is never reported as none.
   */
  async getAdminRoles(user: string, options: RequestOptions = {}): Promise<string[]> {
    const roles = new Set<string>();
    // A cast is an advanced query: Graph wants ConsistencyLevel: eventual and $count with it.
    let url: string | undefined =
      `${this.userUrl(user)}/transitiveMemberOf/microsoft.graph.directoryRole` +
      '?$select=id,displayName,roleTemplateId&$count=true';
    while (url !== undefined) {
      const response = await this.send('getRoles', 'GET', url, undefined, options, {
        consistencylevel: 'eventual',
      });
      const page = parseJsonObject(response.body);
      if (!Array.isArray(page.value)) {
        // Never read a malformed answer as "no roles": that would hide an administrator.
        throw new GraphError('Graph answered the directory-role lookup without a list of roles', {
          kind: 'transient',
          status: response.status,
          code: 'MalformedResponse',
          requestId: response.headers.get('request-id') ?? undefined,
        });
      }
      for (const role of page.value as unknown[]) {
        const fields = typeof role === 'object' && role !== null ? (role as Record<string, unknown>) : {};
        const name =
          readString(fields, 'displayName') ??
          readString(fields, 'roleTemplateId') ??
          readString(fields, 'id');
        roles.add(name ?? 'unnamed directory role');
      }
      url = readString(page, '@odata.nextLink');
      if (url !== undefined) this.assertSameOrigin(url, 'next page link');
    }
    return [...roles];
  }

  /**
   * The bearer token goes only to the Graph host we were configured with: a Location (or next page
   * link) naming any other host (a tampered answer, a proxy gone wrong) is refused rather than followed.
   */
  private assertSameOrigin(url: string, what = 'operation Location'): void {
    let origin: string | undefined;
    try {
      origin = new URL(url).origin;
    } catch {
      origin = undefined;
    }
    if (origin !== new URL(this.baseUrl).origin) {
      throw new GraphError(
        `Graph's ${what} is not on ${new URL(this.baseUrl).host}; refusing to send the token there`,
        {
          kind: 'permanent',
          code: 'UntrustedLocation',
        },
      );
    }
  }

  private userUrl(user: string): string {
    // A UPN may hold characters that are special in a path ('#', '?', '/', '%'): encode the whole segment.
    return `${this.baseUrl}/users/${encodeURIComponent(user)}`;
  }

  private async send(
    call: GraphCall,
    method: 'GET' | 'POST' | 'PATCH',
    url: string,
    body: unknown,
    options: RequestOptions,
    headers: Record<string, string> = {},
  ): Promise<GraphResponse> {
    const token = await this.token();
    if (call === 'resetPassword') this.refuseAppOnlyReset(token);
    await options.beforeSend?.();
    const timeout = AbortSignal.timeout(this.requestTimeoutMs);
    const signal = options.abortSignal ? AbortSignal.any([options.abortSignal, timeout]) : timeout;
    let response: Response;
    let text: string;
    try {
      response = await fetch(url, {
        method,
        headers: {
          ...headers,
          authorization: `Bearer ${token}`,
          accept: 'application/json',
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
        redirect: 'error',
      });
      text = await response.text();
    } catch (error) {
      this.observe({
        call,
        status: timeout.aborted ? 'timeout' : options.abortSignal?.aborted ? 'cancelled' : 'network',
      });
      throw networkError(method, url, error, timeout.aborted);
    }
    this.observe({
      call,
      status: response.status,
      retryAfterMs: parseRetryAfter(response.headers.get('retry-after')),
    });
    if (response.status >= 200 && response.status < 300) {
      return { status: response.status, headers: response.headers, body: text };
    }
    const graph = parseGraphErrorBody(text);
    const code = graph.code ?? `HTTP${response.status}`;
    const requestId = graph.requestId ?? response.headers.get('request-id') ?? undefined;
    const detail = graph.message ? `: ${graph.message}` : '';
    throw new GraphError(`Graph answered ${response.status} ${code}${detail}`, {
      kind: kindForStatus(response.status),
      status: response.status,
      code,
      requestId,
      retryAfterMs: parseRetryAfter(response.headers.get('retry-after')),
    });
  }

  /**
   * The one place that keeps resetPassword from being sent app-only, in the worker, at the write: Graph
   * does not allow it (it would answer 401 or 403 for every user). Decided by the credential's kind and
   * by the token about to be sent (an app-only token has no `scp`), so neither a job started without the
   * CLI's check nor a GRAPH_TOKEN that is an app's gets past it. Nothing is sent.
   */
  private refuseAppOnlyReset(token: string): void {
    if (!this.appOnly && tokenFacts(token).identity !== 'app') return;
    throw new GraphError(
      'Graph does not allow resetPassword with an application (app-only) credential; nothing was sent: ' +
        'start the job with --method password-profile, or sign an operator in (bulk-reset login) for --method reset-password',
      { kind: 'permanent', code: APP_ONLY_RESET_REFUSED },
    );
  }

  private observe(exchange: GraphExchange): void {
    try {
      this.observer?.(exchange);
    } catch {
      // Metrics must never change what a call does.
    }
  }

  private async token(): Promise<string> {
    const whose = this.appOnly ? "the application's" : "the operator's";
    const todo = this.appOnly
      ? "check the app's credential settings (see README: app-only credentials)"
      : 'run `bulk-reset login`';
    try {
      const accessToken = await this.credential.getToken(this.scopes);
      if (accessToken) return accessToken.token;
    } catch (error) {
      // The credential's message can be long and may name the account; keep only its class.
      const name = error instanceof Error ? error.name : 'Error';
      throw new GraphError(`${whose} Graph token could not be obtained (${name}); ${todo}`, {
        kind: 'auth',
        code: 'SignInRequired',
      });
    }
    throw new GraphError(`${whose} Graph token could not be obtained; ${todo}`, {
      kind: 'auth',
      code: 'SignInRequired',
    });
  }
}

/** A refusal of an Identity Protection call that no user of it could change: permission, role or licence. */
function refusesTenant(error: GraphError): boolean {
  if (error.status === 403) return true;
  return error.kind === 'permanent' && /licen[cs]/i.test(`${error.code} ${error.message}`);
}

/** The GraphError code of a resetPassword the worker refused to send with an app-only credential. */
export const APP_ONLY_RESET_REFUSED = 'AppOnlyResetRefused';

/** Connection refused or name not resolved: the request never left, so it cannot have been applied. */
const NOT_SENT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

function networkError(method: string, url: string, error: unknown, timedOut: boolean): GraphError {
  const code = errorCode(error);
  const notSent = code !== undefined && NOT_SENT_CODES.has(code);
  const where = new URL(url).host;
  if (timedOut) {
    return new GraphError(`Graph (${where}) did not answer in time`, {
      kind: 'transient',
      code: 'Timeout',
      ambiguous: method !== 'GET',
      cause: error,
    });
  }
  return new GraphError(`the connection to Graph (${where}) failed${code ? ` (${code})` : ''}`, {
    kind: 'transient',
    code: 'NetworkError',
    ambiguous: method !== 'GET' && !notSent,
    cause: error,
  });
}

function errorCode(error: unknown): string | undefined {
  for (let current: unknown = error, depth = 0; current && depth < 5; depth++) {
    if (typeof current === 'object' && 'code' in current && typeof current.code === 'string')
      return current.code;
    current = typeof current === 'object' && 'cause' in current ? current.cause : undefined;
  }
  return undefined;
}

/** The last path segment of the operation URL, without its query string. */
export function operationIdFrom(operationUrl: string): string | undefined {
  try {
    const segments = new URL(operationUrl).pathname.split('/').filter(Boolean);
    return segments.length > 0 ? decodeURIComponent(segments[segments.length - 1]) : undefined;
  } catch {
    return undefined;
  }
}

function parseJsonObject(text: string): Record<string, unknown> {
  if (text.trim() === '') return {};
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : {};
  } catch {
    return {};
  }
}

function readString(object: Record<string, unknown>, key: string): string | undefined {
  const value = object[key];
  return typeof value === 'string' ? value : undefined;
}
