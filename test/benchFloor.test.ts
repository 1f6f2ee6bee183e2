import { floorRatio } from '../bench/metrics';
import { floorTables, markdownReport } from '../bench/report';
import { BENCH_POLICY, scenariosNamed } from '../bench/scenarios';
import type {
  BenchResult,
  FloorResult,
  HistoryFacts,
  OrchestratorResult,
  RunPlan,
  RunResult,
  SimulatorCounts,
} from '../bench/types';
import { emptyCounts } from '../workflows/types';

const USERS = 1_000;

const counts: SimulatorCounts = {
  posts: USERS,
  resetsAccepted: USERS,
  polls: USERS,
  throttled: 0,
  earlyRequests: 0,
  peakActiveUsers: 200,
  peakConcurrentRequests: 50,
};

const facts: HistoryFacts = {
  events: 23,
  eventTypes: {},
  workflowTasks: {
    count: 4,
    scheduleToStartMs: { p50: 0, p95: 0, max: 0 },
    startToCloseMs: { p50: 0, p95: 0, max: 0 },
  },
};

/** bulk-reset at 9.8 users/s, 95.4 / 59.4 CPU s per 1,000 users, 23 + 5.9 events per user, 800 MB. */
function orchestrator(overrides: Partial<OrchestratorResult> = {}): OrchestratorResult {
  return {
    jobId: 'job',
    taskQueue: 'bench',
    wallSeconds: USERS / 9.8,
    usersPerSecond: 9.8,
    outcomes: { ...emptyCounts(), succeeded: USERS },
    simulator: counts,
    cpuSeconds: { simulator: 1, benchProcess: 1, worker: 59.4, workerStartup: 2, devServer: 95.4 },
    lowestTenSecondUsersPerSecond: null,
    samples: [],
    peakWorkerRssMb: 800,
    userHistory: { sampled: 500, average: 23, max: 23, firstUser: facts },
    parent: {
      runs: 1,
      historyLengths: [5_900],
      maxHistoryLength: 5_900,
      eventsPerUser: 5.9,
      firstRun: facts,
    },
    report: {
      lines: USERS,
      distinctRows: USERS,
      missing: 0,
      repeated: 0,
      unreadable: 0,
      csvMb: 0.1,
      jsonMb: 0.2,
      downloadSeconds: 0.1,
    },
    failedProgressSamples: 0,
    progressQueryMs: { p50: 1, p95: 2, max: 3 },
    ...overrides,
  };
}

/** The bare shape at 15.3 users/s, 70.3 / 37.2 CPU s per 1,000 users, 17 + 4.4 events per user, 400 MB. */
function floor(overrides: Partial<FloorResult> = {}): FloorResult {
  return {
    shape: 'floor-shape',
    wallSeconds: USERS / 15.3,
    usersPerSecond: 15.3,
    succeeded: USERS,
    failed: 0,
    simulator: counts,
    cpuSeconds: { simulator: 1, worker: 37.2, workerStartup: 2, devServer: 70.3 },
    peakWorkerRssMb: 400,
    userHistory: { sampled: 200, average: 17 },
    parent: { runs: 1, eventsPerUser: 4.4 },
    ...overrides,
  };
}

const plan: RunPlan = {
  scenario: 'floor',
  label: 'floor',
  users: USERS,
  windowSize: 200,
  simulator: { retryAfterSeconds: 1, latencyMs: 0, operationSeconds: 0 },
  writesPerSecond: 0,
  policy: BENCH_POLICY,
  floors: ['floor-shape'],
};

function benchResult(runs: RunResult[], scenario = 'floor'): BenchResult {
  return {
    scenario,
    startedAt: '2026-12-01T00:00:00.000Z',
    finishedAt: '2026-12-01T00:10:00.000Z',
    argv: [],
    machine: {
      cpus: 2,
      cpuModel: 'test',
      totalMemoryMb: 4_096,
      node: 'v24',
      platform: 'linux',
      kernel: '6',
      temporalCli: 'temporal',
    },
    devServer: { persistence: 'wal', pragmas: {} },
    runs,
  };
}

