/**
 * What the end-to-end tests share: the dev server started by globalSetup, a Graph simulator, a real
 * worker on its own task queue and data folder, and the job files it writes.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import type { Client } from '@temporalio/client';
import type { Payload, PayloadCodec } from '@temporalio/common';
import {
  DefaultLogger,
  Runtime,
  bundleWorkflowCode,
  type WorkflowBundleWithSourceMap,
} from '@temporalio/worker';
import { type Settings, createClient, loadSettings } from '../../temporal/config';
import { PROJECT_ROOT } from '../../temporal/devServer';
import {
  type GraphSimulator,
  type SimulatorOptions,
  startGraphSimulator,
} from '../../simulator/graphSimulator';
import { type WorkerGroup, createWorker } from '../../worker';
import { workflowBundleOptions } from '../../worker/bundle';
import type { JobProgress, ResetOutcome } from '../../workflows/types';
import { jobState } from '../../client/jobs';
import { userWorkflowId } from '../../workflows/bulkReset';
import { jobPaths, preparedUserKeys } from '../../jobs/jobFiles';
import { sharedForTests } from './shared';

export function testTemporalAddress(): string {
  const address = process.env.BULK_RESET_TEST_TEMPORAL_ADDRESS;
  if (!address) throw new Error('no dev server: run the tests with `npm test` (jest globalSetup starts one)');
  return address;
}

const runFile = promisify(execFile);

// Expected failures (429s, 503s, dropped connections) are the point of these tests: log only errors.
Runtime.install({ logger: new DefaultLogger('ERROR') });

let bundle: Promise<WorkflowBundleWithSourceMap> | undefined;

/** The workflow code, bundled once per test file. */
export function workflowBundle(): Promise<WorkflowBundleWithSourceMap> {
  bundle ??= bundleWorkflowCode(workflowBundleOptions(quietLogger));
  return bundle;
}

const quietLogger = { trace() {}, debug() {}, info() {}, warn() {}, error: console.error, log() {} };

export interface Stage {
  settings: Settings;
  /** Environment for a CLI child process that targets this stage. */
  env: NodeJS.ProcessEnv;
  simulator: GraphSimulator;
  client: Client;
  dataDir: string;
  startWorker(): Promise<RunningWorker>;
  writeCsv(name: string, text: string): Promise<string>;
  close(): Promise<void>;
}

export interface RunningWorker {
  worker: WorkerGroup;
  stop(): Promise<void>;
}

export interface StageOptions {
  /** The workers' write budget (resets per second, all workers together); default 0: no limit. */
  writesPerSecond?: number;
  /** More environment for the workers and the CLI. */
  env?: Record<string, string>;
}

