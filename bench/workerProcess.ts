/**
 * `bulk-reset worker` as an operator runs it: a separate process, configured by environment variables,
 * so its CPU time and peak memory can be read from /proc.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Client } from '@temporalio/client';
import { PROJECT_ROOT } from '../temporal/devServer';
import { NODE_FLAGS } from '../worker/nodeFlags';

/** Longest a worker may take to load, bundle its workflows and start polling. */
const READY_TIMEOUT_MS = 120_000;
/** The worker's own grace time is 30 s; after this it is killed. */
const STOP_TIMEOUT_MS = 45_000;

export interface WorkerProcess {
  readonly pid: number;
  /** Stops it with SIGTERM (SIGKILL if it does not end in time); safe to call twice. */
  stop(): Promise<void>;
  /** The end of its log, to explain a failure. */
  logTail(lines?: number): Promise<string>;
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/**
 * Starts a worker and resolves once it polls `taskQueue`: what is measured after that is the job,
 * not the worker's start-up. `args` are Node's: `bulk-reset worker` unless the floor's worker is asked for.
 */
export async function startWorkerProcess(
  client: Client,
  env: NodeJS.ProcessEnv,
  taskQueue: string,
  logPath: string,
  args: readonly string[] = [join(PROJECT_ROOT, 'dist', 'client', 'cli.js'), 'worker'],
): Promise<WorkerProcess> {
  const log = openSync(logPath, 'a');
  let child: ChildProcess;
  try {
    // With bulk-reset's Node flags whichever worker it is, so that the floor's and bulk-reset's compare.
    child = spawn(process.execPath, [...NODE_FLAGS, ...args], {
      env,
      stdio: ['ignore', log, log],
    });
  } finally {
    closeSync(log);
  }
  let stopping: Promise<void> | undefined;
  const worker: WorkerProcess = {
    pid: child.pid as number,
    stop: () => {
      stopping ??= (async () => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
        await exited(child);
        clearTimeout(timer);
      })();
      return stopping;
    },
    logTail: async (lines = 40) => {
      const text = await readFile(logPath, 'utf8').catch(() => '');
      return text.split('\n').slice(-lines).join('\n');
    },
  };

  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`the worker exited before it polled ${taskQueue}:\n${await worker.logTail()}`);
    }
    // The main and the write worker start polling together (WorkerGroup.run), so one is enough.
    const { pollers } = await client.workflowService.describeTaskQueue({
      namespace: client.options.namespace,
      taskQueue: { name: taskQueue },
    });
    if ((pollers?.length ?? 0) > 0) return worker;
    if (Date.now() > deadline) {
      await worker.stop();
      throw new Error(`the worker did not poll ${taskQueue} within ${READY_TIMEOUT_MS / 1000} s`);
    }
    await sleep(200);
  }
}