describe("bulk-reset's ratio to Temporal's floor", () => {
  it('divides users/s, CPU per user and events per user (user + job) by the floor’s', () => {
    const ratio = floorRatio(orchestrator(), floor());
    expect(ratio.shape).toBe('floor-shape');
    expect(ratio.usersPerSecond).toBeCloseTo(9.8 / 15.3, 6);
    expect(ratio.devServerCpuPerUser).toBeCloseTo(95.4 / 70.3, 6);
    expect(ratio.workerCpuPerUser).toBeCloseTo(59.4 / 37.2, 6);
    expect(ratio.eventsPerUser).toBeCloseTo((23 + 5.9) / (17 + 4.4), 6);
    expect(ratio.peakWorkerRss).toBeCloseTo(2, 6);
  });

  it('gives no ratio where a side’s server CPU could not be measured, rather than 0 or Infinity', () => {
    const unmeasured = floor({ cpuSeconds: { simulator: 1, worker: 37.2, workerStartup: 2 } });
    expect(floorRatio(orchestrator(), unmeasured).devServerCpuPerUser).toBeNull();
    const nothingDone = floor({ cpuSeconds: { simulator: 1, worker: 0, workerStartup: 2, devServer: 70.3 } });
    expect(floorRatio(orchestrator(), nothingDone).workerCpuPerUser).toBeNull();
  });
});

describe('the floor tables in the Markdown report', () => {
  const run: RunResult = {
    plan,
    orchestrator: orchestrator(),
    floors: [floor()],
    floorRatios: [floorRatio(orchestrator(), floor())],
  };

  it('lists each floor and bulk-reset with users/s, CPU s per 1,000 users, events per user and peak RSS', () => {
    const [sides, , ratios] = floorTables([run]);
    expect(sides.split('\n')).toEqual([
      '| run | side | users/s | dev server CPU s/1k | worker CPU s/1k | events/user (user + job) | worker peak RSS MB | succeeded |',
      '| --- | --- | --- | --- | --- | --- | --- | --- |',
      '| floor | floor-shape | 15.3 | 70.3 | 37.2 | 17.0 + 4.4 | 400 | 1000/1000 |',
      '| floor | bulk-reset | 9.8 | 95.4 | 59.4 | 23.0 + 5.9 | 800 | 1000/1000 |',
    ]);
    expect(ratios.split('\n')[2]).toBe('| floor | floor-shape | 0.64× | 1.36× | 1.60× | 1.35× | 2.00× |');
  });

  it('leaves the floor out of a report whose runs measured none', () => {
    const noFloor: RunResult = { plan: { ...plan, floors: undefined }, orchestrator: orchestrator() };
    expect(floorTables([noFloor])).toEqual([]);
    expect(markdownReport(benchResult([noFloor]))).not.toContain('floor-shape');
  });

  it('flags a floor whose users did not all succeed', () => {
    const short: RunResult = { ...run, floors: [floor({ succeeded: USERS - 3, failed: 3 })] };
    expect(markdownReport(benchResult([short]))).toContain(
      '**check:** floor floor-shape: 997/1000 succeeded',
    );
  });

  it('measures the budget run against min(20/s, the floor-shape users/s measured in the same run)', () => {
    const budgetPlan: RunPlan = { ...plan, scenario: 'budget', label: 'budget', writesPerSecond: 20 };
    const paced = orchestrator({
      wallSeconds: 100,
      simulator: { ...counts, resetsAccepted: 1_000, posts: 1_000 },
    });
    const slowFloor = floor({ usersPerSecond: 12.5 });
    const budget: RunResult = {
      plan: budgetPlan,
      orchestrator: paced,
      floors: [slowFloor],
      floorRatios: [floorRatio(paced, slowFloor)],
    };
    expect(markdownReport(benchResult([budget], 'budget'))).toContain(
      'budget: 10.0 resets/s against min(20/s, floor-shape 12.5 users/s) = 12.5/s: 80.0% of what this machine',
    );
  });
});

describe('the floor scenario', () => {
  it('runs both floor shapes beside bulk-reset, and the budget scenario the bare shape', () => {
    expect(scenariosNamed('floor')[0].plans({ users: 40 })).toEqual([
      expect.objectContaining({ users: 40, floors: ['floor-activity', 'floor-shape'] }),
    ]);
    expect(scenariosNamed('budget')[0].plans({})[0].floors).toEqual(['floor-shape']);
  });
});