/** A simulator, a data folder and a task queue of this test's own, on the shared dev server. */
export async function openStage(
  simulatorOptions: Partial<SimulatorOptions> = {},
  { writesPerSecond = 0, env: extraEnv = {} }: StageOptions = {},
): Promise<Stage> {
  // A test may give its own token (an app-only one, say: graph/tokenClaims' unsignedToken); else a random one.
  const token = simulatorOptions.token ?? randomBytes(18).toString('base64url');
  const simulator = await startGraphSimulator({ retryAfterSeconds: 0.3, ...simulatorOptions, token });
  const dataDir = await mkdtemp(join(tmpdir(), 'bulk-reset-test-'));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    TEMPORAL_ADDRESS: testTemporalAddress(),
    TEMPORAL_NAMESPACE: 'default',
    BULK_RESET_DATA_DIR: dataDir,
    BULK_RESET_TASK_QUEUE: `test-${randomBytes(4).toString('hex')}`,
    GRAPH_BASE_URL: simulator.baseUrl,
    GRAPH_TOKEN: token,
    BULK_RESET_WRITES_PER_SECOND: String(writesPerSecond),
    ...extraEnv,
  };
  const settings = loadSettings(env);
  const client = await createClient(settings);
  const { connection } = client;
  const workers: RunningWorker[] = [];
  return {
    settings,
    env,
    simulator,
    client,
    dataDir,
    async startWorker() {
      const worker = await createWorker(settings, { workflowBundle: await workflowBundle() });
      const running = worker.run();
      const handle: RunningWorker = {
        worker,
        async stop() {
          worker.shutdown();
          await running;
        },
      };
      workers.push(handle);
      return handle;
    },
    async writeCsv(name, text) {
      const path = join(dataDir, name);
      await writeFile(path, text, { mode: 0o600 });
      return path;
    },
    async close() {
      await Promise.all(workers.map((running) => running.stop()));
      await connection.close();
      await simulator.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export interface SharedStageOptions extends StageOptions {
  /** Start one in-process worker when the stage opens (default true); false for tests that start their own. */
  worker?: boolean;
}

/**
 * One stage for every test of the enclosing file or describe block (see sharedForTests): opened, with a
 * worker unless told otherwise, before the first test, closed after the last.
 */
export function useStage(
  simulatorOptions: Partial<SimulatorOptions> = {},
  { worker = true, ...options }: SharedStageOptions = {},
): Stage {
  return sharedForTests(
    'stage',
    async () => {
      const stage = await openStage(simulatorOptions, options);
      if (worker) await stage.startWorker();
      return stage;
    },
    (stage) => stage.close(),
  );
}

/** The workflow id a job gave each of its users (by the user as the CSV names it), read from the job's rows. */
export async function userWorkflowIds(
  stage: Pick<Stage, 'dataDir'>,
  jobId: string,
): Promise<Map<string, string>> {
  const keys = await preparedUserKeys(jobPaths(stage.dataDir, jobId));
  return new Map(
    [...keys].map(([user, key]) => [
      user,
      userWorkflowId(jobId, { row: 0, user, idKind: 'userPrincipalName', key }),
    ]),
  );
}

/** The workflow id a job gave one user. */
export async function userWorkflowIdOf(
  stage: Pick<Stage, 'dataDir'>,
  jobId: string,
  user: string,
): Promise<string> {
  const id = (await userWorkflowIds(stage, jobId)).get(user.toLowerCase());
  if (!id) throw new Error(`job ${jobId} has no prepared row for ${user}`);
  return id;
}

/** A running job's progress; fails the test if the job is not running. */
export async function progressOf(stage: Pick<Stage, 'client'>, jobId: string): Promise<JobProgress> {
  const current = await jobState(stage.client, jobId);
  if (current.state !== 'running') throw new Error(`job ${jobId} is ${current.state}`);
  return current.progress;
}

/** The JSON report as jobs/report.ts writes it. */
export interface ReportJson {
  job: { jobId: string; csvPath: string; csvSha256: string };
  summary: { total: number; counts: Record<string, number> };
  outcomes: ResetOutcome[];
}

export async function readJson<T>(path: string): Promise<T> {
  return JSON.parse(await readFile(path, 'utf8')) as T;
}

/** Every string and every payload (decoded as UTF-8) in an object such as a workflow history. */
export function readableText(value: unknown): string {
  const parts: string[] = [];
  const visit = (current: unknown): void => {
    if (typeof current === 'string') parts.push(current);
    else if (current instanceof Uint8Array) parts.push(Buffer.from(current).toString('utf8'));
    else if (Array.isArray(current)) current.forEach(visit);
    else if (typeof current === 'object' && current !== null) Object.values(current).forEach(visit);
  };
  visit(value);
  return parts.join('\n');
}

/** Like readableText, with every payload first opened by the codec: what an operator with the key sees. */
export async function decodedText(value: unknown, codec: PayloadCodec): Promise<string> {
  const isPayload = (candidate: unknown): candidate is Payload =>
    typeof candidate === 'object' && candidate !== null && 'metadata' in candidate && 'data' in candidate;
  const parts: string[] = [];
  const visit = async (current: unknown): Promise<void> => {
    if (isPayload(current)) {
      parts.push(readableText(await codec.decode([current])));
    } else if (Array.isArray(current)) {
      for (const item of current) await visit(item);
    } else if (typeof current === 'object' && current !== null && !(current instanceof Uint8Array)) {
      for (const item of Object.values(current)) await visit(item);
    } else if (typeof current === 'string') {
      parts.push(current);
    }
  };
  await visit(value);
  return parts.join('\n');
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** `bulk-reset <args>` in its own process against the stage, as an operator runs it. */
export async function cli(stage: Stage, ...args: string[]): Promise<CliResult> {
  return runCli(stage.env, ...args);
}

/** `bulk-reset <args>` in its own process with this environment (no stage needed). */
export async function runCli(env: NodeJS.ProcessEnv, ...args: string[]): Promise<CliResult> {
  try {
    const { stdout, stderr } = await runFile(
      process.execPath,
      [join(PROJECT_ROOT, 'dist', 'client', 'cli.js'), ...args],
      { env },
    );
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: failed.code ?? -1, stdout: failed.stdout ?? '', stderr: failed.stderr ?? '' };
  }
}

/** Polls `check` until it holds, or fails naming `what`. */
export async function waitUntil(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs = 120_000,
): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting until ${what}`);
    await sleep(200);
  }
}

/** The CLI's flags for short waits, so a job a test starts with `bulk-reset start` takes seconds. */
export const FAST_CLI_WAITS = ['--min-wait', '100ms', '--default-wait', '200ms'] as const;

/** Short waits so a test job takes seconds, not minutes. */
export const FAST_POLICY = {
  minWaitMs: 100,
  defaultWaitMs: 200,
  maxWaitMs: 2_000,
  deadlineMs: 120_000,
  requestTimeoutMs: 5_000,
  // Keeps a user's worst-case history within the budget at these short waits (see worstCaseUserEvents).
  maxSignInHoldMs: 60_000,
} as const;
