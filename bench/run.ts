/**
 * The benchmark: runs the orchestrator (a real dev server, a `bulk-reset worker` process, a job) and a
 * plain baseline (an async pool over the same Graph client) against the same Graph simulator settings,
 * writes everything it measured to bench/results/<timestamp>-<scenario>.json and prints a Markdown
 * summary on stdout. Progress goes to stderr.
 *
 *   node dist/bench/run.js --scenario <name|all> [--users N] [--window N] [--workers N] [--skip-baseline] [--store wal|rollback|memory|postgres]
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { newCodecKeyLine } from '../temporal/codec';
import { createClient, loadSettings } from '../temporal/config';
import { PROJECT_ROOT, WAL_PRAGMAS, findTemporalCli, startDevServer } from '../temporal/devServer';
import { MAX_WINDOW_SIZE, formatProgress } from '../client/jobs';
import { sampleCsv } from '../simulator/sampleUsers';
import { runBaseline } from './baseline';
import { runFloor } from './floor';
import { floorRatio } from './metrics';
import { type Stage, runOrchestrator } from './orchestrator';
import { startPostgresServer } from './postgresServer';
import { cpuSeconds, findDescendant } from './processStats';
import { markdownReport } from './report';
import { type PlanOverrides, SCENARIOS, scenariosNamed } from './scenarios';
import { startSimulatorProcess } from './simulatorProcess';
import type { BenchResult, FloorResult, MachineFacts, RunPlan, RunResult } from './types';

const USAGE = `usage: node dist/bench/run.js --scenario <name|all> [--users N] [--window N] [--workers N] [--skip-baseline] [--store wal|rollback|memory|postgres]

scenarios:
${SCENARIOS.map((scenario) => `  ${scenario.name.padEnd(11)}${scenario.about}${scenario.quick ? '' : ' (not in "all")'}`).join('\n')}

--store       where the dev server keeps its state: a SQLite file with a write-ahead log (wal, the
              default, as the chaos test and the soak run it), a SQLite file with SQLite's own defaults
              (rollback), or memory; or postgres: not the dev server but the real Temporal server on
              PostgreSQL (scripts/temporal-postgres.sh, built and installed on first use)
--workers     bulk-reset worker processes polling each run's task queue (default 1): CPU is their sum,
              peak RSS the largest of one`;

/** Where the dev server keeps its state. */
const STORES = {
  wal: { label: 'SQLite file, write-ahead log', file: true, pragmas: WAL_PRAGMAS },
  rollback: { label: "SQLite file, SQLite's defaults", file: true, pragmas: {} },
  memory: { label: 'in memory', file: false, pragmas: {} },
  postgres: { label: 'the Temporal server on PostgreSQL', file: false, pragmas: {} },
} as const;
type Store = keyof typeof STORES;

/** A mistake in the command line: printed without a stack trace. */
class UsageError extends Error {}

/** A progress line on stderr at most this often. */
const PROGRESS_EVERY_MS = 10_000;

interface BenchOptions {
  scenario: string;
  overrides: PlanOverrides;
  /** bulk-reset worker processes for each run (default one). */
  workers?: number;
  skipBaseline: boolean;
  store: Store;
}

function positiveInteger(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 1)
    throw new UsageError(`${flag} must be a positive whole number`);
  return parsed;
}

function parseOptions(argv: string[]): BenchOptions | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      scenario: { type: 'string' },
      users: { type: 'string' },
      window: { type: 'string' },
      workers: { type: 'string' },
      'skip-baseline': { type: 'boolean', default: false },
      store: { type: 'string', default: 'wal' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) return undefined;
  if (!values.scenario) throw new UsageError(`--scenario is required\n\n${USAGE}`);
  const windowSize = positiveInteger(values.window, '--window');
  if (windowSize !== undefined && windowSize > MAX_WINDOW_SIZE)
    throw new UsageError(`--window is at most ${MAX_WINDOW_SIZE}`);
  if (!Object.hasOwn(STORES, values.store))
    throw new UsageError(`--store is one of ${Object.keys(STORES).join(', ')}`);
  return {
    scenario: values.scenario,
    overrides: { users: positiveInteger(values.users, '--users'), windowSize },
    workers: positiveInteger(values.workers, '--workers'),
    skipBaseline: values['skip-baseline'],
    store: values.store as Store,
  };
}

function machineFacts(): MachineFacts {
  const cli = findTemporalCli();
  let temporalCli = 'temporal CLI (downloaded by the SDK)';
  if (cli) {
    try {
      temporalCli = execFileSync(cli, ['--version'], { encoding: 'utf8' }).trim();
    } catch {
      temporalCli = cli;
    }
  }
  return {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    totalMemoryMb: Math.round(totalmem() / 2 ** 20),
    node: process.version,
    platform: process.platform,
    kernel: release(),
    temporalCli,
  };
}

