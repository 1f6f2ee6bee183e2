/**
 * What the simulator remembers: its users and their scenarios' progress, the operations it accepted,
 * the counters tests take as ground truth, the throttling budgets, and the token and outage switches.
 * Everything here is in memory and lives as long as the simulator; passwords only with `keepPasswords`.
 */
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { RequestContext } from './answers';
import type { FaultChannel, FaultKind } from './faults';
import type { SimulatorSettings } from './options';
import {
  type ConfirmCompromisedRequest,
  type IdentityProtectionState,
  emptyIdentityProtection,
} from './identityProtection';
import {
  type OperationStatus,
  type PollPlan,
  type ScenarioName,
  type TimestampStyle,
  scenarioChoiceFor,
} from './scenarios';

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
  /** passwordProfile PATCHes received, in order, with the flags each carried and Graph's answer. */
  profileWrites: PasswordProfileWrite[];
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
  /** Identity Protection: every confirmCompromised request, and how often each object id was confirmed. */
  riskyUsers: {
    requests: Omit<ConfirmCompromisedRequest, 'arrivedAtMs'>[];
    confirmed: Record<string, number>;
  };
}

/** One passwordProfile PATCH as the simulator saw it (never its password). */
export interface PasswordProfileWrite {
  forceChangePasswordNextSignIn?: boolean;
  forceChangePasswordNextSignInWithMfa?: boolean;
  /** The caller's token was app-only. */
  appOnly: boolean;
  /** The HTTP status answered (0 when the connection was dropped). */
  status: number;
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

/** Before any simulated reset, every user last changed their password at this moment. */
const INITIAL_PASSWORD_CHANGE = '2025-01-01T08:00:00Z';

/** A user's counters: what UserStats reports of it besides who it is and whether it is active. */
type UserCounters = Omit<UserStats, 'user' | 'id' | 'scenario' | 'active'>;

/** The counters kept both per user and for all users together. */
type SharedCounter = 'posts' | 'resetsAccepted' | 'polls' | 'earlyRequests' | 'resetsApplied';

export interface UserState {
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

export interface Operation {
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

/** The settings and the state every route works with. */
export interface Simulation {
  readonly settings: SimulatorSettings;
  readonly state: SimulatorState;
}

/** A stable, GUID-shaped object id per user, the same across simulator runs. */
export function fakeObjectId(userKey: string): string {
  const hex = createHash('sha256').update(`bulk-reset-simulator:${userKey}`).digest('hex');
  const variant = ((parseInt(hex[16], 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
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
    profileWrites: [],
  };
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
    faults: { throttle: 0, unavailable: 0, drop: 0, dropAfterApply: 0, opFail: 0, outage: 0 },
    earlyDetails: [],
    riskyUsers: { requests: [], confirmed: {} },
  };
}

/** Graph's throttling budgets: a bucket of `capacity` tokens refilled evenly over `perSeconds`. */
export class TokenBucket {
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

export class SimulatorState {
  readonly users = new Map<string, UserState>();
  private readonly userKeyById = new Map<string, string>();
  readonly operations = new Map<string, Operation>();
  counters = emptyStats();
  private readonly startedAt = performance.now();
  /** Graph requests being answered now (control requests are not counted). */
  private inFlight = 0;
  /** The token is refused (expired, sessions revoked) until restored. */
  tokenRevoked = false;
  /** performance.now() until which Graph is down (Infinity: until endOutage); undefined when up. */
  outageUntil: number | undefined;
  /** Graph's budget on resetPassword POSTs, when the options set one. */
  readonly writeBudget: TokenBucket | undefined;
  /** The budget on user lookups, when the options set one. */
  readonly readBudget: TokenBucket | undefined;
  /** confirmCompromised requests and the ids confirmed (not zeroed by resetCounters: it is tenant state). */
  readonly identityProtection: IdentityProtectionState = emptyIdentityProtection();

  constructor(private readonly settings: SimulatorSettings) {
    const { writeBudget, readBudget } = settings;
    this.writeBudget = writeBudget && new TokenBucket(writeBudget.writes, writeBudget.perSeconds);
    this.readBudget = readBudget && new TokenBucket(readBudget.reads, readBudget.perSeconds);
  }

  /** Counts a Graph request as it arrives, for the traffic and concurrency counters. */
  requestStarted(): void {
    this.counters.requests++;
    this.inFlight++;
    this.counters.peakConcurrentRequests = Math.max(this.counters.peakConcurrentRequests, this.inFlight);
  }

  requestEnded(): void {
    this.inFlight--;
  }

  /** Adds one to a counter kept both for the user and for all users. */
  count(user: UserState, counter: SharedCounter): void {
    user.counters[counter]++;
    this.counters[counter]++;
  }

  countFault(kind: FaultKind): void {
    this.counters.faults[kind]++;
  }

  findUser(user: string): UserState | undefined {
    const key = user.toLowerCase();
    return this.users.get(this.userKeyById.get(key) ?? key);
  }

  /** Attributes the request to a user: registers it (active) on its first request and counts early requests. */
  touchUser(ctx: RequestContext, segment: string): UserState {
    let user = this.findUser(segment);
    if (!user) {
      const key = segment.toLowerCase();
      const { scenario, count } = scenarioChoiceFor(segment, this.settings.scenarios);
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
        passwords: this.settings.keepPasswords ? { received: [], accepted: [] } : undefined,
        draws: {},
        unsettled: [],
      };
      this.users.set(key, user);
      this.userKeyById.set(user.id, key);
      this.counters.activeUsers++;
      this.counters.peakActiveUsers = Math.max(this.counters.peakActiveUsers, this.counters.activeUsers);
    }
    if (user.notBefore !== undefined && ctx.arrivedAt < user.notBefore) {
      this.count(user, 'earlyRequests');
      if (this.counters.earlyDetails.length < EARLY_DETAILS_KEPT && user.notBeforeSetBy) {
        this.counters.earlyDetails.push({
          user: user.name,
          request: ctx.request,
          earlyByMs: Math.round(user.notBefore - ctx.arrivedAt),
          after: user.notBeforeSetBy,
          atMs: Math.round(ctx.arrivedAt - this.startedAt),
        });
      }
    }
    ctx.user = user;
    return user;
  }

  /** The user's work has ended as far as the simulator can tell: it stops counting as active. */
  finishUser(user: UserState): void {
    if (!user.active) return;
    user.active = false;
    this.counters.activeUsers--;
  }

  /**
   * Records the effect of the user's operations whose time has come, polled or not: as in Graph, a
   * reset takes effect when its operation completes, and lastPasswordChangeDateTime moves then.
   */
  settle(user: UserState, now = performance.now()): void {
    if (user.unsettled.length === 0) return;
    user.unsettled = user.unsettled.filter((operation) => {
      if (now < operation.runningUntil) return true;
      this.markSettled(user, operation);
      return false;
    });
  }

  markSettled(user: UserState, operation: Operation): void {
    if (operation.settled) return;
    operation.settled = true;
    const final = operation.plan.effect;
    if (final === 'succeeded') {
      // When the operation's time came, not when someone looked.
      const at = Date.now() - Math.max(0, performance.now() - operation.runningUntil);
      const iso = new Date(Math.max(at, Date.parse(user.lastPasswordChangeDateTime) + 1)).toISOString();
      user.lastPasswordChangeDateTime = iso;
      this.count(user, 'resetsApplied');
    } else if (final === 'failed') {
      user.counters.operationsFailed++;
    }
  }

  /** A reset that took effect the moment Graph accepted it (its confirmation is what went missing). */
  applyNow(user: UserState): void {
    user.lastPasswordChangeDateTime = new Date().toISOString();
    this.count(user, 'resetsApplied');
  }

  userStats(user: UserState): UserStats {
    this.settle(user);
    return {
      user: user.name,
      id: user.id,
      scenario: user.scenario,
      ...user.counters,
      profileWrites: user.counters.profileWrites.map((write) => ({ ...write })),
      active: user.active,
    };
  }

  allUserStats(): UserStats[] {
    return [...this.users.values()].map((user) => this.userStats(user));
  }

  snapshot(): SimulatorStats {
    for (const user of this.users.values()) this.settle(user);
    const { counters } = this;
    return {
      ...counters,
      responsesByStatus: { ...counters.responsesByStatus },
      faults: { ...counters.faults },
      earlyDetails: [...counters.earlyDetails],
      riskyUsers: {
        requests: this.identityProtection.requests.map(({ at, status, userIds }) => ({
          at,
          status,
          userIds: [...userIds],
        })),
        confirmed: Object.fromEntries(this.identityProtection.confirmed),
      },
      users: this.users.size,
    };
  }

  /** Zeroes every counter; peaks restart from the current levels. Scenario progress is kept. */
  resetCounters(): void {
    const activeUsers = this.counters.activeUsers;
    this.counters = {
      ...emptyStats(),
      activeUsers,
      peakActiveUsers: activeUsers,
      peakConcurrentRequests: this.inFlight,
    };
    for (const user of this.users.values()) user.counters = emptyCounters();
  }

  startOutage(seconds?: number): void {
    if (seconds !== undefined && !(Number.isFinite(seconds) && seconds > 0)) {
      throw new TypeError(`Graph simulator: an outage lasts a positive number of seconds, got ${seconds}`);
    }
    this.outageUntil = seconds === undefined ? Infinity : performance.now() + seconds * 1000;
  }

  endOutage(): void {
    this.outageUntil = undefined;
  }

  outageActive(): boolean {
    return this.outageUntil !== undefined && performance.now() < this.outageUntil;
  }
}
