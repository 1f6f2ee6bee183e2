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
  // Every poll answers unknownFutureValue: the operation never says how it ended.
  | 'unknown'
  | 'pollthrottle'
  // Counted scenarios (see COUNTED_SCENARIOS): the first N polls of a fresh operation (default 1) answer
  // 404 Request_ResourceNotFound with Retry-After, then as 'ok'.
  | 'pollmissing'
  // The same 404s without Retry-After.
  | 'pollmissingnoretry'
  // The first N polls answer unknownFutureValue and a status no client knows yet, in turn; then succeeded.
  | 'pollunknown'
  // The same unknown statuses, then failed (as 'opfail').
  | 'pollunknownfail'
  // Every Retry-After of this user is an HTTP-date: the first POST gets 429, the next 202; one running poll.
  | 'httpdate'
  // The operation answers without createdDateTime: running once, then succeeded.
  | 'nocreated'
  // The operation's timestamps are malformed as in Microsoft's own example: running once, then succeeded.
  | 'baddates'
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
  'pollmissing',
  'pollmissingnoretry',
  'pollunknown',
  'pollunknownfail',
  'httpdate',
  'nocreated',
  'baddates',
  'disabled',
  'synced',
  'admin',
];

/**
 * The scenarios a user's name can give a count: `pollmissing3.u1@…` answers three polls 404,
 * `pollmissingall.u1@…` every poll (until any deadline has passed; Graph still changes the password).
 */
export const COUNTED_SCENARIOS = [
  'pollmissing',
  'pollmissingnoretry',
  'pollunknown',
  'pollunknownfail',
] as const;

export type CountedScenarioName = (typeof COUNTED_SCENARIOS)[number];

/** A scenario as a user's name or the `scenarios` option spells it: a name, or a counted name with its count. */
export type ScenarioSpec = ScenarioName | `${CountedScenarioName}${number}` | `${CountedScenarioName}all`;

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
  scenarios?: Record<string, ScenarioSpec>;
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
  /**
   * Between the user's first request and the first answer after which its scenario has nothing new to
   * say: a terminal status, a permanent refusal, or the first of answers repeated for ever (`unknown`'s
   * unknownFutureValue, `pollmissingall`'s 404). A 404 or unknown status that is followed by more is not.
   */
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

/** Graph's statuses, and any string a newer Graph may send (the `pollunknown` scenarios send one). */
type OperationStatus =
  'notStarted' | 'running' | 'succeeded' | 'failed' | 'unknownFutureValue' | (string & {});

/** A poll answered 200 with the operation in this status. */
interface StatusStep {
  kind: 'status';
  status: OperationStatus;
  statusDetail: string | null;
  retryAfter: boolean;
}

/** One answer to an operation poll. */
type PollStep =
  | StatusStep
  | { kind: 'throttle' }
  /** 404 Request_ResourceNotFound, as for an operation Graph does not show (yet). */
  | { kind: 'notFound'; retryAfter: boolean };

/** `times` polls answered by `steps` in turn (Infinity: every poll from here on). */
interface PollPhase {
  steps: readonly PollStep[];
  times: number;
}

/** How an accepted reset's operation answers its polls, and what it does to the password. */
interface PollPlan {
  /** Answered in order; past the end, the last step of the last phase answers every poll. */
  phases: readonly PollPhase[];
  /** The reset's effect once the operation's time has come, whether any poll saw it or not. */
  effect: 'succeeded' | 'failed' | 'none';
}

/** How an operation writes its timestamps. */
type TimestampStyle = 'iso' | 'missing' | 'malformed';

/** A user's scenario and, for a counted one, how many polls it lasts (Infinity for `all`). */
interface ScenarioChoice {
  scenario: ScenarioName;
  count: number;
}

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
  /** For a counted scenario, how many polls its fault lasts. */
  scenarioCount: number;
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
  plan: PollPlan;
  /** Polls that consumed a step of the plan (those answered `running` before runningUntil did not). */
  polls: number;
  status: OperationStatus;
  statusDetail: string | null;
  createdDateTime: string;
  lastActionDateTime: string;
  timestamps: TimestampStyle;
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
  /** The v1.0 base URL as the caller named it (or the public base URL): what Graph puts in its links. */
  base: string;
  user?: UserState;
}