/** Clean-up steps, run last-first, once each, whether the benchmark ends, fails or is interrupted. */
class Cleanup {
  private readonly steps: (() => Promise<void>)[] = [];

  defer(step: () => Promise<void>): void {
    this.steps.push(step);
  }

  async run(): Promise<void> {
    for (let step = this.steps.pop(); step; step = this.steps.pop()) {
      try {
        await step();
      } catch (error) {
        console.error('bench: a clean-up step failed:', error);
      }
    }
  }
}

function throttled(): (line: () => string) => void {
  let last = 0;
  return (line) => {
    if (Date.now() - last < PROGRESS_EVERY_MS) return;
    last = Date.now();
    console.error(line());
  };
}

async function runPlan(
  stage: Stage,
  plan: RunPlan,
  tempDir: string,
  skipBaseline: boolean,
): Promise<RunResult> {
  const sample = sampleCsv(plan.users, { scenario: 'ok', duplicateEvery: 0, invalidEvery: 0 });
  const csvPath = join(tempDir, `${plan.label}.csv`);
  await writeFile(csvPath, sample.text, { mode: 0o600 });
  const token = randomBytes(18).toString('base64url');
  const simulatorOptions = { token, ...plan.simulator };

  console.error(`[${plan.label}] orchestrator: ${plan.users} users, window ${plan.windowSize}`);
  const forOrchestrator = await startSimulatorProcess(simulatorOptions);
  stage.defer(() => forOrchestrator.stop());
  const logOrchestrator = throttled();
  const orchestrator = await runOrchestrator(stage, {
    plan,
    csvPath,
    rows: sample.rows,
    simulator: forOrchestrator,
    token,
    onProgress: (progress, elapsedSeconds) =>
      logOrchestrator(() => `[${plan.label}] ${formatProgress(progress, elapsedSeconds * 1000)}`),
  });
  await forOrchestrator.stop();
  console.error(
    `[${plan.label}] orchestrator: ${orchestrator.wallSeconds.toFixed(1)} s, ${orchestrator.usersPerSecond.toFixed(1)} users/s`,
  );
  if (skipBaseline) return { plan, orchestrator };

  console.error(`[${plan.label}] baseline: ${plan.users} users, ${plan.windowSize} at a time`);
  const forBaseline = await startSimulatorProcess(simulatorOptions);
  stage.defer(() => forBaseline.stop());
  const logBaseline = throttled();
  const baseline = await runBaseline(
    plan,
    sample.rows.map((row) => row.user),
    forBaseline,
    token,
    (done, elapsedSeconds) =>
      logBaseline(
        () =>
          `[${plan.label}] baseline: ${done}/${plan.users} done, ${(done / elapsedSeconds).toFixed(1)} users/s`,
      ),
  );
  await forBaseline.stop();
  console.error(
    `[${plan.label}] baseline: ${baseline.wallSeconds.toFixed(1)} s, ${baseline.usersPerSecond.toFixed(1)} users/s`,
  );
  return { plan, orchestrator, baseline, wallRatio: orchestrator.wallSeconds / baseline.wallSeconds };
}

/**
 * A plan with floors: each floor shape, then the orchestrator (and the baseline), one after another,
 * each against a fresh Temporal server with the same settings and a fresh simulator, so that no side
 * inherits another's history in the server's database.
 */
async function runWithFloors(
  openStage: () => Promise<{ stage: Stage; close: () => Promise<void> }>,
  plan: RunPlan,
  tempDir: string,
  skipBaseline: boolean,
): Promise<RunResult> {
  const floors: FloorResult[] = [];
  for (const shape of plan.floors ?? []) {
    const { stage, close } = await openStage();
    try {
      const token = randomBytes(18).toString('base64url');
      // Temporal's capacity, not Graph's budget: the floor runs against Graph with no write budget.
      const simulator = await startSimulatorProcess({ token, ...plan.simulator, writeBudget: undefined });
      stage.defer(() => simulator.stop());
      console.error(`[${plan.label}] ${shape}: ${plan.users} users, window ${plan.windowSize}`);
      const floor = await runFloor(stage, { plan, shape, simulator, token });
      console.error(
        `[${plan.label}] ${shape}: ${floor.wallSeconds.toFixed(1)} s, ${floor.usersPerSecond.toFixed(1)} users/s`,
      );
      floors.push(floor);
    } finally {
      await close();
    }
  }
  const { stage, close } = await openStage();
  try {
    const run = await runPlan(stage, plan, tempDir, skipBaseline);
    return { ...run, floors, floorRatios: floors.map((floor) => floorRatio(run.orchestrator, floor)) };
  } finally {
    await close();
  }
}

