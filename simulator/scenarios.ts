/**
 * The simulator's scenarios: their names, how a user's name or the `scenarios` option picks one, and
 * what each does to the requests of its user (the resetPassword POSTs before Graph accepts one, the
 * polls of the operation it accepted, the operation's timestamps). Pure: the simulator's state and
 * its HTTP answers live elsewhere, so a scenario reads as the script it is.
 */

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

/** Where a user's scenario comes from when its name does not pick one. */
export interface ScenarioOptions {
  /** Scenario for users whose name picks none. Default 'ok'. */
  defaultScenario?: ScenarioName;
  /** Explicit scenario per user (keys matched case-insensitively); wins over the name convention. */
  scenarios?: Record<string, ScenarioSpec>;
}

/** A user's scenario and, for a counted one, how many polls it lasts (Infinity for `all`). */
export interface ScenarioChoice {
  scenario: ScenarioName;
  count: number;
}

/** What a counted scenario without a count in the name lasts: one poll. */
export const DEFAULT_SCENARIO_COUNT = 1;

export function isScenarioName(value: string): value is ScenarioName {
  return (SCENARIOS as readonly string[]).includes(value);
}

function isCountedScenario(value: string): value is CountedScenarioName {
  return (COUNTED_SCENARIOS as readonly string[]).includes(value);
}

/**
 * Reads a scenario as spelled (case-insensitively): a scenario's name, or a counted scenario's name
 * followed by a count (`pollmissing3`) or `all`. Undefined when it names no scenario.
 */
export function parseScenario(spec: string): ScenarioChoice | undefined {
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
export function scenarioChoiceFor(user: string, options: ScenarioOptions): ScenarioChoice {
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
export function scenarioFor(user: string, options: ScenarioOptions): ScenarioName {
  return scenarioChoiceFor(user, options).scenario;
}

// ---------------------------------------------------------------------------------------------------------
// resetPassword POSTs

/** A POST the scenario refuses for good, each with Graph's own answer. */
export type Refusal = 'badpw' | 'denied' | 'missing';

/** What a scenario makes of a resetPassword POST that met no fault and no spent budget. */
export type PostStep =
  | { kind: 'refuse'; refusal: Refusal }
  | { kind: 'throttle' }
  | { kind: 'unavailable' }
  /** The connection drops before Graph took the reset. */
  | { kind: 'drop' }
  /** Graph accepts the reset; with `dropAfterAccept` the connection drops before the 202 leaves. */
  | { kind: 'accept'; dropAfterAccept: boolean };

const ACCEPT: PostStep = { kind: 'accept', dropAfterAccept: false };

/** The answer of `scenario` to the POST after `earlierPosts` earlier ones it answered. */
export function postStepFor(scenario: ScenarioName, earlierPosts: number): PostStep {
  switch (scenario) {
    case 'badpw':
    case 'denied':
    case 'missing':
      return { kind: 'refuse', refusal: scenario };
    case 'throttled':
      return earlierPosts < 2 ? { kind: 'throttle' } : ACCEPT;
    case 'httpdate':
      return earlierPosts < 1 ? { kind: 'throttle' } : ACCEPT;
    case 'flaky':
      return earlierPosts < 2 ? { kind: 'unavailable' } : ACCEPT;
    case 'drop':
      return earlierPosts < 1 ? { kind: 'drop' } : ACCEPT;
    case 'dropafter':
      return { kind: 'accept', dropAfterAccept: earlierPosts < 1 };
    default:
      return ACCEPT;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Operation polls

/** Graph's statuses, and any string a newer Graph may send (the `pollunknown` scenarios send one). */
export type OperationStatus =
  'notStarted' | 'running' | 'succeeded' | 'failed' | 'unknownFutureValue' | (string & {});

/** A poll answered 200 with the operation in this status. */
interface StatusStep {
  kind: 'status';
  status: OperationStatus;
  statusDetail: string | null;
  retryAfter: boolean;
}

/** One answer to an operation poll. */
export type PollStep =
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
export interface PollPlan {
  /** Answered in order; past the end, the last step of the last phase answers every poll. */
  phases: readonly PollPhase[];
  /** The reset's effect once the operation's time has come, whether any poll saw it or not. */
  effect: 'succeeded' | 'failed' | 'none';
}

/** Only these end an operation; unknownFutureValue and statuses newer than the client do not. */
export const TERMINAL_OPERATION_STATUSES: ReadonlySet<OperationStatus> = new Set(['succeeded', 'failed']);
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

/** One phase per step, each answering one poll. */
function inTurn(...steps: PollStep[]): PollPhase[] {
  return steps.map((step) => ({ steps: [step], times: 1 }));
}

/** How the operation of a reset accepted under `scenario` answers its polls. */
export function pollPlanFor({ scenario, count }: ScenarioChoice): PollPlan {
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
export function isFinalStep(plan: PollPlan, consumed: number): boolean {
  let rest = consumed;
  for (const [index, phase] of plan.phases.entries()) {
    if (phase.times === Infinity) return true;
    if (rest < phase.times) return index === plan.phases.length - 1 && rest === phase.times - 1;
    rest -= phase.times;
  }
  return true;
}

/** The step that answers the poll after `consumed` earlier ones. */
export function stepAt(plan: PollPlan, consumed: number): PollStep {
  let rest = consumed;
  for (const phase of plan.phases) {
    if (rest < phase.times) return phase.steps[rest % phase.steps.length];
    rest -= phase.times;
  }
  const last = plan.phases[plan.phases.length - 1];
  return last.steps[last.steps.length - 1];
}

/** How an operation writes its timestamps. */
export type TimestampStyle = 'iso' | 'missing' | 'malformed';

export function timestampStyleFor(scenario: ScenarioName): TimestampStyle {
  if (scenario === 'nocreated') return 'missing';
  return scenario === 'baddates' ? 'malformed' : 'iso';
}
