/**
 * A Microsoft Graph stand-in for the calls bulk-reset makes: resetPassword, polling the operation it
 * returns, revokeSignInSessions and the preflight lookups (the user, its directory roles). It is a real HTTP server so that the
 * Graph client, the worker and the demo talk to it exactly as they talk to Graph.
 *
 * Each user follows a scripted scenario (see `ScenarioName`), and every request is counted. Tests treat
 * the counters as ground truth, so they are exact: a request is attributed to the user in its path,
 * and the control endpoints under `/_sim/` are never counted as traffic.
 *
 * Where a scenario does not say otherwise it answers as Graph does: the `Location` of an accepted reset
 * names the host the caller used and the user's object id, a user lookup returns Graph's default
 * properties or exactly the `$select`ed ones, and a succeeded operation says `ResetSuccess` and names
 * the password method it changed.
 *
 * Passwords are never stored or logged: only whether the caller supplied one.
 *
 * This file starts and stops the server and carries each request from the socket to its answer. The
 * rest lives beside it, one concern a module: `options.ts` (options and their checks), `scenarios.ts`
 * (scenario names, parsing, what each scripts), `faults.ts` (seeded random faults and the outage),
 * `state.ts` (users, operations, counters, budgets), `routes.ts` (the Graph endpoints) with `resets.ts`
 * (resetPassword and its operation), `control.ts` (the `/_sim/` endpoints) and `answers.ts` (Graph's wire
 * facts and error answers).
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type Answer,
  JSON_CONTENT_TYPE,
  PERMANENT_STATUSES,
  type RequestContext,
  invalidTokenAnswer,
  notFoundRouteAnswer,
} from './answers';
import { controlAnswer } from './control';
import { type SimulatorOptions, type SimulatorSettings, resolveOptions } from './options';
import { graphRoute } from './routes';
import { type Simulation, SimulatorState, type SimulatorStats, type UserStats } from './state';

export type { FaultChannel, FaultDraw, FaultKind, FaultRates } from './faults';
export { faultDraw, faultFor } from './faults';
export type { SimulatorOptions } from './options';
export type { CountedScenarioName, ScenarioName, ScenarioSpec } from './scenarios';
export { COUNTED_SCENARIOS, SCENARIOS, scenarioFor } from './scenarios';
export type { EarlyRequest, SimulatorStats, UserStats } from './state';

export interface GraphSimulator {
  /** e.g. http://127.0.0.1:PORT/v1.0 */
  readonly baseUrl: string;
  stats(): SimulatorStats;
  user(user: string): UserStats | undefined;
  users(): UserStats[];
  /**
   * With `keepPasswords` (tests only): the passwords this user's POSTs carried (`received`, any answer)
   * and the password of each accepted reset in order, supplied or generated (`accepted`; the last one is
   * current). Undefined for a user never seen or when passwords are not kept.
   */
  passwords(user: string): { received: string[]; accepted: string[] } | undefined;
  /** Zeroes every counter; peaks restart from the current levels. Scenario progress is kept. */
  resetCounters(): void;
  /**
   * Makes the token invalid (as if it expired or the operator's sessions were revoked): every Graph call
   * is answered 401 InvalidAuthenticationToken until `restoreToken`. Also `POST /_sim/revoke-token`.
   */
  revokeToken(): void;
  /** Accepts the token again, as after `bulk-reset login`. Also `POST /_sim/restore-token`. */
  restoreToken(): void;
  /**
   * Graph goes down: every Graph request is answered 503 with Retry-After until `endOutage`, or for
   * `seconds` when given. Operations already accepted carry on meanwhile, as in Graph.
   */
  startOutage(seconds?: number): void;
  endOutage(): void;
  outageActive(): boolean;
  close(): Promise<void>;
}

/**
 * The Retry-After header for a wait of `seconds` sent at `nowMs`, in seconds or as an HTTP-date, and
 * the wait it really asks for. An HTTP-date counts whole seconds: its moment is rounded up, so the
 * wait is never shorter than meant.
 */
function retryAfterHeader(
  seconds: number,
  asDate: boolean,
  nowMs: number,
): { value: string; waitSeconds: number } {
  if (!asDate) return { value: String(seconds), waitSeconds: seconds };
  const at = Math.ceil((nowMs + seconds * 1000) / 1000) * 1000;
  return { value: new Date(at).toUTCString(), waitSeconds: (at - nowMs) / 1000 };
}

/** `http://{Host}/v1.0` when the request's Host header is a plain host[:port]; else undefined. */
function callerBase(req: IncomingMessage): string | undefined {
  const host = req.headers.host;
  if (!host || !/^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/.test(host)) return undefined;
  return `http://${host}/v1.0`;
}

function isAbortError(error: unknown): boolean {
  return error instanceof Error && error.name === 'AbortError';
}

/**
 * The answer of any request: the token check first (a refused Graph request counts as unauthorized),
 * then a control endpoint, the revoked-token switch, and the Graph routes.
 */
async function route(
  sim: Simulation,
  ctx: RequestContext,
  req: IncomingMessage,
  url: URL,
  segments: string[],
): Promise<Answer> {
  const { state, settings } = sim;
  const auth = req.headers.authorization ?? '';
  const match = /^Bearer\s+(.+)$/i.exec(auth.trim());
  if (!match || match[1] !== settings.token) {
    if (!ctx.control) state.counters.unauthorized++;
    return invalidTokenAnswer(
      match ? 'Access token validation failure. Invalid audience.' : 'Access token is empty.',
    );
  }
  if (ctx.control) return controlAnswer(state, req, url, segments) ?? notFoundRouteAnswer(url);
  if (state.tokenRevoked) {
    state.counters.unauthorized++;
    return invalidTokenAnswer('Lifetime validation failed, the token is expired.');
  }
  return graphRoute(sim, ctx, req, url, segments);
}

