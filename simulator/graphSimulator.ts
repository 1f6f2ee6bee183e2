/**
 * A Microsoft Graph stand-in for the calls bulk-reset makes: resetPassword, polling the operation it
 * returns, revokeSignInSessions and the preflight lookups (the user, its directory roles). It is a real HTTP server so that the
 * Graph client, the worker and the demo talk to it exactly as they talk to Graph.
 *
 * Each user follows a scripted scenario (see `ScenarioName`), and every request is counted. Tests treat
 * the counters as ground truth, so they are exact: a request is attributed to the user in its path,
 * and the control endpoints under `/_sim/` are never counted as traffic.
 *
 * Passwords are never stored or logged: only whether the caller supplied one.
 */
import { createHash, randomInt, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

// ---------------------------------------------------------------------------------------------------------
// Types

export type ScenarioName =
  | 'ok'
  | 'slow'
  | 'opfail'
  | 'badpw'
  | 'denied'
  | 'missing'
  | 'throttled'
  | 'flaky'
  | 'drop'
  // The first POST is accepted and the reset applied, then the connection drops before the 202 arrives.
  | 'dropafter'
  | 'noretry'
  | 'nolocation'
  | 'unknown'
  | 'pollthrottle'
  // Directory attributes for a preflight (`GET /users/{id}` and its roles); their resets behave like 'ok'.
  | 'disabled'
  | 'synced'
  | 'admin';

export const SCENARIOS: readonly ScenarioName[] = [
  'ok',
  'slow',
  'opfail',
  'badpw',
  'denied',
  'missing',
  'throttled',
  'flaky',
  'drop',
  'dropafter',
  'noretry',
  'nolocation',
  'unknown',
  'pollthrottle',
  'disabled',
  'synced',
  'admin',
];

export interface SimulatorOptions {
  /** Default 0: an ephemeral port, read it back from `baseUrl`. */
  port?: number;
  /** Default '127.0.0.1'. */
  host?: string;
  /**
   * The base URL clients reach the simulator at, for the `Location` it hands out (e.g. when it listens
   * on 0.0.0.0 in a container named `simulator`: http://simulator:8080/v1.0). Default: host and port.
   */
  publicBaseUrl?: string;
  /** Every request must carry `Authorization: Bearer <token>`, else 401 InvalidAuthenticationToken. */
  token: string;
  /** Seconds sent in Retry-After on 202s, non-terminal polls, 429s and 503s; may be fractional. Default 1. */
  retryAfterSeconds?: number;
  /** Scenario for users whose name picks none. Default 'ok'. */
  defaultScenario?: ScenarioName;
  /** Explicit scenario per user (keys matched case-insensitively); wins over the name convention. */
  scenarios?: Record<string, ScenarioName>;
  /** Delay added before every answer. Default 0. */
  latencyMs?: number;
  /**
   * How long Graph takes to carry out an accepted reset: polls before then answer `running` (with
   * Retry-After) without advancing the user's scenario. Default 0: the scenario alone decides.
   */
  operationSeconds?: number;
  /**
   * For tests only: keep, in memory, every password POSTed to this simulator and every one it generated,
   * so a test can search output for them and check a secrets file. Off by default; never logged.
   */
  keepPasswords?: boolean;
  /** Token bucket on resetPassword POSTs (Graph's is 3000 per 150 s). Off by default. */
  writeBudget?: { writes: number; perSeconds: number };
  /** Token bucket on user lookups (`GET /users/{id}` and its directory roles), to throttle a preflight. Off by default. */
  readBudget?: { reads: number; perSeconds: number };
  /** Random faults on every Graph request, on top of the scenarios (see {@link FaultRates}). Off by default. */
  faults?: FaultRates;
}

/**
 * Chances (0 to 1) that a Graph request meets a fault instead of its scenario. Each request of a user
 * draws from a hash of the seed, the user and the request's rank among that user's requests of its
 * kind, so a run meets the same faults whatever the order in which users' requests interleave.
 */
export interface FaultRates {
  /** 429 TooManyRequests with Retry-After. */
  throttle?: number;
  /** 503 serviceNotAvailable with Retry-After. */
  unavailable?: number;
  /**
   * The connection drops without an answer. On a resetPassword POST it drops before Graph took the
   * reset or, with chance `dropAfterApply`, after Graph accepted it: the ambiguous case.
   */
  drop?: number;
  /** Of the dropped POSTs, the share dropped after the reset was accepted. Default 0.5. */
  dropAfterApply?: number;
  /** An accepted reset's operation fails (as the `opfail` scenario) instead of succeeding. */
  opFail?: number;
  /** Any string or number; the same seed gives the same faults. Default 0. */
  seed?: string | number;
}

/** `drop` counts every dropped connection; `dropAfterApply` the POSTs among them dropped after Graph took the reset. */
export type FaultKind = 'throttle' | 'unavailable' | 'drop' | 'dropAfterApply' | 'opFail' | 'outage';

/** What one request of a user meets: the first matching band of a uniform draw in [0, 1). */
export type FaultDraw = 'throttle' | 'unavailable' | 'drop' | undefined;

/** Which kinds of request draw faults independently of each other. */
export type FaultChannel = 'post' | 'poll' | 'get' | 'revoke' | 'op' | 'dropside';

/**
 * A deterministic draw in [0, 1) for the request of `user` that is number `index` of its `channel`,
 * under `seed`: the same inputs always give the same number.
 */
export function faultDraw(seed: string | number, user: string, channel: FaultChannel, index: number): number {
  const digest = createHash('sha256').update(`${seed}|${user.toLowerCase()}|${channel}|${index}`).digest();
  return digest.readUInt32BE(0) / 2 ** 32;
}

/** The fault a draw falls on: throttle first, then unavailable, then drop; none beyond their sum. */
export function faultFor(draw: number, rates: FaultRates): FaultDraw {
  let edge = rates.throttle ?? 0;
  if (draw < edge) return 'throttle';
  edge += rates.unavailable ?? 0;
  if (draw < edge) return 'unavailable';
  edge += rates.drop ?? 0;
  if (draw < edge) return 'drop';
  return undefined;
}

export interface UserStats {
  /** The user as first addressed (percent-decoded). */
  user: string;
  /** The stable fake object id the simulator gives this user; requests may address the user by it. */
  id: string;
  scenario: ScenarioName;
  /** Every resetPassword POST received, including throttled, failed and dropped ones. */
  posts: number;
  /** 202 Accepted answers to resetPassword. */
  resetsAccepted: number;
  /** Operation GETs received. */
  polls: number;
  /** Requests that arrived before the Retry-After last sent to this user had elapsed. */
  earlyRequests: number;
  /**
   * Resets that took effect: the password changed (an accepted reset whose operation succeeds, once
   * the operation's time has passed, whether anyone polls it or not). Ground truth for "was reset".
   */
  resetsApplied: number;
  /** Accepted resets whose operation ends `failed`. */
  operationsFailed: number;
  /** Whether any resetPassword POST for this user carried `newPassword`. */
  passwordSupplied: boolean;
  revokes: number;
  /** User lookups: `GET /users/{id}` and its directory roles, throttled ones included. */
  gets: number;
  /** Between the user's first request and the first terminal answer it was given. */
  active: boolean;
}

export interface SimulatorStats {
  requests: number;
  unauthorized: number;
  posts: number;
  resetsAccepted: number;
  polls: number;
  throttled: number;
  earlyRequests: number;
  activeUsers: number;
  peakActiveUsers: number;
  peakConcurrentRequests: number;
  /** Count per HTTP status sent; connections dropped on purpose under "dropped". */
  responsesByStatus: Record<string, number>;
  users: number;
  /** Resets that took effect, all users together (see UserStats.resetsApplied). */
  resetsApplied: number;
  /** Faults injected by `faults` and the outage switch, by kind (scenario answers are not counted). */
  faults: Record<FaultKind, number>;
  /** The first EARLY_DETAILS_KEPT early requests: what came, how early, after which answer. */
  earlyDetails: EarlyRequest[];
}

/** A request that came before the Retry-After of the answer its user got last. */
export interface EarlyRequest {
  user: string;
  /** e.g. `GET /v1.0/users/{id}` (the path as sent). */
  request: string;
  /** How much sooner than the Retry-After allowed. */
  earlyByMs: number;
  /** The answer that set the Retry-After: its request, status (or "dropped") and seconds. */
  after: { request: string; status: number; retryAfterSeconds: number };
  /** Milliseconds since the simulator started. */
  atMs: number;
}

/** How many early requests are described in full (all are counted). */
const EARLY_DETAILS_KEPT = 50;

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

type OperationStatus = 'notStarted' | 'running' | 'succeeded' | 'failed' | 'unknownFutureValue';

type PollStep =
  | { kind: 'status'; status: OperationStatus; statusDetail: string | null; retryAfter: boolean }
  | { kind: 'throttle' };

/** The scenarios that shape how an accepted reset's operation answers its polls. */
type PollPlanName = 'ok' | 'slow' | 'opfail' | 'noretry' | 'unknown' | 'pollthrottle';

interface UserCounters {
  posts: number;
  resetsAccepted: number;
  polls: number;
  earlyRequests: number;
  resetsApplied: number;
  operationsFailed: number;
  passwordSupplied: boolean;
  revokes: number;
  gets: number;
}

interface UserState {
  key: string;
  name: string;
  id: string;
  scenario: ScenarioName;
  /** resetPassword POSTs the scenario has answered; drives "the first N POSTs" (survives resetCounters). */
  scenarioPosts: number;
  /** The scenario gave its terminal answer: further POSTs behave as 'ok'. */
  scenarioSpent: boolean;
  active: boolean;
  /** performance.now() before which a request counts as early; undefined when no Retry-After applies. */
  notBefore: number | undefined;
  /** The answer that set notBefore. */
  notBeforeSetBy?: EarlyRequest['after'];
  lastPasswordChangeDateTime: string;
  counters: UserCounters;
  /** Only with `keepPasswords`. */
  passwords?: { received: string[]; accepted: string[] };
  /** Requests drawn so far per fault channel (the rank of the next draw). */
  draws: Partial<Record<FaultChannel, number>>;
  /** Accepted operations whose effect (password changed or not) has not been settled yet. */
  unsettled: Operation[];
}

interface Operation {
  id: string;
  userKey: string;
  plan: PollPlanName;
  polls: number;
  status: OperationStatus;
  statusDetail: string | null;
  createdDateTime: string;
  lastActionDateTime: string;
  /** performance.now() before which the operation is still running (operationSeconds). */
  runningUntil: number;
  /** Its effect has been recorded: the password changed (or the operation failed) at runningUntil. */
  settled: boolean;
}

interface RequestContext {
  requestId: string;
  clientRequestId: string;
  arrivedAt: number;
  /** Control-plane requests (/_sim/...) are neither delayed nor counted. */
  control: boolean;
  /** Method and path, for the early-request details. */
  request: string;
  user?: UserState;
}

interface Answer {
  status: number;
  body?: unknown;
  error?: { code: string; message: string };
  headers?: Record<string, string>;
  /** Sent as Retry-After; also sets when the user's next request stops being early. */
  retryAfterSeconds?: number;
  /** The answer ends the user's work (permanent 400/403/404 answers always do). */
  terminal?: boolean;
  /** Destroy the socket instead of answering. */
  drop?: boolean;
}

// ---------------------------------------------------------------------------------------------------------
// Graph facts the simulator reproduces

const PASSWORD_METHOD_ID = '28c10230-6103-485e-b985-444c60001490';
const LOCATION_QUERY = 'aadgdc=SIM01&aadgsu=ssprprod-a';
const JSON_CONTENT_TYPE =
  'application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8';
const GRAPH_CONTEXT = 'https://graph.microsoft.com/v1.0/$metadata';
/** Before any simulated reset, every user last changed their password at this moment. */
const INITIAL_PASSWORD_CHANGE = '2025-01-01T08:00:00Z';
const MAX_BODY_BYTES = 64 * 1024;
const PERMANENT_STATUSES: ReadonlySet<number> = new Set([400, 403, 404]);
const TERMINAL_OPERATION_STATUSES: ReadonlySet<OperationStatus> = new Set([
  'succeeded',
  'failed',
  'unknownFutureValue',
]);

const POLL_PLANS: Record<PollPlanName, readonly PollStep[]> = {
  ok: [{ kind: 'status', status: 'succeeded', statusDetail: null, retryAfter: false }],
  slow: [
    { kind: 'status', status: 'notStarted', statusDetail: null, retryAfter: true },
    { kind: 'status', status: 'running', statusDetail: null, retryAfter: true },
    { kind: 'status', status: 'succeeded', statusDetail: null, retryAfter: false },
  ],
  opfail: [
    {
      kind: 'status',
      status: 'failed',
      statusDetail: 'Password writeback to on-premises Active Directory failed.',
      retryAfter: false,
    },
  ],
  noretry: [
    { kind: 'status', status: 'running', statusDetail: null, retryAfter: false },
    { kind: 'status', status: 'succeeded', statusDetail: null, retryAfter: false },
  ],
  unknown: [{ kind: 'status', status: 'unknownFutureValue', statusDetail: null, retryAfter: false }],
  pollthrottle: [
    { kind: 'throttle' },
    { kind: 'status', status: 'succeeded', statusDetail: null, retryAfter: false },
  ],
};

/** The directory role an `admin.` user holds (its template id is the same in every tenant). */
const GLOBAL_ADMINISTRATOR = {
  displayName: 'Global Administrator',
  roleTemplateId: '62e90394-69f5-4237-9190-012177145e10',
};

const TOO_MANY_REQUESTS = {
  code: 'TooManyRequests',
  message: 'Too many requests. Please retry after the time given in the Retry-After header.',
};

// ---------------------------------------------------------------------------------------------------------
// Helpers

function isScenarioName(value: string): value is ScenarioName {
  return (SCENARIOS as readonly string[]).includes(value);
}

/**
 * The scenario a user follows: the explicit `scenarios` entry if any, else the scenario named by the
 * part of the local part before its first '.' (`slow.u0042@contoso.test` -> slow), else the default.
 */
export function scenarioFor(
  user: string,
  options: Pick<SimulatorOptions, 'defaultScenario' | 'scenarios'>,
): ScenarioName {
  const wanted = user.toLowerCase();
  for (const [name, scenario] of Object.entries(options.scenarios ?? {})) {
    if (name.toLowerCase() === wanted) return scenario;
  }
  const at = wanted.indexOf('@');
  const localPart = at === -1 ? wanted : wanted.slice(0, at);
  const prefix = localPart.split('.')[0];
  if (isScenarioName(prefix)) return prefix;
  return options.defaultScenario ?? 'ok';
}

/** A stable, GUID-shaped object id per user, the same across simulator runs. */
function fakeObjectId(userKey: string): string {
  const hex = createHash('sha256').update(`bulk-reset-simulator:${userKey}`).digest('hex');
  const variant = ((parseInt(hex[16], 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

const PASSWORD_CLASSES = [
  'ABCDEFGHJKLMNPQRSTUVWXYZ',
  'abcdefghijkmnopqrstuvwxyz',
  '23456789',
  '!#$%&*+-=?@^_',
];

/** What Entra would generate: 20 characters from crypto, at least one of each class. */
function generatePassword(): string {
  const pick = (alphabet: string): string => alphabet[randomInt(alphabet.length)];
  const all = PASSWORD_CLASSES.join('');
  const chars = PASSWORD_CLASSES.map(pick);
  while (chars.length < 20) chars.push(pick(all));
  for (let i = chars.length - 1; i > 0; i--) {
    const j = randomInt(i + 1);
    [chars[i], chars[j]] = [chars[j], chars[i]];
  }
  return chars.join('');
}

function emptyCounters(): UserCounters {
  return {
    posts: 0,
    resetsAccepted: 0,
    polls: 0,
    earlyRequests: 0,
    resetsApplied: 0,
    operationsFailed: 0,
    passwordSupplied: false,
    revokes: 0,
    gets: 0,
  };
}

function noFaults(): Record<FaultKind, number> {
  return { throttle: 0, unavailable: 0, drop: 0, dropAfterApply: 0, opFail: 0, outage: 0 };
}

function emptyStats(): SimulatorStats {
  return {
    requests: 0,
    unauthorized: 0,
    posts: 0,
    resetsAccepted: 0,
    polls: 0,
    throttled: 0,
    earlyRequests: 0,
    activeUsers: 0,
    peakActiveUsers: 0,
    peakConcurrentRequests: 0,
    responsesByStatus: {},
    users: 0,
    resetsApplied: 0,
    faults: noFaults(),
    earlyDetails: [],
  };
}

/** Graph's throttling budgets: a bucket of `capacity` tokens refilled evenly over `perSeconds`. */
class TokenBucket {
  private tokens: number;
  private refilledAt = performance.now();
  private readonly tokensPerMs: number;

  constructor(
    private readonly capacity: number,
    perSeconds: number,
  ) {
    this.tokens = capacity;
    this.tokensPerMs = capacity / (perSeconds * 1000);
  }

  /** Takes a token; returns 0, or the seconds (rounded up to the millisecond) until one is available. */
  take(now: number): number {
    this.tokens = Math.min(this.capacity, this.tokens + (now - this.refilledAt) * this.tokensPerMs);
    this.refilledAt = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return 0;
    }
    return Math.max(0.001, Math.ceil((1 - this.tokens) / this.tokensPerMs) / 1000);
  }
}

function validateOptions(options: SimulatorOptions): void {
  if (typeof options.token !== 'string' || options.token.length === 0) {
    throw new TypeError('Graph simulator: a non-empty token is required');
  }
  const retryAfter = options.retryAfterSeconds;
  if (retryAfter !== undefined && !(Number.isFinite(retryAfter) && retryAfter >= 0)) {
    throw new TypeError(`Graph simulator: retryAfterSeconds must be a finite number >= 0, got ${retryAfter}`);
  }
  const operation = options.operationSeconds;
  if (operation !== undefined && !(Number.isFinite(operation) && operation >= 0)) {
    throw new TypeError(`Graph simulator: operationSeconds must be a finite number >= 0, got ${operation}`);
  }
  const latency = options.latencyMs;
  if (latency !== undefined && !(Number.isFinite(latency) && latency >= 0)) {
    throw new TypeError(`Graph simulator: latencyMs must be a finite number >= 0, got ${latency}`);
  }
  const budget = options.writeBudget;
  if (budget && !(budget.writes >= 1 && budget.perSeconds > 0)) {
    throw new TypeError('Graph simulator: writeBudget needs writes >= 1 and perSeconds > 0');
  }
  const reads = options.readBudget;
  if (reads && !(reads.reads >= 1 && reads.perSeconds > 0)) {
    throw new TypeError('Graph simulator: readBudget needs reads >= 1 and perSeconds > 0');
  }
  const faults = options.faults ?? {};
  for (const key of ['throttle', 'unavailable', 'drop', 'dropAfterApply', 'opFail'] as const) {
    const rate = faults[key];
    if (rate !== undefined && !(Number.isFinite(rate) && rate >= 0 && rate <= 1)) {
      throw new TypeError(`Graph simulator: faults.${key} must be a number from 0 to 1, got ${rate}`);
    }
  }
  if ((faults.throttle ?? 0) + (faults.unavailable ?? 0) + (faults.drop ?? 0) > 1) {
    throw new TypeError(
      'Graph simulator: faults.throttle + faults.unavailable + faults.drop must not exceed 1',
    );
  }
  const named: [string, string][] = [
    ['defaultScenario', options.defaultScenario ?? 'ok'],
    ...Object.entries(options.scenarios ?? {}).map(([user, scenario]): [string, string] => [
      `scenarios["${user}"]`,
      scenario,
    ]),
  ];
  for (const [where, scenario] of named) {
    if (!isScenarioName(scenario)) {
      throw new TypeError(
        `Graph simulator: ${where} is "${scenario}", which is not one of ${SCENARIOS.join(', ')}`,
      );
    }
  }
}

type BodyResult = { ok: true; text: string } | { ok: false; tooLarge: true };

async function readBody(req: IncomingMessage): Promise<BodyResult> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buffer = chunk as Buffer;
    size += buffer.length;
    if (size > MAX_BODY_BYTES) return { ok: false, tooLarge: true };
    chunks.push(buffer);
  }
  return { ok: true, text: Buffer.concat(chunks).toString('utf8') };
}

function isAbortError(error: unknown): boolean {
  return error instanceof Error && error.name === 'AbortError';
}

// ---------------------------------------------------------------------------------------------------------
// The server

/** Starts the simulator and resolves once it listens. */
export async function startGraphSimulator(options: SimulatorOptions): Promise<GraphSimulator> {
  validateOptions(options);
  const retryAfterSeconds = options.retryAfterSeconds ?? 1;
  const operationSeconds = options.operationSeconds ?? 0;
  const latencyMs = options.latencyMs ?? 0;
  const budget = options.writeBudget
    ? new TokenBucket(options.writeBudget.writes, options.writeBudget.perSeconds)
    : undefined;
  const readBudget = options.readBudget
    ? new TokenBucket(options.readBudget.reads, options.readBudget.perSeconds)
    : undefined;
  const scenarioOptions = { defaultScenario: options.defaultScenario, scenarios: options.scenarios };
  const faultRates = options.faults;
  /** performance.now() until which Graph is down (Infinity: until endOutage); undefined when up. */
  let outageUntil: number | undefined;

  const users = new Map<string, UserState>();
  const userKeyById = new Map<string, string>();
  const operations = new Map<string, Operation>();
  let counters = emptyStats();
  const startedAt = performance.now();
  let inFlight = 0;
  /** The token is refused (expired, sessions revoked) until restored. */
  let tokenRevoked = false;
  const closing = new AbortController();
  let baseUrl = '';

  function userStats(user: UserState): UserStats {
    settle(user);
    return { user: user.name, id: user.id, scenario: user.scenario, ...user.counters, active: user.active };
  }

  function snapshot(): SimulatorStats {
    for (const user of users.values()) settle(user);
    return {
      ...counters,
      responsesByStatus: { ...counters.responsesByStatus },
      faults: { ...counters.faults },
      earlyDetails: [...counters.earlyDetails],
      users: users.size,
    };
  }

  /**
   * Records the effect of the user's operations whose time has come, polled or not: as in Graph, a
   * reset takes effect when its operation completes, and lastPasswordChangeDateTime moves then.
   */
  function settle(user: UserState, now = performance.now()): void {
    if (user.unsettled.length === 0) return;
    user.unsettled = user.unsettled.filter((operation) => {
      if (now < operation.runningUntil) return true;
      markSettled(user, operation);
      return false;
    });
  }

  function markSettled(user: UserState, operation: Operation): void {
    if (operation.settled) return;
    operation.settled = true;
    const plan = POLL_PLANS[operation.plan];
    const last = plan[plan.length - 1];
    const final = last.kind === 'status' ? last.status : 'succeeded';
    if (final === 'succeeded') {
      // When the operation's time came, not when someone looked.
      const at = Date.now() - Math.max(0, performance.now() - operation.runningUntil);
      const iso = new Date(Math.max(at, Date.parse(user.lastPasswordChangeDateTime) + 1)).toISOString();
      user.lastPasswordChangeDateTime = iso;
      user.counters.resetsApplied++;
      counters.resetsApplied++;
    } else if (final === 'failed') {
      user.counters.operationsFailed++;
    }
  }

  /** The next draw of the user's `channel`. */
  function draw(user: UserState, channel: FaultChannel): number {
    const index = user.draws[channel] ?? 0;
    user.draws[channel] = index + 1;
    return faultDraw(faultRates?.seed ?? 0, user.key, channel, index);
  }

  function countFault(kind: FaultKind): void {
    counters.faults[kind]++;
  }

  function unavailableAnswer(): Answer {
    return {
      status: 503,
      error: {
        code: 'serviceNotAvailable',
        message: 'The service is temporarily unavailable. Please retry after the time given in Retry-After.',
      },
      retryAfterSeconds,
    };
  }

  /**
   * The outage or a random fault this request meets, if any, before its scenario sees it. A POST's
   * drop is only decided here; whether it falls before or after the reset is taken is the caller's.
   */
  function injectedFault(user: UserState, channel: FaultChannel): Answer | 'drop' | undefined {
    if (outageUntil !== undefined) {
      if (performance.now() < outageUntil) {
        countFault('outage');
        return unavailableAnswer();
      }
      outageUntil = undefined;
    }
    if (!faultRates) return undefined;
    switch (faultFor(draw(user, channel), faultRates)) {
      case 'throttle':
        countFault('throttle');
        return throttledAnswer(retryAfterSeconds);
      case 'unavailable':
        countFault('unavailable');
        return unavailableAnswer();
      case 'drop':
        return 'drop';
      default:
        return undefined;
    }
  }

  /** Like injectedFault for a request that applies nothing: a drop is simply a lost connection. */
  function readFault(user: UserState, channel: FaultChannel): Answer | undefined {
    const fault = injectedFault(user, channel);
    if (fault !== 'drop') return fault;
    countFault('drop');
    return { status: 0, drop: true };
  }

  function findUser(user: string): UserState | undefined {
    const key = user.toLowerCase();
    return users.get(userKeyById.get(key) ?? key);
  }

  /** Attributes the request to a user: registers it (active) on its first request and counts early requests. */
  function touchUser(ctx: RequestContext, segment: string): UserState {
    let user = findUser(segment);
    if (!user) {
      const key = segment.toLowerCase();
      user = {
        key,
        name: segment,
        id: fakeObjectId(key),
        scenario: scenarioFor(segment, scenarioOptions),
        scenarioPosts: 0,
        scenarioSpent: false,
        active: true,
        notBefore: undefined,
        lastPasswordChangeDateTime: INITIAL_PASSWORD_CHANGE,
        counters: emptyCounters(),
        passwords: options.keepPasswords ? { received: [], accepted: [] } : undefined,
        draws: {},
        unsettled: [],
      };
      users.set(key, user);
      userKeyById.set(user.id, key);
      counters.activeUsers++;
      counters.peakActiveUsers = Math.max(counters.peakActiveUsers, counters.activeUsers);
    }
    if (user.notBefore !== undefined && ctx.arrivedAt < user.notBefore) {
      user.counters.earlyRequests++;
      counters.earlyRequests++;
      if (counters.earlyDetails.length < EARLY_DETAILS_KEPT && user.notBeforeSetBy) {
        counters.earlyDetails.push({
          user: user.name,
          request: ctx.request,
          earlyByMs: Math.round(user.notBefore - ctx.arrivedAt),
          after: user.notBeforeSetBy,
          atMs: Math.round(ctx.arrivedAt - startedAt),
        });
      }
    }
    ctx.user = user;
    return user;
  }

  function throttledAnswer(seconds: number): Answer {
    counters.throttled++;
    return { status: 429, error: TOO_MANY_REQUESTS, retryAfterSeconds: seconds };
  }

  function notFoundUser(segment: string): Answer {
    return {
      status: 404,
      error: {
        code: 'Request_ResourceNotFound',
        message: `Resource '${segment}' does not exist or one of its queried reference-property objects are not present.`,
      },
    };
  }

  async function resetPassword(
    ctx: RequestContext,
    req: IncomingMessage,
    segment: string,
    methodId: string,
  ): Promise<Answer> {
    const user = touchUser(ctx, segment);
    user.counters.posts++;
    counters.posts++;
    const body = await readBody(req);
    if (methodId.toLowerCase() !== PASSWORD_METHOD_ID) {
      return {
        status: 400,
        error: { code: 'badRequest', message: 'The method is not supported for this URL.' },
      };
    }
    if (!body.ok) {
      return {
        status: 413,
        error: { code: 'RequestEntityTooLarge', message: 'The request body is too large.' },
      };
    }
    let parsed: unknown = {};
    try {
      if (body.text.trim() !== '') parsed = JSON.parse(body.text);
    } catch {
      parsed = undefined;
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      return {
        status: 400,
        error: {
          code: 'BadRequest',
          message: 'Unable to read JSON request payload: expected a JSON object.',
        },
      };
    }
    const newPassword: unknown = (parsed as Record<string, unknown>).newPassword;
    if (newPassword !== undefined && typeof newPassword !== 'string') {
      return { status: 400, error: { code: 'BadRequest', message: 'newPassword must be a string.' } };
    }
    const passwordSupplied = typeof newPassword === 'string';
    if (passwordSupplied) user.counters.passwordSupplied = true;
    if (passwordSupplied) user.passwords?.received.push(newPassword);

    const fault = injectedFault(user, 'post');
    // A drop after Graph took the reset is decided now and carried out once the reset is accepted.
    let dropAfterAccept = false;
    if (fault === 'drop') {
      if (draw(user, 'dropside') >= (faultRates?.dropAfterApply ?? 0.5)) {
        countFault('drop');
        return { status: 0, drop: true };
      }
      dropAfterAccept = true;
    } else if (fault) {
      return fault;
    }

    if (budget) {
      const waitSeconds = budget.take(performance.now());
      if (waitSeconds > 0) return throttledAnswer(waitSeconds);
    }

    const scenario: ScenarioName = user.scenarioSpent ? 'ok' : user.scenario;
    const earlierPosts = user.scenarioPosts++;
    if (scenario === 'dropafter' && earlierPosts < 1) dropAfterAccept = true;
    const accept = (answer: Answer): Answer => {
      if (!dropAfterAccept) return answer;
      if (fault === 'drop') {
        countFault('drop');
        countFault('dropAfterApply');
      }
      return { status: 0, drop: true };
    };
    switch (scenario) {
      case 'badpw':
        user.scenarioSpent = true;
        return {
          status: 400,
          error: {
            code: 'invalidRequest',
            message:
              'The password does not comply with the password complexity or banned password requirements.',
          },
        };
      case 'denied':
        user.scenarioSpent = true;
        return {
          status: 403,
          error: {
            code: 'Authorization_RequestDenied',
            message: 'Insufficient privileges to complete the operation.',
          },
        };
      case 'missing':
        user.scenarioSpent = true;
        return notFoundUser(segment);
      case 'throttled':
        if (earlierPosts < 2) return throttledAnswer(retryAfterSeconds);
        break;
      case 'flaky':
        if (earlierPosts < 2) {
          return {
            status: 503,
            error: {
              code: 'serviceNotAvailable',
              message:
                'The service is temporarily unavailable. Please retry after the time given in Retry-After.',
            },
            retryAfterSeconds,
          };
        }
        break;
      case 'drop':
        if (earlierPosts < 1) return { status: 0, drop: true };
        break;
      default:
        break;
    }

    user.counters.resetsAccepted++;
    counters.resetsAccepted++;
    const generated = passwordSupplied ? undefined : generatePassword();
    const accepted =
      generated === undefined
        ? {}
        : {
            '@odata.context': `${GRAPH_CONTEXT}#microsoft.graph.passwordResetResponse`,
            newPassword: generated,
          };
    user.passwords?.accepted.push(typeof newPassword === 'string' ? newPassword : (generated as string));

    if (scenario === 'nolocation') {
      // Graph accepted the reset; only its confirmation is missing. The user record shows it landed.
      user.scenarioSpent = true;
      user.lastPasswordChangeDateTime = new Date().toISOString();
      user.counters.resetsApplied++;
      counters.resetsApplied++;
      return accept({ status: 202, body: accepted, terminal: true });
    }

    let plan: PollPlanName =
      scenario === 'slow' ||
      scenario === 'opfail' ||
      scenario === 'noretry' ||
      scenario === 'unknown' ||
      scenario === 'pollthrottle'
        ? scenario
        : 'ok';
    // Drawn for every accepted reset, so the draws do not depend on which scenario came before.
    const opFails = faultRates?.opFail ? draw(user, 'op') < faultRates.opFail : false;
    if (opFails && plan !== 'opfail') {
      plan = 'opfail';
      countFault('opFail');
    }
    const now = new Date().toISOString();
    const operation: Operation = {
      id: randomUUID(),
      userKey: user.key,
      plan,
      polls: 0,
      status: 'notStarted',
      statusDetail: null,
      createdDateTime: now,
      lastActionDateTime: now,
      runningUntil: performance.now() + operationSeconds * 1000,
      settled: false,
    };
    operations.set(operation.id, operation);
    user.unsettled.push(operation);
    const location = `${baseUrl}/users/${encodeURIComponent(segment)}/authentication/operations/${operation.id}?${LOCATION_QUERY}`;
    return accept({
      status: 202,
      body: accepted,
      headers: { Location: location },
      retryAfterSeconds: plan === 'noretry' ? undefined : retryAfterSeconds,
    });
  }

  function pollOperation(ctx: RequestContext, url: URL, segment: string, operationId: string): Answer {
    const user = touchUser(ctx, segment);
    user.counters.polls++;
    counters.polls++;
    const fault = readFault(user, 'poll');
    if (fault) return fault;
    settle(user);
    const operation = operations.get(operationId.toLowerCase());
    if (!url.searchParams.has('aadgdc') || !operation || operation.userKey !== user.key) {
      const hint = operation ? ' Follow the Location header verbatim, query string included.' : '';
      return {
        status: 404,
        error: {
          code: 'Request_ResourceNotFound',
          message: `Operation '${operationId}' was not found.${hint}`,
        },
      };
    }
    if (performance.now() < operation.runningUntil) {
      operation.status = 'running';
      return { status: 200, body: operationBody(operation), retryAfterSeconds };
    }
    operation.polls++;
    const plan = POLL_PLANS[operation.plan];
    const step = plan[Math.min(operation.polls, plan.length) - 1];
    if (step.kind === 'throttle') return throttledAnswer(retryAfterSeconds);

    if (operation.status !== step.status) {
      operation.status = step.status;
      operation.statusDetail = step.statusDetail;
      operation.lastActionDateTime = new Date().toISOString();
      // The password changed when the operation's time came (settle), not when it was polled.
      markSettled(user, operation);
    }
    const terminal = TERMINAL_OPERATION_STATUSES.has(operation.status);
    if (terminal) user.scenarioSpent = true;
    return {
      status: 200,
      body: operationBody(operation),
      retryAfterSeconds: step.retryAfter ? retryAfterSeconds : undefined,
      terminal,
    };
  }

  function operationBody(operation: Operation): Record<string, unknown> {
    return {
      '@odata.context': `${GRAPH_CONTEXT}#microsoft.graph.longRunningOperation`,
      id: operation.id,
      createdDateTime: operation.createdDateTime,
      lastActionDateTime: operation.lastActionDateTime,
      status: operation.status,
      statusDetail: operation.statusDetail,
      resourceLocation: null,
    };
  }

  function revokeSignInSessions(ctx: RequestContext, segment: string): Answer {
    const user = touchUser(ctx, segment);
    user.counters.revokes++;
    const fault = readFault(user, 'revoke');
    if (fault) return fault;
    if (user.scenario === 'missing') return notFoundUser(segment);
    return { status: 200, body: { '@odata.context': `${GRAPH_CONTEXT}#Edm.Boolean`, value: true } };
  }

  /** Counts a user lookup; answers 429 when the read budget is spent, else undefined. */
  function lookUp(user: UserState): Answer | undefined {
    user.counters.gets++;
    const fault = readFault(user, 'get');
    if (fault) return fault;
    settle(user);
    const waitSeconds = readBudget?.take(performance.now()) ?? 0;
    return waitSeconds > 0 ? throttledAnswer(waitSeconds) : undefined;
  }

  function getUser(ctx: RequestContext, segment: string): Answer {
    const user = touchUser(ctx, segment);
    const throttled = lookUp(user);
    if (throttled) return throttled;
    if (user.scenario === 'missing') return notFoundUser(segment);
    return {
      status: 200,
      body: {
        '@odata.context': `${GRAPH_CONTEXT}#users/$entity`,
        id: user.id,
        userPrincipalName: user.name.includes('@') ? user.name : `${user.name}@contoso.test`,
        accountEnabled: user.scenario !== 'disabled',
        onPremisesSyncEnabled: user.scenario === 'synced' ? true : null,
        lastPasswordChangeDateTime: user.lastPasswordChangeDateTime,
      },
    };
  }

  /** `GET /users/{id}/transitiveMemberOf/microsoft.graph.directoryRole`: the user's active directory roles. */
  function getDirectoryRoles(ctx: RequestContext, url: URL, segment: string): Answer {
    const user = touchUser(ctx, segment);
    const throttled = lookUp(user);
    if (throttled) return throttled;
    if (user.scenario === 'missing') return notFoundUser(segment);
    const roles =
      user.scenario === 'admin'
        ? [{ id: fakeObjectId(`role:${GLOBAL_ADMINISTRATOR.roleTemplateId}`), ...GLOBAL_ADMINISTRATOR }]
        : [];
    const select = url.searchParams
      .get('$select')
      ?.split(',')
      .map((field) => field.trim());
    const value = roles.map((role) =>
      select
        ? Object.fromEntries(Object.entries(role).filter(([field]) => select.includes(field)))
        : { '@odata.type': '#microsoft.graph.directoryRole', ...role },
    );
    return {
      status: 200,
      body: {
        '@odata.context': `${GRAPH_CONTEXT}#directoryRoles`,
        ...(url.searchParams.get('$count') === 'true' && { '@odata.count': value.length }),
        value,
      },
    };
  }

  function resetCounters(): void {
    const activeUsers = counters.activeUsers;
    counters = {
      ...emptyStats(),
      activeUsers,
      peakActiveUsers: activeUsers,
      peakConcurrentRequests: inFlight,
    };
    for (const user of users.values()) user.counters = emptyCounters();
  }

  function startOutage(seconds?: number): void {
    if (seconds !== undefined && !(Number.isFinite(seconds) && seconds > 0)) {
      throw new TypeError(`Graph simulator: an outage lasts a positive number of seconds, got ${seconds}`);
    }
    outageUntil = seconds === undefined ? Infinity : performance.now() + seconds * 1000;
  }

  function outageActive(): boolean {
    return outageUntil !== undefined && performance.now() < outageUntil;
  }

  function controlAnswer(req: IncomingMessage, url: URL, segments: string[]): Answer | undefined {
    const route = segments.slice(1).join('/').toLowerCase();
    if (route === 'outage') {
      if (req.method === 'DELETE') {
        outageUntil = undefined;
        return { status: 204 };
      }
      if (req.method === 'POST') {
        const seconds = url.searchParams.get('seconds');
        const value = seconds === null ? undefined : Number(seconds);
        if (value !== undefined && !(Number.isFinite(value) && value > 0)) {
          return { status: 400, error: { code: 'badRequest', message: 'seconds must be a positive number' } };
        }
        startOutage(value);
        return { status: 204 };
      }
    }
    if (req.method === 'GET' && route === 'stats') {
      return { status: 200, body: { ...snapshot(), userStats: [...users.values()].map(userStats) } };
    }
    if (req.method === 'POST' && route === 'reset-counters') {
      resetCounters();
      return { status: 204 };
    }
    if (req.method === 'POST' && (route === 'revoke-token' || route === 'restore-token')) {
      tokenRevoked = route === 'revoke-token';
      return { status: 204 };
    }
    return undefined;
  }

  async function route(
    ctx: RequestContext,
    req: IncomingMessage,
    url: URL,
    segments: string[],
  ): Promise<Answer> {
    const auth = req.headers.authorization ?? '';
    const match = /^Bearer\s+(.+)$/i.exec(auth.trim());
    if (!match || match[1] !== options.token) {
      if (!ctx.control) counters.unauthorized++;
      return {
        status: 401,
        error: {
          code: 'InvalidAuthenticationToken',
          message: match ? 'Access token validation failure. Invalid audience.' : 'Access token is empty.',
        },
        headers: { 'WWW-Authenticate': 'Bearer realm="", error="invalid_token"' },
      };
    }
    if (ctx.control) return controlAnswer(req, url, segments) ?? notFoundRoute(url);
    if (tokenRevoked) {
      counters.unauthorized++;
      return {
        status: 401,
        error: {
          code: 'InvalidAuthenticationToken',
          message: 'Lifetime validation failed, the token is expired.',
        },
        headers: { 'WWW-Authenticate': 'Bearer realm="", error="invalid_token"' },
      };
    }

    const literal = (index: number, expected: string): boolean =>
      segments[index]?.toLowerCase() === expected.toLowerCase();
    if (!literal(0, 'v1.0') || !literal(1, 'users') || segments.length < 3 || segments[2] === '') {
      return notFoundRoute(url);
    }
    const user = segments[2];
    const method = req.method ?? '';
    if (segments.length === 3 && method === 'GET') return getUser(ctx, user);
    if (
      segments.length === 5 &&
      method === 'GET' &&
      literal(3, 'transitiveMemberOf') &&
      literal(4, 'microsoft.graph.directoryRole')
    ) {
      return getDirectoryRoles(ctx, url, user);
    }
    if (segments.length === 4 && method === 'POST' && literal(3, 'revokeSignInSessions')) {
      return revokeSignInSessions(ctx, user);
    }
    if (
      segments.length === 7 &&
      method === 'POST' &&
      literal(3, 'authentication') &&
      literal(4, 'methods') &&
      literal(6, 'resetPassword')
    ) {
      return resetPassword(ctx, req, user, segments[5]);
    }
    if (
      segments.length === 6 &&
      method === 'GET' &&
      literal(3, 'authentication') &&
      literal(4, 'operations')
    ) {
      return pollOperation(ctx, url, user, segments[5]);
    }
    return notFoundRoute(url);
  }

  function notFoundRoute(url: URL): Answer {
    return {
      status: 404,
      error: {
        code: 'Request_ResourceNotFound',
        message: `Resource not found for the segment '${url.pathname}'.`,
      },
    };
  }

  function recordStatus(ctx: RequestContext, key: string): void {
    if (!ctx.control) counters.responsesByStatus[key] = (counters.responsesByStatus[key] ?? 0) + 1;
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
    const retryAfter = answer.retryAfterSeconds === undefined ? undefined : String(answer.retryAfterSeconds);
    if (retryAfter !== undefined) headers['Retry-After'] = retryAfter;
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

    // Taken before the answer leaves, so a request arriving at sentAt + Retry-After or later is never early.
    const sentAt = performance.now();
    if (user) {
      user.notBefore = retryAfter === undefined ? undefined : sentAt + Number(retryAfter) * 1000;
      user.notBeforeSetBy =
        retryAfter === undefined
          ? undefined
          : { request: ctx.request, status: answer.status, retryAfterSeconds: Number(retryAfter) };
      if (user.active && (answer.terminal || PERMANENT_STATUSES.has(answer.status))) {
        user.active = false;
        counters.activeUsers--;
      }
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
    };
    if (!ctx.control) {
      counters.requests++;
      inFlight++;
      counters.peakConcurrentRequests = Math.max(counters.peakConcurrentRequests, inFlight);
    }
    try {
      let segments: string[] | undefined;
      try {
        segments = rawSegments.map((segment) => decodeURIComponent(segment));
      } catch {
        segments = undefined;
      }
      const answer = segments ? await route(ctx, req, url, segments) : notFoundRoute(url);
      if (!ctx.control && latencyMs > 0) await sleep(latencyMs, undefined, { signal: closing.signal });
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
      if (!ctx.control) inFlight--;
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
  baseUrl =
    options.publicBaseUrl?.replace(/\/+$/, '') ??
    `http://${host.includes(':') ? `[${host}]` : host}:${port}/v1.0`;

  return {
    baseUrl,
    stats: snapshot,
    user: (user: string) => {
      const state = findUser(user);
      return state && userStats(state);
    },
    users: () => [...users.values()].map(userStats),
    passwords: (user: string) => {
      const state = findUser(user);
      return (
        state?.passwords && {
          received: [...state.passwords.received],
          accepted: [...state.passwords.accepted],
        }
      );
    },
    resetCounters,
    revokeToken: () => {
      tokenRevoked = true;
    },
    restoreToken: () => {
      tokenRevoked = false;
    },
    startOutage,
    endOutage: () => {
      outageUntil = undefined;
    },
    outageActive,
    close: () =>
      new Promise<void>((resolve, reject) => {
        closing.abort();
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}
