/**
 * The scenarios: each is one or more runs, and every run puts the orchestrator and the baseline against
 * the same simulator settings, users, window and policy.
 */
import type { ResetPolicy } from '../workflows/types';
import type { RunPlan, SimulatorSettings } from './types';

/** Both sides wait by this policy (waits short enough that the simulator's Retry-After decides). */
export const BENCH_POLICY: ResetPolicy = {
  minWaitMs: 100,
  maxWaitMs: 60_000,
  defaultWaitMs: 1_000,
  deadlineMs: 15 * 60_000,
  requestTimeoutMs: 30_000,
};

/** Graph answering at once, with the simulator's default Retry-After of 1 s. */
const PLAIN_GRAPH: SimulatorSettings = { retryAfterSeconds: 1, latencyMs: 0, operationSeconds: 0 };

export interface PlanOverrides {
  users?: number;
  windowSize?: number;
}

export interface Scenario {
  name: string;
  /** Run by `--scenario all`. */
  quick: boolean;
  about: string;
  plans(overrides: PlanOverrides): RunPlan[];
}

function single(
  name: string,
  defaults: Omit<RunPlan, 'scenario' | 'label' | 'policy'>,
): (overrides: PlanOverrides) => RunPlan[] {
  return (overrides) => [
    {
      ...defaults,
      scenario: name,
      label: name,
      users: overrides.users ?? defaults.users,
      windowSize: overrides.windowSize ?? defaults.windowSize,
      policy: BENCH_POLICY,
    },
  ];
}

/** Both floor shapes (bench/floorWorkflows.ts), one activity first. */
const BOTH_FLOORS: RunPlan['floors'] = ['floor-activity', 'floor-shape'];

export const SCENARIOS: readonly Scenario[] = [
  {
    name: 'floor',
    quick: true,
    about:
      "Temporal's floor: a child with one activity, the bare shape, then bulk-reset, each on a fresh dev server; bulk-reset as a ratio to each",
    plans: single('floor', {
      users: 1_000,
      windowSize: 200,
      simulator: PLAIN_GRAPH,
      writesPerSecond: 0,
      floors: BOTH_FLOORS,
    }),
  },
  {
    name: 'ratio',
    quick: true,
    about: 'Graph takes 2 s per reset (Retry-After 1 s): orchestrator wall time / baseline wall time',
    plans: single('ratio', {
      users: 2_000,
      windowSize: 200,
      simulator: { ...PLAIN_GRAPH, operationSeconds: 2 },
      writesPerSecond: 0,
    }),
  },
  {
    name: 'events',
    quick: true,
    about: "history events of a one-poll user's workflow, and of the job's runs",
    plans: single('events', { users: 2_000, windowSize: 200, simulator: PLAIN_GRAPH, writesPerSecond: 0 }),
  },
  {
    name: 'throughput',
    quick: true,
    about: 'no budget, no latency: users/s overall and the lowest over 10 s',
    plans: single('throughput', {
      users: 20_000,
      windowSize: 500,
      simulator: PLAIN_GRAPH,
      writesPerSecond: 0,
    }),
  },
  {
    name: 'sizes',
    quick: true,
    about: 'time per user at three sizes (--users N runs N/20, N/4 and N)',
    plans: ({ users = 20_000, windowSize = 200 }) =>
      [Math.round(users / 20), Math.round(users / 4), users].map((size) => ({
        scenario: 'sizes',
        label: `sizes-${size}`,
        users: size,
        windowSize,
        simulator: PLAIN_GRAPH,
        writesPerSecond: 0,
        policy: BENCH_POLICY,
      })),
  },
  {
    name: 'budget',
    quick: true,
    about:
      "Graph's write budget (3,000 per 150 s) and the worker paced to 20/s; the baseline is unpaced and earns 429s",
    plans: single('budget', {
      users: 6_000,
      windowSize: 200,
      simulator: { ...PLAIN_GRAPH, writeBudget: { writes: 3_000, perSeconds: 150 } },
      writesPerSecond: 20,
      // What Temporal alone can reach here: the target is min(20/s, this floor's users/s).
      floors: ['floor-shape'],
    }),
  },
  {
    name: '100k',
    quick: false,
    about: '100,000 users, no budget, window 1,000',
    plans: single('100k', { users: 100_000, windowSize: 1_000, simulator: PLAIN_GRAPH, writesPerSecond: 0 }),
  },
];

export function scenariosNamed(name: string): Scenario[] {
  if (name === 'all') return SCENARIOS.filter((scenario) => scenario.quick);
  const scenario = SCENARIOS.find((candidate) => candidate.name === name);
  if (!scenario) {
    throw new Error(
      `unknown scenario "${name}": one of ${SCENARIOS.map((candidate) => candidate.name).join(', ')}, or all`,
    );
  }
  return [scenario];
}
