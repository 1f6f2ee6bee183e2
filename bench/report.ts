/** The Markdown a run prints: one table for time, one for cost, and a line per scenario's question. */
import { perThousandUsers, windowFill } from './metrics';
import type { BenchResult, FloorRatio, HistoryFacts, RunResult, SideResult } from './types';

const DASH = '–';

function number(value: number | null | undefined, digits = 1): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return DASH;
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function pair(orchestrator: string, baseline: string | undefined): string {
  return baseline === undefined ? orchestrator : `${orchestrator} / ${baseline}`;
}

function table(header: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

function sideCpu(side: SideResult): number {
  const cpu = side.cpuSeconds;
  return cpu.simulator + cpu.benchProcess + (cpu.worker ?? 0) + (cpu.devServer ?? 0);
}

function timeRow({ plan, orchestrator: orch, baseline: base, wallRatio }: RunResult): string[] {
  return [
    plan.label,
    plan.users.toLocaleString('en-US'),
    String(plan.windowSize),
    number(orch.wallSeconds),
    number(base?.wallSeconds),
    number(wallRatio, 2),
    number(orch.usersPerSecond),
    number(base?.usersPerSecond),
    pair(number(orch.lowestTenSecondUsersPerSecond), base && number(base.lowestTenSecondUsersPerSecond)),
    pair(String(orch.outcomes.succeeded), base && String(base.outcomes.succeeded)),
    pair(String(orch.simulator.throttled), base && String(base.simulator.throttled)),
    pair(String(orch.simulator.earlyRequests), base && String(base.simulator.earlyRequests)),
    pair(String(orch.simulator.peakActiveUsers), base && String(base.simulator.peakActiveUsers)),
  ];
}

function costRow({ plan, orchestrator: orch, baseline: base }: RunResult, cpus: number): string[] {
  const perK = (seconds: number | undefined) => number(perThousandUsers(seconds, plan.users), 2);
  return [
    plan.label,
    number(orch.userHistory.average),
    String(orch.userHistory.max),
    String(orch.parent.runs),
    String(orch.parent.maxHistoryLength),
    number(orch.parent.eventsPerUser),
    number(orch.peakWorkerRssMb, 0),
    perK(orch.cpuSeconds.worker),
    perK(orch.cpuSeconds.devServer),
    pair(perK(orch.cpuSeconds.simulator), base && perK(base.cpuSeconds.simulator)),
    pair(perK(orch.cpuSeconds.benchProcess), base && perK(base.cpuSeconds.benchProcess)),
    pair(
      `${number((100 * sideCpu(orch)) / (orch.wallSeconds * cpus), 0)}%`,
      base && `${number((100 * sideCpu(base)) / (base.wallSeconds * cpus), 0)}%`,
    ),
  ];
}

/** `0.64×`: a ratio to the floor. */
function times(value: number | null): string {
  return value === null ? DASH : `${number(value, 2)}×`;
}

/**
 * Temporal's floor beside bulk-reset, for the runs that measured it: one table of each side's figures,
 * one of bulk-reset's ratio to each floor. Empty when no run measured a floor.
 */
export function floorTables(runs: readonly RunResult[]): string[] {
  const measured = runs.filter((run) => run.floors && run.floors.length > 0);
  if (measured.length === 0) return [];
  const perK = (seconds: number | undefined, users: number) => number(perThousandUsers(seconds, users), 1);
  const sides = measured.flatMap(({ plan, orchestrator, floors = [] }) => [
    ...floors.map((floor) => [
      plan.label,
      floor.shape,
      number(floor.usersPerSecond),
      perK(floor.cpuSeconds.devServer, plan.users),
      perK(floor.cpuSeconds.worker, plan.users),
      `${number(floor.userHistory.average)} + ${number(floor.parent.eventsPerUser)}`,
      number(floor.peakWorkerRssMb, 0),
      `${floor.succeeded}/${plan.users}`,
    ]),
    [
      plan.label,
      'bulk-reset',
      number(orchestrator.usersPerSecond),
      perK(orchestrator.cpuSeconds.devServer, plan.users),
      perK(orchestrator.cpuSeconds.worker, plan.users),
      `${number(orchestrator.userHistory.average)} + ${number(orchestrator.parent.eventsPerUser)}`,
      number(orchestrator.peakWorkerRssMb, 0),
      `${orchestrator.outcomes.succeeded}/${plan.users}`,
    ],
  ]);
  const ratioRow = (label: string, ratio: FloorRatio) => [
    label,
    ratio.shape,
    times(ratio.usersPerSecond),
    times(ratio.devServerCpuPerUser),
    times(ratio.workerCpuPerUser),
    times(ratio.eventsPerUser),
    times(ratio.peakWorkerRss),
  ];
  return [
    table(
      [
        'run',
        'side',
        'users/s',
        'dev server CPU s/1k',
        'worker CPU s/1k',
        'events/user (user + job)',
        'worker peak RSS MB',
        'succeeded',
      ],
      sides,
    ),
    '',
    table(
      [
        'run',
        'bulk-reset / floor',
        'users/s',
        'dev server CPU/user',
        'worker CPU/user',
        'events/user',
        'worker peak RSS',
      ],
      measured.flatMap(({ plan, floorRatios = [] }) =>
        floorRatios.map((ratio) => ratioRow(plan.label, ratio)),
      ),
    ),
  ];
}

/** `TYPE ×n`, most frequent first. */
function eventTypes(counts: Record<string, number>): string {
  return Object.entries(counts)
    .sort(([, a], [, b]) => b - a)
    .map(([type, count]) => `${type.toLowerCase()} ×${count}`)
    .join(', ');
}

function percent(part: number, whole: number): string {
  return whole === 0 ? DASH : `${number((100 * part) / whole)}%`;
}

/** The line that answers the scenario's own question. */
function scenarioNotes(scenario: string, runs: RunResult[]): string[] {
  const notes: string[] = [];
  if (scenario === 'budget') {
    for (const { plan, orchestrator, baseline, floors } of runs) {
      const floor = floors?.find((measured) => measured.shape === 'floor-shape');
      if (floor) {
        const target = Math.min(plan.writesPerSecond > 0 ? plan.writesPerSecond : 20, floor.usersPerSecond);
        const achieved = orchestrator.simulator.resetsAccepted / orchestrator.wallSeconds;
        notes.push(
          `budget: ${number(achieved)} resets/s against min(${plan.writesPerSecond || 20}/s, floor-shape ${number(floor.usersPerSecond)} users/s) = ` +
            `${number(target)}/s: ${percent(achieved, target)} of what this machine's Temporal allows`,
        );
      }
      const side = (name: string, result: SideResult) =>
        `${name} ${number(result.simulator.resetsAccepted / result.wallSeconds)} resets/s, ` +
        `${result.simulator.throttled} 429s (${percent(result.simulator.throttled, result.simulator.posts)} of ${result.simulator.posts} writes)`;
      notes.push(
        `budget (target ${plan.writesPerSecond}/s): ${side('orchestrator', orchestrator)}` +
          (baseline ? `; ${side('baseline', baseline)}` : ''),
      );
    }
  }
  if (scenario === 'sizes' && runs.length > 0) {
    const spread = (values: number[]) => `${number(100 * (Math.max(...values) / Math.min(...values) - 1))}%`;
    const orchestrator = runs.map((run) => (1000 * run.orchestrator.wallSeconds) / run.plan.users);
    const baselines = runs.flatMap((run) =>
      run.baseline ? [(1000 * run.baseline.wallSeconds) / run.plan.users] : [],
    );
    notes.push(
      `sizes: ms per user ${runs.map((run, index) => `${run.plan.users} → ${number(orchestrator[index], 2)}`).join(', ')}; ` +
        `spread (max/min − 1) orchestrator ${spread(orchestrator)}` +
        (baselines.length === runs.length ? `, baseline ${spread(baselines)}` : ''),
    );
  }
  if (scenario === 'ratio' || scenario === 'throughput' || scenario === '100k') {
    for (const run of runs) {
      notes.push(
        `${run.plan.label}: orchestrator ${number(run.orchestrator.usersPerSecond)} users/s ` +
          `(lowest 10 s: ${number(run.orchestrator.lowestTenSecondUsersPerSecond)})` +
          (run.baseline
            ? `, baseline ${number(run.baseline.usersPerSecond)} users/s; orchestrator wall / baseline wall = ${number(run.wallRatio, 2)}`
            : ''),
      );
    }
  }
  if (scenario === 'events') {
    for (const { plan, orchestrator } of runs) {
      notes.push(
        `${plan.label}: a one-poll user's workflow has ${number(orchestrator.userHistory.average)} events on average, ` +
          `${orchestrator.userHistory.max} at most (${orchestrator.userHistory.sampled} sampled); ` +
          `the job took ${orchestrator.parent.runs} runs of ${orchestrator.parent.historyLengths.join(', ')} events ` +
          `(${number(orchestrator.parent.eventsPerUser)} per user)`,
      );
      notes.push(`one user's events: ${eventTypes(orchestrator.userHistory.firstUser.eventTypes)}`);
      notes.push(`the job's first run: ${eventTypes(orchestrator.parent.firstRun.eventTypes)}`);
    }
  }
  return notes;
}

function warnings(runs: RunResult[]): string[] {
  const found: string[] = [];
  for (const { plan, orchestrator, baseline, floors } of runs) {
    const sides: [string, SideResult | undefined][] = [
      ['orchestrator', orchestrator],
      ['baseline', baseline],
    ];
    for (const [name, side] of sides) {
      if (!side) continue;
      if (side.simulator.earlyRequests > 0)
        found.push(
          `${plan.label} ${name}: ${side.simulator.earlyRequests} requests before their Retry-After`,
        );
      if (side.outcomes.succeeded !== plan.users)
        found.push(`${plan.label} ${name}: ${side.outcomes.succeeded}/${plan.users} succeeded`);
    }
    for (const floor of floors ?? []) {
      if (floor.succeeded !== plan.users)
        found.push(`${plan.label} ${floor.shape}: ${floor.succeeded}/${plan.users} succeeded`);
      if (floor.simulator.earlyRequests > 0)
        found.push(
          `${plan.label} ${floor.shape}: ${floor.simulator.earlyRequests} requests before their Retry-After`,
        );
    }
    const { report } = orchestrator;
    if (report.missing + report.repeated + report.unreadable > 0)
      found.push(
        `${plan.label} report: ${report.missing} rows missing, ${report.repeated} repeated, ${report.unreadable} unreadable lines`,
      );
  }
  return found;
}

export function markdownReport(result: BenchResult): string {
  const { machine, runs } = result;
  const lines = [
    `## bulk-reset bench: ${result.scenario}`,
    '',
    `${machine.cpus} CPUs (${machine.cpuModel}), ${number(machine.totalMemoryMb / 1024)} GB, Node ${machine.node}, ` +
      `${machine.temporalCli}, ${result.devServer.persistence === 'postgres' ? 'the Temporal server on PostgreSQL (its CPU in the dev server column)' : `dev server ${result.devServer.persistence}`}. Cells with "/" are orchestrator / baseline.`,
    '',
    table(
      [
        'run',
        'users',
        'window',
        'orch. s',
        'baseline s',
        'orch/base',
        'orch. users/s',
        'baseline users/s',
        'lowest 10 s users/s',
        'succeeded',
        '429s',
        'early',
        'peak active',
      ],
      runs.map(timeRow),
    ),
    '',
    table(
      [
        'run',
        'events/user avg',
        'events/user max',
        'job runs',
        'job run max events',
        'job events/user',
        'worker peak RSS MB',
        'worker CPU s/1k',
        'dev server CPU s/1k',
        'simulator CPU s/1k',
        'bench process CPU s/1k',
        'CPU busy',
      ],
      runs.map((run) => costRow(run, machine.cpus)),
    ),
  ];
  const floor = floorTables(runs);
  if (floor.length > 0) {
    lines.push(
      '',
      "Temporal's floor (bench/floorWorkflows.ts), each side on a fresh dev server; ratios are bulk-reset's figure / the floor's:",
      '',
      ...floor,
    );
  }
  const scenarios = [...new Set(runs.map((run) => run.plan.scenario))];
  const notes = scenarios.flatMap((scenario) =>
    scenarioNotes(
      scenario,
      runs.filter((run) => run.plan.scenario === scenario),
    ),
  );
  for (const { plan, orchestrator } of runs) {
    const tasks = (facts: HistoryFacts) =>
      `${facts.workflowTasks.count} tasks, waited p50 ${facts.workflowTasks.scheduleToStartMs.p50} / p95 ${facts.workflowTasks.scheduleToStartMs.p95} / max ${facts.workflowTasks.scheduleToStartMs.max} ms, ` +
      `ran p50 ${facts.workflowTasks.startToCloseMs.p50} / p95 ${facts.workflowTasks.startToCloseMs.p95} / max ${facts.workflowTasks.startToCloseMs.max} ms`;
    const fill = windowFill(orchestrator.samples, plan.users, plan.windowSize);
    if (fill) {
      notes.push(
        `${plan.label} window (${plan.windowSize}) in the steady state: median ${fill.median} users in flight, at least ${fill.min}`,
      );
    }
    const { report } = orchestrator;
    notes.push(
      `${plan.label} report: ${report.lines.toLocaleString('en-US')} lines for ${report.distinctRows.toLocaleString('en-US')} distinct rows ` +
        `(CSV ${number(report.csvMb)} MB, JSON ${number(report.jsonMb)} MB), downloaded in ${number(report.downloadSeconds, 2)} s and read back line by line`,
    );
    const query = orchestrator.progressQueryMs;
    notes.push(
      `${plan.label} progress query (jobState) took p50 ${query.p50} / p95 ${query.p95} / max ${query.max} ms` +
        (orchestrator.failedProgressSamples > 0 ? `; ${orchestrator.failedProgressSamples} failed` : ''),
    );
    notes.push(
      `${plan.label} workflow tasks: job's first run ${tasks(orchestrator.parent.firstRun)}; first user ${tasks(orchestrator.userHistory.firstUser)}`,
    );
  }
  const problems = warnings(runs);
  if (notes.length + problems.length > 0) lines.push('');
  for (const note of notes) lines.push(`- ${note}`);
  for (const problem of problems) lines.push(`- **check:** ${problem}`);
  return lines.join('\n');
}
