/**
 * The simulator's options as a caller gives them, checked once at start, and the settings the routes
 * read (defaults filled in).
 */
import type { FaultRates } from './faults';
import { type TokenFacts, tokenFacts } from '../graph/tokenClaims';
import {
  COUNTED_SCENARIOS,
  SCENARIOS,
  type ScenarioName,
  type ScenarioOptions,
  type ScenarioSpec,
  isScenarioName,
  parseScenario,
} from './scenarios';

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
  /**
   * Every request must carry `Authorization: Bearer <token>`, else 401 InvalidAuthenticationToken. A token
   * that is a JWT (graph/tokenClaims' unsignedToken) says who calls: app-only (`roles`, no `scp`) or
   * delegated (`scp`), and which permissions it carries; the simulator answers as Graph does for that
   * caller. An opaque token is a delegated caller with every permission.
   */
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
  /**
   * Identity Protection (`confirmCompromised`): `licensed: false` plays a tenant without Entra ID P2 (403
   * for every request); `requestsPerSecond` is its limit, over which it answers 429 without Retry-After
   * (default 1, Graph's per-tenant limit).
   */
  identityProtection?: { licensed?: boolean; requestsPerSecond?: number };
}

/** The options with their defaults filled in: what the routes read. */
export interface SimulatorSettings {
  token: string;
  /** What the token says of its caller (see SimulatorOptions.token). */
  caller: TokenFacts;
  retryAfterSeconds: number;
  operationSeconds: number;
  latencyMs: number;
  scenarios: ScenarioOptions;
  keepPasswords: boolean;
  writeBudget: SimulatorOptions['writeBudget'];
  readBudget: SimulatorOptions['readBudget'];
  faults: FaultRates | undefined;
  identityProtection: { licensed: boolean; requestsPerSecond: number };
  /** Without a trailing slash; undefined when links name the host the caller used. */
  publicBaseUrl: string | undefined;
}

/** Checks the options (throws a TypeError that names the one at fault) and fills in the defaults. */
export function resolveOptions(options: SimulatorOptions): SimulatorSettings {
  validateOptions(options);
  return {
    token: options.token,
    caller: tokenFacts(options.token),
    retryAfterSeconds: options.retryAfterSeconds ?? 1,
    operationSeconds: options.operationSeconds ?? 0,
    latencyMs: options.latencyMs ?? 0,
    scenarios: { defaultScenario: options.defaultScenario, scenarios: options.scenarios },
    keepPasswords: options.keepPasswords === true,
    writeBudget: options.writeBudget,
    readBudget: options.readBudget,
    faults: options.faults,
    identityProtection: {
      licensed: options.identityProtection?.licensed ?? true,
      requestsPerSecond: options.identityProtection?.requestsPerSecond ?? 1,
    },
    publicBaseUrl: options.publicBaseUrl?.replace(/\/+$/, ''),
  };
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
  const perSecond = options.identityProtection?.requestsPerSecond;
  if (perSecond !== undefined && !(Number.isFinite(perSecond) && perSecond > 0)) {
    throw new TypeError(
      `Graph simulator: identityProtection.requestsPerSecond must be a positive number, got ${perSecond}`,
    );
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