/** Starts the simulator and resolves once it listens. */
export async function startGraphSimulator(options: SimulatorOptions): Promise<GraphSimulator> {
  const settings: SimulatorSettings = resolveOptions(options);
  const state = new SimulatorState(settings);
  const sim: Simulation = { settings, state };
  const closing = new AbortController();
  /** Where the simulator listens (or its public base URL): for callers without a usable Host header. */
  let baseUrl = '';

  function recordStatus(ctx: RequestContext, key: string): void {
    const counts = state.counters.responsesByStatus;
    if (!ctx.control) counts[key] = (counts[key] ?? 0) + 1;
  }

  function deliver(ctx: RequestContext, req: IncomingMessage, res: ServerResponse, answer: Answer): void {
    const user = ctx.user;
    if (answer.drop) {
      recordStatus(ctx, 'dropped');
      if (user) user.notBefore = undefined;
      req.socket.destroy();
      return;
    }
    const headers: Record<string, string> = {
      'request-id': ctx.requestId,
      'client-request-id': ctx.clientRequestId,
      ...answer.headers,
    };
    // Taken before the answer leaves, so a request arriving at sentAt + Retry-After or later is never early.
    const sentAt = performance.now();
    const retryAfter =
      answer.retryAfterSeconds === undefined
        ? undefined
        : retryAfterHeader(answer.retryAfterSeconds, user?.scenario === 'httpdate', Date.now());
    if (retryAfter !== undefined) headers['Retry-After'] = retryAfter.value;
    let body = answer.body;
    if (answer.error) {
      body = {
        error: {
          ...answer.error,
          innerError: {
            date: new Date().toISOString(),
            'request-id': ctx.requestId,
            'client-request-id': ctx.clientRequestId,
          },
        },
      };
    }
    const text = body === undefined ? undefined : JSON.stringify(body);
    if (text !== undefined) headers['Content-Type'] = JSON_CONTENT_TYPE;

    if (user) {
      user.notBefore = retryAfter === undefined ? undefined : sentAt + retryAfter.waitSeconds * 1000;
      user.notBeforeSetBy =
        retryAfter === undefined
          ? undefined
          : { request: ctx.request, status: answer.status, retryAfterSeconds: retryAfter.waitSeconds };
      if (answer.terminal ?? PERMANENT_STATUSES.has(answer.status)) state.finishUser(user);
    }
    recordStatus(ctx, String(answer.status));
    res.writeHead(answer.status, headers);
    res.end(text);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const clientRequestId = req.headers['client-request-id'];
    const url = new URL(req.url ?? '/', 'http://simulator.invalid');
    const rawSegments = url.pathname.split('/').slice(1);
    const ctx: RequestContext = {
      requestId: randomUUID(),
      clientRequestId:
        typeof clientRequestId === 'string' && clientRequestId !== '' ? clientRequestId : randomUUID(),
      arrivedAt: performance.now(),
      control: rawSegments[0] === '_sim',
      request: `${req.method ?? 'GET'} ${url.pathname}`,
      base: settings.publicBaseUrl ?? callerBase(req) ?? baseUrl,
      appOnly: settings.caller.identity === 'app',
    };
    if (!ctx.control) state.requestStarted();
    try {
      let segments: string[] | undefined;
      try {
        segments = rawSegments.map((segment) => decodeURIComponent(segment));
      } catch {
        segments = undefined;
      }
      const answer = segments ? await route(sim, ctx, req, url, segments) : notFoundRouteAnswer(url);
      if (!ctx.control && settings.latencyMs > 0) {
        await sleep(settings.latencyMs, undefined, { signal: closing.signal });
      }
      deliver(ctx, req, res, answer);
    } catch (error) {
      if (isAbortError(error) || closing.signal.aborted) {
        req.socket.destroy();
        return;
      }
      const message = error instanceof Error ? error.message : String(error);
      deliver(ctx, req, res, {
        status: 500,
        error: { code: 'generalException', message: `Graph simulator failed: ${message}` },
      });
    } finally {
      if (!ctx.control) state.requestEnded();
    }
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      // Only reachable if answering itself failed (socket gone): nothing left to tell the caller.
      if (!res.headersSent) req.socket.destroy();
      if (!closing.signal.aborted) console.error('graph simulator: could not answer', error);
    });
  });

  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  baseUrl = settings.publicBaseUrl ?? `http://${host.includes(':') ? `[${host}]` : host}:${port}/v1.0`;

  return {
    baseUrl,
    stats: () => state.snapshot(),
    user: (user: string) => {
      const found = state.findUser(user);
      return found && state.userStats(found);
    },
    users: () => state.allUserStats(),
    passwords: (user: string) => {
      const found = state.findUser(user);
      return (
        found?.passwords && {
          received: [...found.passwords.received],
          accepted: [...found.passwords.accepted],
        }
      );
    },
    resetCounters: () => state.resetCounters(),
    revokeToken: () => {
      state.tokenRevoked = true;
    },
    restoreToken: () => {
      state.tokenRevoked = false;
    },
    startOutage: (seconds?: number) => state.startOutage(seconds),
    endOutage: () => state.endOutage(),
    outageActive: () => state.outageActive(),
    close: () =>
      new Promise<void>((resolve, reject) => {
        closing.abort();
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}