interface Answer {
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
/** Only these end an operation; unknownFutureValue and statuses newer than the client do not. */
const TERMINAL_OPERATION_STATUSES: ReadonlySet<OperationStatus> = new Set(['succeeded', 'failed']);
/** What a counted scenario without a count in the name lasts: one poll. */
const DEFAULT_SCENARIO_COUNT = 1;
/** A status this simulator invents to stand for a value Graph may add later: no client can know it. */
const FUTURE_STATUS = 'pendingReplication';

const SUCCEEDED: StatusStep = {
  kind: 'status',
  status: 'succeeded',
  statusDetail: 'ResetSuccess',
  retryAfter: false,
};
const WRITEBACK_FAILED: StatusStep = {
  kind: 'status',
  status: 'failed',
  statusDetail: 'Password writeback to on-premises Active Directory failed.',
  retryAfter: false,
};
const RUNNING: StatusStep = { kind: 'status', status: 'running', statusDetail: null, retryAfter: true };
const UNKNOWN_STATUSES: readonly StatusStep[] = [
  { kind: 'status', status: 'unknownFutureValue', statusDetail: null, retryAfter: true },
  { kind: 'status', status: FUTURE_STATUS, statusDetail: null, retryAfter: true },
];

/** The directory role an `admin.` user holds (its template id is the same in every tenant). */
const GLOBAL_ADMINISTRATOR = {
  displayName: 'Global Administrator',
  roleTemplateId: '62e90394-69f5-4237-9190-012177145e10',
};

/** Graph's default property set of `GET /users/{id}` (v1.0); anything else only on `$select`. */
const DEFAULT_USER_PROPERTIES = [
  'businessPhones',
  'displayName',
  'givenName',
  'id',
  'jobTitle',
  'mail',
  'mobilePhone',
  'officeLocation',
  'preferredLanguage',
  'surname',
  'userPrincipalName',
] as const;

const TOO_MANY_REQUESTS = {
  code: 'TooManyRequests',
  message: 'Too many requests. Please retry after the time given in the Retry-After header.',
};

// ---------------------------------------------------------------------------------------------------------
// Helpers

function isScenarioName(value: string): value is ScenarioName {
  return (SCENARIOS as readonly string[]).includes(value);
}

function isCountedScenario(value: string): value is CountedScenarioName {
  return (COUNTED_SCENARIOS as readonly string[]).includes(value);
}

/**
 * Reads a scenario as spelled (case-insensitively): a scenario's name, or a counted scenario's name
 * followed by a count (`pollmissing3`) or `all`. Undefined when it names no scenario.
 */
function parseScenario(spec: string): ScenarioChoice | undefined {
  const name = spec.toLowerCase();
  if (isScenarioName(name)) return { scenario: name, count: DEFAULT_SCENARIO_COUNT };
  const counted = /^([a-z]+?)(\d{1,6}|all)$/.exec(name);
  if (!counted || !isCountedScenario(counted[1])) return undefined;
  return { scenario: counted[1], count: counted[2] === 'all' ? Infinity : Number(counted[2]) };
}

/**
 * The scenario a user follows and its count: the explicit `scenarios` entry if any, else the scenario
 * named by the part of the local part before its first '.' (`slow.u0042@contoso.test` -> slow,
 * `pollmissing3.u7@contoso.test` -> pollmissing for 3 polls), else the default.
 */
function scenarioChoiceFor(
  user: string,
  options: Pick<SimulatorOptions, 'defaultScenario' | 'scenarios'>,
): ScenarioChoice {
  const wanted = user.toLowerCase();
  for (const [name, scenario] of Object.entries(options.scenarios ?? {})) {
    const choice = name.toLowerCase() === wanted ? parseScenario(scenario) : undefined;
    if (choice) return choice;
  }
  const at = wanted.indexOf('@');
  const localPart = at === -1 ? wanted : wanted.slice(0, at);
  return (
    parseScenario(localPart.split('.')[0]) ?? {
      scenario: options.defaultScenario ?? 'ok',
      count: DEFAULT_SCENARIO_COUNT,
    }
  );
}

/** The scenario a user follows (see scenarioChoiceFor). */
export function scenarioFor(
  user: string,
  options: Pick<SimulatorOptions, 'defaultScenario' | 'scenarios'>,
): ScenarioName {
  return scenarioChoiceFor(user, options).scenario;
}

/** One phase per step, each answering one poll. */
function inTurn(...steps: PollStep[]): PollPhase[] {
  return steps.map((step) => ({ steps: [step], times: 1 }));
}

/** How the operation of a reset accepted under `scenario` answers its polls. */
function pollPlanFor({ scenario, count }: ScenarioChoice): PollPlan {
  switch (scenario) {
    case 'slow':
      return {
        phases: inTurn({ ...RUNNING, status: 'notStarted' }, RUNNING, SUCCEEDED),
        effect: 'succeeded',
      };
    case 'opfail':
      return { phases: inTurn(WRITEBACK_FAILED), effect: 'failed' };
    case 'noretry':
      return { phases: inTurn({ ...RUNNING, retryAfter: false }, SUCCEEDED), effect: 'succeeded' };
    case 'unknown':
      return { phases: inTurn({ ...UNKNOWN_STATUSES[0], retryAfter: false }), effect: 'none' };
    case 'pollthrottle':
      return { phases: inTurn({ kind: 'throttle' }, SUCCEEDED), effect: 'succeeded' };
    case 'pollmissing':
    case 'pollmissingnoretry': {
      const notFound: PollStep = { kind: 'notFound', retryAfter: scenario === 'pollmissing' };
      return { phases: [{ steps: [notFound], times: count }, ...inTurn(SUCCEEDED)], effect: 'succeeded' };
    }
    case 'pollunknown':
      return {
        phases: [{ steps: UNKNOWN_STATUSES, times: count }, ...inTurn(SUCCEEDED)],
        effect: 'succeeded',
      };
    case 'pollunknownfail':
      return {
        phases: [{ steps: UNKNOWN_STATUSES, times: count }, ...inTurn(WRITEBACK_FAILED)],
        effect: 'failed',
      };
    case 'httpdate':
    case 'nocreated':
    case 'baddates':
      return { phases: inTurn(RUNNING, SUCCEEDED), effect: 'succeeded' };
    default:
      return { phases: inTurn(SUCCEEDED), effect: 'succeeded' };
  }
}

/**
 * Whether the poll after `consumed` earlier ones gets the plan's last word: the final step, or the first
 * of answers that repeat for ever (`unknown`, `pollmissingall`). Past it the operation has nothing new
 * to say, so the user's work ends there as far as the simulator can tell.
 */
function isFinalStep(plan: PollPlan, consumed: number): boolean {
  let rest = consumed;
  for (const [index, phase] of plan.phases.entries()) {
    if (phase.times === Infinity) return true;
    if (rest < phase.times) return index === plan.phases.length - 1 && rest === phase.times - 1;
    rest -= phase.times;
  }
  return true;
}

/** The step that answers the poll after `consumed` earlier ones. */
function stepAt(plan: PollPlan, consumed: number): PollStep {
  let rest = consumed;
  for (const phase of plan.phases) {
    if (rest < phase.times) return phase.steps[rest % phase.steps.length];
    rest -= phase.times;
  }
  const last = plan.phases[plan.phases.length - 1];
  return last.steps[last.steps.length - 1];
}

function timestampStyleFor(scenario: ScenarioName): TimestampStyle {
  if (scenario === 'nocreated') return 'missing';
  return scenario === 'baddates' ? 'malformed' : 'iso';
}

/** An ISO time written as Microsoft's own example operation writes it: '-' in the time, two decimals. */
function malformedTimestamp(iso: string): string {
  const [date, time] = iso.split('T');
  const [clock, fraction = '00'] = time.replace(/Z$/, '').split('.');
  return `${date}T${clock.replaceAll(':', '-')}.${fraction.padEnd(2, '0').slice(0, 2)}Z`;
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
  const defaultScenario = options.defaultScenario ?? 'ok';
  if (!isScenarioName(defaultScenario)) {
    throw new TypeError(
      `Graph simulator: defaultScenario is "${String(defaultScenario)}", which is not one of ${SCENARIOS.join(', ')}`,
    );
  }
  for (const [user, scenario] of Object.entries(options.scenarios ?? {})) {
    if (!parseScenario(scenario)) {
      throw new TypeError(
        `Graph simulator: scenarios["${user}"] is "${scenario}", which is not one of ${SCENARIOS.join(', ')} ` +
          `(${COUNTED_SCENARIOS.join(', ')} may end in a count or "all")`,
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
  /** Where the simulator listens (or its public base URL): for callers without a usable Host header. */
  let baseUrl = '';
  const publicBaseUrl = options.publicBaseUrl?.replace(/\/+$/, '');

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
    const final = operation.plan.effect;
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
      const { scenario, count } = scenarioChoiceFor(segment, scenarioOptions);
      user = {
        key,
        name: segment,
        id: fakeObjectId(key),
        scenario,
        scenarioCount: count,
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
      case 'httpdate':
        if (earlierPosts < 1) return throttledAnswer(retryAfterSeconds);
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

    let plan = pollPlanFor({ scenario, count: user.scenarioCount });
    // Drawn for every accepted reset, so the draws do not depend on which scenario came before.
    const opFails = faultRates?.opFail ? draw(user, 'op') < faultRates.opFail : false;
    if (opFails && plan.effect !== 'failed') {
      plan = pollPlanFor({ scenario: 'opfail', count: DEFAULT_SCENARIO_COUNT });
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
      timestamps: timestampStyleFor(scenario),
      runningUntil: performance.now() + operationSeconds * 1000,
      settled: false,
    };
    operations.set(operation.id, operation);
    user.unsettled.push(operation);
    // As Graph: the host the caller used, and the user's object id whatever the caller named it by.
    const location = `${ctx.base}/users/${user.id}/authentication/operations/${operation.id}?${LOCATION_QUERY}`;
    return accept({
      status: 202,
      body: accepted,
      headers: { Location: location },
      retryAfterSeconds: scenario === 'noretry' ? undefined : retryAfterSeconds,
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
      return operationNotFound(operationId, hint);
    }
    const step = stepAt(operation.plan, operation.polls);
    const final = isFinalStep(operation.plan, operation.polls);
    // Not visible yet, whether Graph has started on it or not: the same 404 as an unknown operation.
    if (step.kind === 'notFound') {
      operation.polls++;
      if (final) user.scenarioSpent = true;
      return {
        ...operationNotFound(operationId),
        retryAfterSeconds: step.retryAfter ? retryAfterSeconds : undefined,
        terminal: final,
      };
    }
    if (performance.now() < operation.runningUntil) {
      operation.status = 'running';
      return { status: 200, body: operationBody(ctx, user, operation), retryAfterSeconds };
    }
    operation.polls++;
    if (step.kind === 'throttle') return throttledAnswer(retryAfterSeconds);

    if (operation.status !== step.status) {
      operation.status = step.status;
      operation.statusDetail = step.statusDetail;
      operation.lastActionDateTime = new Date().toISOString();
      // The password changed when the operation's time came (settle), not when it was polled.
      markSettled(user, operation);
    }
    const terminal = TERMINAL_OPERATION_STATUSES.has(operation.status) || final;
    if (terminal) user.scenarioSpent = true;
    return {
      status: 200,
      body: operationBody(ctx, user, operation),
      retryAfterSeconds: step.retryAfter ? retryAfterSeconds : undefined,
      terminal,
    };
  }

  function operationNotFound(operationId: string, hint = ''): Answer {
    return {
      status: 404,
      error: {
        code: 'Request_ResourceNotFound',
        message: `Operation '${operationId}' was not found.${hint}`,
      },
    };
  }

  /** As Graph: a succeeded reset says ResetSuccess and names the password method it changed. */
  function operationBody(
    ctx: RequestContext,
    user: UserState,
    operation: Operation,
  ): Record<string, unknown> {
    return {
      '@odata.context': `${GRAPH_CONTEXT}#microsoft.graph.longRunningOperation`,
      id: operation.id,
      ...operationTimestamps(operation),
      status: operation.status,
      statusDetail: operation.statusDetail,
      resourceLocation:
        operation.status === 'succeeded'
          ? `${ctx.base}/users/${user.id}/authentication/methods/${PASSWORD_METHOD_ID}`
          : null,
    };
  }

  function operationTimestamps(operation: Operation): Record<string, string> {
    const { createdDateTime, lastActionDateTime } = operation;
    switch (operation.timestamps) {
      case 'missing':
        return { lastActionDateTime };
      case 'malformed':
        return {
          createdDateTime: malformedTimestamp(createdDateTime),
          lastActionDateTime: malformedTimestamp(lastActionDateTime),
        };
      default:
        return { createdDateTime, lastActionDateTime };
    }
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

  /** `GET /users/{id}`: Graph's default properties, or exactly those `$select` names. */
  function getUser(ctx: RequestContext, url: URL, segment: string): Answer {
    const user = touchUser(ctx, segment);
    const throttled = lookUp(user);
    if (throttled) return throttled;
    if (user.scenario === 'missing') return notFoundUser(segment);
    const properties = userProperties(user);
    const select = url.searchParams.get('$select');
    if (select === null) {
      const fields = DEFAULT_USER_PROPERTIES.map((name) => [name, properties[name]]);
      return {
        status: 200,
        body: { '@odata.context': `${GRAPH_CONTEXT}#users/$entity`, ...Object.fromEntries(fields) },
      };
    }
    const chosen: string[] = [];
    for (const wanted of select
      .split(',')
      .map((name) => name.trim())
      .filter(Boolean)) {
      const name = Object.keys(properties).find((known) => known.toLowerCase() === wanted.toLowerCase());
      if (name === undefined) {
        return {
          status: 400,
          error: {
            code: 'BadRequest',
            message: `$select names '${wanted}', which is not a property of type 'microsoft.graph.user'.`,
          },
        };
      }
      if (!chosen.includes(name)) chosen.push(name);
    }
    return {
      status: 200,
      body: {
        '@odata.context': `${GRAPH_CONTEXT}#users(${chosen.join(',')})/$entity`,
        ...Object.fromEntries(chosen.map((name) => [name, properties[name]])),
      },
    };
  }

  /** Every property the simulator knows of a user, whether Graph returns it by default or not. */
  function userProperties(user: UserState): Record<string, unknown> {
    const userPrincipalName = user.name.includes('@') ? user.name : `${user.name}@contoso.test`;
    return {
      id: user.id,
      userPrincipalName,
      displayName: userPrincipalName.split('@')[0],
      mail: userPrincipalName,
      businessPhones: [],
      givenName: null,
      surname: null,
      jobTitle: null,
      mobilePhone: null,
      officeLocation: null,
      preferredLanguage: null,
      accountEnabled: user.scenario !== 'disabled',
      onPremisesSyncEnabled: user.scenario === 'synced' ? true : null,
      lastPasswordChangeDateTime: user.lastPasswordChangeDateTime,
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
    if (segments.length === 3 && method === 'GET') return getUser(ctx, url, user);
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
      if (user.active && (answer.terminal ?? PERMANENT_STATUSES.has(answer.status))) {
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
      base: publicBaseUrl ?? callerBase(req) ?? baseUrl,
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
  baseUrl = publicBaseUrl ?? `http://${host.includes(':') ? `[${host}]` : host}:${port}/v1.0`;

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
