/**
 * A job run under chaos, for the chaos test (small) and the soak (`npm run soak`, large): a Temporal dev
 * server of its own with its state on disk, `bulk-reset worker` processes killed with SIGKILL at seeded
 * random moments and restarted, the dev server stopped and restarted once mid-job on the same port and
 * database, and a Graph simulator injecting throttling, outages of a request, dropped connections and
 * failed operations. `auditChaos` then holds the report against what the simulator saw.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { mulberry32 } from './random';
import { parse } from 'csv-parse/sync';
import type { Client } from '@temporalio/client';
import { createClient, loadSettings } from '../temporal/config';
import { type DevServer, PROJECT_ROOT, startDevServer } from '../temporal/devServer';
import { NODE_FLAGS } from '../worker/nodeFlags';
import { checkCsv, jobState, startJob } from '../client/jobs';
import {
  type FaultRates,
  type GraphSimulator,
  type SimulatorStats,
  type UserStats,
  startGraphSimulator,
} from '../simulator/graphSimulator';
import {
  type JobProgress,
  type JobSummary,
  type OutcomeStatus,
  type ResetOutcome,
  type ResetPolicy,
  OUTCOME_STATUSES,
  emptyCounts,
} from '../workflows/types';

export interface ChaosOptions {
  users: number;
  windowSize: number;
  /** SIGKILLs of the worker, at seeded random moments of the job. */
  kills: number;
  /** Dev server stops and restarts (same port, same database file). */
  serverRestarts: number;
  faults: FaultRates;
  /** Seeds the moments of the kills and restarts, and the simulator's faults unless they carry their own. */
  seed: string;
  policy: ResetPolicy;
  retryAfterSeconds: number;
  /** How long Graph takes to apply an accepted reset. */
  operationSeconds: number;
  /**
   * Stops waiting after this long: the result then has no summary (`finished` false) and only the
   * progress and the simulator's figures so far.
   */
  timeoutMs: number;
  /** Stops the run early (an operator's Ctrl-C): it cleans up and returns unfinished. */
  signal?: AbortSignal;
  /** Where the worker logs go; a temporary folder (removed at the end) when absent. */
  workDir?: string;
  /** Progress lines, for the soak. */
  log?: (line: string) => void;
}

/** One thing done to the job on purpose, and when. */
export interface ChaosEvent {
  kind: 'worker-killed' | 'server-restarted';
  atMs: number;
  /** Users with an outcome when it happened. */
  done: number;
}

export interface ChaosResult {
  jobId: string;
  users: string[];
  /** False when timeoutMs passed first: summary, outcomes and csvReport are then empty. */
  finished: boolean;
  /** The job's progress as last seen. */
  progress?: JobProgress;
  summary?: JobSummary;
  outcomes: ResetOutcome[];
  /** The CSV report's rows, as strings. */
  csvReport: Record<string, string>[];
  simulatorStats: SimulatorStats;
  simulatorUsers: Map<string, UserStats>;
  events: ChaosEvent[];
  /** Workers that exited without being killed by us (restarted as well). */
  unexpectedWorkerExits: number;
  wallMs: number;
}