async function main(argv: string[]): Promise<number> {
  const options = parseOptions(argv);
  if (!options) {
    console.log(USAGE);
    return 0;
  }
  let scenarios;
  try {
    scenarios = scenariosNamed(options.scenario);
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error), { cause: error });
  }
  const plans = scenarios
    .flatMap((scenario) => scenario.plans(options.overrides))
    .map((plan) =>
      options.workers && options.workers > 1
        ? { ...plan, workers: options.workers, label: `${plan.label} ×${options.workers} workers` }
        : plan,
    );

  const cleanup = new Cleanup();
  process.once('SIGINT', () => {
    console.error('bench: interrupted; stopping the worker, the simulator and the dev server');
    void cleanup.run().finally(() => process.exit(130));
  });
  try {
    // The dev server's own log would bury the progress lines; its warnings still show.
    Runtime.install({ logger: new DefaultLogger('WARN') });
    const tempDir = await mkdtemp(join(tmpdir(), 'bulk-reset-bench-'));
    cleanup.defer(() => rm(tempDir, { recursive: true, force: true }));
    const dataDir = join(tempDir, 'data');
    const logDir = join(tempDir, 'logs');
    await mkdir(dataDir, { mode: 0o700 });
    await mkdir(logDir);

    const startedAt = new Date();
    const store = STORES[options.store];
    let servers = 0;
    /** The dev servers running now, so that each stage measures its own. */
    const serverPids = new Set<number>();
    /**
     * A Temporal server and a client of it, as a stage for a side. Each call starts a fresh dev server
     * (its own SQLite file) with the same settings; the PostgreSQL-backed server is started once and
     * shared, as starting it is slow.
     */
    let postgres: Promise<{ address: string; cpuSeconds?: () => number }> | undefined;
    const openStage = async (): Promise<{ stage: Stage; close: () => Promise<void> }> => {
      const steps = new Cleanup();
      cleanup.defer(() => steps.run());
      servers += 1;
      let server: { address: string; cpuSeconds?: () => number };
      if (options.store === 'postgres') {
        postgres ??= (async () => {
          console.error('bench: starting the Temporal server on PostgreSQL (scripts/temporal-postgres.sh)');
          const started = await startPostgresServer();
          cleanup.defer(() => started.destroy());
          return started;
        })();
        server = await postgres;
      } else {
        console.error(`bench: starting the Temporal dev server (${store.label})`);
        const devServer = await startDevServer({
          dbFilename: store.file ? join(tempDir, `temporal-${servers}.sqlite`) : undefined,
          sqlitePragmas: store.pragmas,
        });
        steps.defer(() => devServer.stop());
        const pid = findDescendant(process.pid, ['server', 'start-dev'], serverPids);
        if (pid !== undefined) {
          serverPids.add(pid);
          steps.defer(() => {
            serverPids.delete(pid);
            return Promise.resolve();
          });
        }
        if (pid === undefined) console.error('bench: dev server process not found; its CPU is not measured');
        server = {
          address: devServer.address,
          cpuSeconds: pid === undefined ? undefined : () => cpuSeconds(pid),
        };
      }
      // The workers and this client must share the payload keys: one fresh key per invocation, given
      // inline so that no key file outlives the benchmark.
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        TEMPORAL_ADDRESS: server.address,
        TEMPORAL_NAMESPACE: 'default',
        BULK_RESET_DATA_DIR: dataDir,
        BULK_RESET_CODEC_KEYS: codecKeys,
      };
      const client = await createClient(loadSettings(env));
      steps.defer(() => client.connection.close());
      const stage: Stage = {
        client,
        env,
        serverCpuSeconds: server.cpuSeconds,
        dataDir,
        logDir,
        downloadDir: tempDir,
        defer: (step) => steps.defer(step),
      };
      return { stage, close: () => steps.run() };
    };
    const codecKeys = newCodecKeyLine();
    let shared: Stage | undefined;
    const sharedStage = async (): Promise<Stage> => (shared ??= (await openStage()).stage);

    const runs: RunResult[] = [];
    for (const plan of plans) {
      runs.push(
        plan.floors
          ? await runWithFloors(openStage, plan, tempDir, options.skipBaseline)
          : await runPlan(await sharedStage(), plan, tempDir, options.skipBaseline),
      );
    }

    const result: BenchResult = {
      scenario: options.scenario,
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      argv,
      machine: machineFacts(),
      devServer: { persistence: options.store, pragmas: store.pragmas },
      runs,
    };
    const resultsDir = join(PROJECT_ROOT, 'bench', 'results');
    await mkdir(resultsDir, { recursive: true });
    const stamp = startedAt.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
    const resultPath = join(resultsDir, `${stamp}-${options.scenario}.json`);
    await writeFile(resultPath, `${JSON.stringify(result, null, 2)}\n`);
    console.log(markdownReport(result));
    console.log(`\nresults: ${resultPath}`);
    return 0;
  } finally {
    await cleanup.run();
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    const shown =
      error instanceof UsageError
        ? error.message
        : error instanceof Error
          ? (error.stack ?? error.message)
          : String(error);
    console.error(`bench: ${shown}`);
    process.exitCode = 2;
  },
);