/** A small seeded generator (mulberry32), so a failing run's kill moments can be run again. */
export function seededRandom(seed: string): () => number {
  let state = 0;
  for (const char of seed) state = (Math.imul(state ^ char.charCodeAt(0), 2654435761) >>> 0) + 1;
  return mulberry32(state);
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** `bulk-reset worker` in its own process, logging to `logPath`. */
function spawnWorker(env: NodeJS.ProcessEnv, logPath: string): ChildProcess {
  const log = openSync(logPath, 'a');
  try {
    return spawn(
      process.execPath,
      [...NODE_FLAGS, join(PROJECT_ROOT, 'dist', 'client', 'cli.js'), 'worker'],
      {
        env,
        stdio: ['ignore', log, log],
      },
    );
  } finally {
    closeSync(log);
  }
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** The moments (fractions of users done) at which to act, in order. */
function schedule(options: ChaosOptions): { kind: ChaosEvent['kind']; at: number; delayMs: number }[] {
  const random = seededRandom(options.seed);
  const plan: { kind: ChaosEvent['kind']; at: number; delayMs: number }[] = [];
  for (let kill = 0; kill < options.kills; kill++) {
    plan.push({ kind: 'worker-killed', at: 0.05 + random() * 0.8, delayMs: Math.floor(random() * 1_500) });
  }
  for (let restart = 0; restart < options.serverRestarts; restart++) {
    plan.push({ kind: 'server-restarted', at: 0.25 + random() * 0.4, delayMs: Math.floor(random() * 1_500) });
  }
  return plan.sort((a, b) => a.at - b.at);
}

export async function runChaos(options: ChaosOptions): Promise<ChaosResult> {
  const log = options.log ?? (() => undefined);
  const began = Date.now();
  const ownDir = options.workDir === undefined;
  const workDir = options.workDir ?? (await mkdtemp(join(tmpdir(), 'bulk-reset-chaos-')));
  const dataDir = join(workDir, 'data');
  const dbFilename = join(workDir, 'temporal.db');
  let keepWorkDir = false;
  const port = await freePort();
  const token = randomBytes(18).toString('base64url');

  let server: DevServer | undefined = await startDevServer({ port, dbFilename, logLevel: 'never' });
  const simulator: GraphSimulator = await startGraphSimulator({
    token,
    retryAfterSeconds: options.retryAfterSeconds,
    operationSeconds: options.operationSeconds,
    faults: { seed: options.seed, ...options.faults },
  });
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    TEMPORAL_ADDRESS: server.address,
    TEMPORAL_NAMESPACE: 'default',
    BULK_RESET_DATA_DIR: dataDir,
    BULK_RESET_TASK_QUEUE: `chaos-${randomBytes(4).toString('hex')}`,
    GRAPH_BASE_URL: simulator.baseUrl,
    GRAPH_TOKEN: token,
    BULK_RESET_WRITES_PER_SECOND: '0',
    BULK_RESET_MAX_USERS: String(options.users + 1),
  };
  const settings = loadSettings(env);
  let client: Client | undefined;
  let worker: ChildProcess | undefined;
  let workerCount = 0;
  let unexpectedWorkerExits = 0;
  let stopping = false;
  const events: ChaosEvent[] = [];

  const startWorker = (): void => {
    workerCount += 1;
    const child = spawnWorker(env, join(workDir, `worker-${workerCount}.log`));
    child.once('exit', (_code, signal) => {
      if (stopping || worker !== child || signal === 'SIGKILL') return;
      // A worker that gives up on its own (e.g. the server was away too long) is replaced too.
      unexpectedWorkerExits += 1;
      log(`worker ${workerCount} exited by itself; starting another`);
      startWorker();
    });
    worker = child;
  };

  try {
    client = await createClient(settings);
    const users = Array.from(
      { length: options.users },
      (_, index) => `chaos.u${String(index + 1).padStart(6, '0')}@contoso.test`,
    );
    const csvPath = join(workDir, 'users.csv');
    await writeFile(csvPath, `userPrincipalName\n${users.join('\n')}\n`, { mode: 0o600 });
    const csv = await checkCsv(csvPath);
    startWorker();
    const jobId = await startJob(client, settings.taskQueue, csv, {
      windowSize: options.windowSize,
      policy: options.policy,
      maxUsers: options.users + 1,
    });
    log(`job ${jobId}: ${options.users} users, window ${options.windowSize}`);

    const plan = schedule(options);
    let summary: JobSummary | undefined;
    let progress: JobProgress | undefined;
    let done = 0;
    let loggedAt = Date.now();
    while (!summary) {
      const stop = options.signal?.aborted
        ? 'interrupted'
        : Date.now() - began > options.timeoutMs
          ? `gave up waiting after ${options.timeoutMs} ms`
          : undefined;
      if (stop) {
        log(`${stop} with ${done} users done; the job's last progress: ${JSON.stringify(progress)}`);
        // What is needed to tell why (the workers' logs, the dev server's database) is kept.
        keepWorkDir = true;
        log(`kept ${workDir} (worker logs, temporal.db)`);
        return {
          jobId,
          users,
          finished: false,
          progress,
          outcomes: [],
          csvReport: [],
          simulatorStats: simulator.stats(),
          simulatorUsers: new Map(),
          events,
          unexpectedWorkerExits,
          wallMs: Date.now() - began,
        };
      }
      try {
        const state = await jobState(client, jobId);
        if (state.state === 'completed') summary = state.summary;
        else if (state.state === 'failed') throw new Error(`the chaos job failed: ${state.message}`);
        else if (state.state === 'running') {
          progress = state.progress;
          done = state.progress.done;
        }
      } catch (error) {
        // The server may be restarting: ask again.
        if (error instanceof Error && error.message.startsWith('the chaos job')) throw error;
      }
      const next = plan[0];
      if (!summary && next && done >= next.at * options.users) {
        plan.shift();
        await sleep(next.delayMs);
        if (next.kind === 'worker-killed' && worker) {
          const victim = worker;
          victim.kill('SIGKILL');
          await exited(victim);
          events.push({ kind: 'worker-killed', atMs: Date.now() - began, done });
          log(`killed worker ${workerCount} with SIGKILL at ${done} users done`);
          await sleep(200 + Math.floor(next.delayMs / 3));
          startWorker();
        } else if (next.kind === 'server-restarted' && server) {
          await server.stop();
          server = undefined;
          log(`stopped the dev server at ${done} users done`);
          await sleep(1_000 + next.delayMs);
          server = await startDevServer({ port, dbFilename, logLevel: 'never' });
          events.push({ kind: 'server-restarted', atMs: Date.now() - began, done });
          log('restarted the dev server on the same port and database');
        }
        continue;
      }
      if (Date.now() - loggedAt > 30_000) {
        loggedAt = Date.now();
        log(`${done}/${options.users} users done after ${Math.round((Date.now() - began) / 1000)} s`);
      }
      await sleep(300);
    }
    log(`job finished: ${JSON.stringify(summary.counts)}`);
    const report = JSON.parse(await readFile(summary.reportJsonPath, 'utf8')) as { outcomes: ResetOutcome[] };
    const csvReport = parse<Record<string, string>>(
      (await readFile(summary.reportCsvPath, 'utf8')).replace(/^\uFEFF/, ''),
      { columns: true },
    );
    return {
      jobId,
      users,
      finished: true,
      progress,
      summary,
      outcomes: report.outcomes,
      csvReport,
      simulatorStats: simulator.stats(),
      simulatorUsers: new Map(simulator.users().map((user) => [user.user.toLowerCase(), user])),
      events,
      unexpectedWorkerExits,
      wallMs: Date.now() - began,
    };
  } finally {
    stopping = true;
    if (worker && worker.exitCode === null && worker.signalCode === null) {
      worker.kill('SIGTERM');
      const timer = setTimeout(() => worker?.kill('SIGKILL'), 20_000);
      await exited(worker);
      clearTimeout(timer);
    }
    await client?.connection.close().catch(() => undefined);
    await server?.stop().catch(() => undefined);
    await simulator.close();
    if (ownDir && !keepWorkDir) await rm(workDir, { recursive: true, force: true });
  }
}

/** What the audit found: figures for the soak's note, and every disagreement (empty when all is well). */
export interface ChaosAudit {
  users: number;
  outcomes: number;
  missingOutcomes: number;
  duplicateOutcomes: number;
  counts: Record<OutcomeStatus, number>;
  /** Resets re-sent after a request that got no answer, from the report. */
  ambiguousResends: number;
  /** Users whose lost request was confirmed by the password-change time instead of being re-sent. */
  confirmedByPasswordChange: number;
  resetsAccepted: number;
  resetsApplied: number;
  posts: number;
  earlyRequests: number;
  problems: string[];
}

/**
 * Holds the job's report against the simulator's ground truth: one outcome per row; succeeded exactly
 * for the users whose password Graph changed; failed only for users whose operations failed; no reset
 * accepted more often than once plus the re-sends the report owns up to; no early request; the job's
 * summary, its two reports and the simulator in agreement.
 */
export function auditChaos(result: ChaosResult): ChaosAudit {
  const problems: string[] = [];
  if (!result.finished || !result.summary) problems.push('the job did not finish in time');
  const summary = result.summary ?? { counts: emptyCounts(), total: 0 };
  const byUser = new Map<string, ResetOutcome[]>();
  for (const outcome of result.outcomes) {
    const key = outcome.user.toLowerCase();
    byUser.set(key, [...(byUser.get(key) ?? []), outcome]);
  }
  let missingOutcomes = 0;
  let duplicateOutcomes = 0;
  for (const user of result.users) {
    const count = byUser.get(user.toLowerCase())?.length ?? 0;
    if (count === 0) missingOutcomes += 1;
    if (count > 1) duplicateOutcomes += count - 1;
  }
  if (missingOutcomes > 0) problems.push(`${missingOutcomes} users have no outcome`);
  if (duplicateOutcomes > 0) problems.push(`${duplicateOutcomes} outcomes are duplicates`);
  if (result.outcomes.length !== result.users.length) {
    problems.push(`the report has ${result.outcomes.length} outcomes for ${result.users.length} rows`);
  }

  const counts = emptyCounts();
  let ambiguousResends = 0;
  let confirmedByPasswordChange = 0;
  let appliedSum = 0;
  let acceptedSum = 0;
  for (const outcome of result.outcomes) {
    counts[outcome.status] += 1;
    const resends = outcome.ambiguousResends ?? 0;
    ambiguousResends += resends;
    if (outcome.confirmedBy === 'passwordChange') confirmedByPasswordChange += 1;
    const seen = result.simulatorUsers.get(outcome.user.toLowerCase());
    const where = `row ${outcome.row} (${outcome.user})`;
    if (!seen) {
      problems.push(`${where}: Graph never saw the user, yet the outcome is ${outcome.status}`);
      continue;
    }
    appliedSum += seen.resetsApplied;
    acceptedSum += seen.resetsAccepted;
    if (outcome.status === 'succeeded' && seen.resetsApplied < 1) {
      problems.push(`${where}: reported succeeded but Graph never changed the password`);
    }
    if (outcome.status !== 'succeeded' && seen.resetsApplied > 0) {
      problems.push(`${where}: reported ${outcome.status} but Graph changed the password`);
    }
    if (outcome.status === 'failed' && !(outcome.graphCode === 'failed' && seen.operationsFailed > 0)) {
      problems.push(`${where}: failed (${outcome.reason}) without a failed operation at Graph`);
    }
    if (outcome.status !== 'succeeded' && outcome.status !== 'failed') {
      problems.push(`${where}: ended ${outcome.status} (${outcome.reason})`);
    }
    if (seen.resetsAccepted < 1) problems.push(`${where}: Graph accepted no reset`);
    if (seen.resetsAccepted > 1 + resends) {
      problems.push(
        `${where}: Graph accepted ${seen.resetsAccepted} resets, but the report owns up to ${resends} re-sends`,
      );
    }
    if (seen.posts > outcome.startAttempts) {
      problems.push(`${where}: Graph saw ${seen.posts} POSTs, the report ${outcome.startAttempts} attempts`);
    }
    if (seen.earlyRequests > 0) problems.push(`${where}: ${seen.earlyRequests} requests before Retry-After`);
  }

  // The CSV report says the same, re-sends included.
  const csvByRow = new Map(result.csvReport.map((line) => [Number(line.row), line]));
  for (const outcome of result.outcomes) {
    const line = csvByRow.get(outcome.row);
    if (!line || line.status !== outcome.status) {
      problems.push(
        `row ${outcome.row}: the CSV report says ${line?.status ?? 'nothing'}, the JSON ${outcome.status}`,
      );
    } else if (Number(line.ambiguousResends || 0) !== (outcome.ambiguousResends ?? 0)) {
      problems.push(`row ${outcome.row}: the CSV report does not mark its re-sends`);
    }
  }
  if (result.csvReport.length !== result.outcomes.length) {
    problems.push(`the CSV report has ${result.csvReport.length} rows, the JSON ${result.outcomes.length}`);
  }

  if (OUTCOME_STATUSES.some((status) => summary.counts[status] !== counts[status])) {
    problems.push(
      `the job's summary ${JSON.stringify(summary.counts)} differs from the report ${JSON.stringify(counts)}`,
    );
  }
  if (summary.total !== result.outcomes.length) {
    problems.push(`the job's summary counts ${summary.total} rows, the report ${result.outcomes.length}`);
  }
  const stats = result.simulatorStats;
  if (
    counts.succeeded !== [...result.simulatorUsers.values()].filter((user) => user.resetsApplied > 0).length
  ) {
    problems.push(`${counts.succeeded} succeeded, but Graph changed a different number of passwords`);
  }
  if (stats.resetsApplied !== appliedSum) problems.push('the simulator totals disagree with its users');
  if (stats.resetsAccepted !== acceptedSum)
    problems.push('the simulator accepted resets for users not in the job');
  if (stats.earlyRequests > 0) {
    const first = stats.earlyDetails
      .slice(0, 3)
      .map(
        (early) =>
          `${early.request} ${early.earlyByMs} ms early after ${early.after.status} with Retry-After ${early.after.retryAfterSeconds} s to ${early.after.request}`,
      );
    problems.push(`${stats.earlyRequests} requests came before their Retry-After: ${first.join('; ')}`);
  }

  return {
    users: result.users.length,
    outcomes: result.outcomes.length,
    missingOutcomes,
    duplicateOutcomes,
    counts,
    ambiguousResends,
    confirmedByPasswordChange,
    resetsAccepted: stats.resetsAccepted,
    resetsApplied: stats.resetsApplied,
    posts: stats.posts,
    earlyRequests: stats.earlyRequests,
    problems,
  };
}
