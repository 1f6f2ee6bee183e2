/**
 * The floor side: Temporal's own cost for bulk-reset's shape (bench/floorWorkflows.ts), run by its own
 * worker process against the same server settings, window and Graph simulator settings as the
 * orchestrator, and measured the same way: wall time, CPU of the server and the worker, the worker's
 * peak memory, and the history the users and the parent left.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Client } from '@temporalio/client';
import { PROJECT_ROOT } from '../temporal/devServer';
import { DEFAULT_MAX_HISTORY_EVENTS } from '../workflows/types';
import type { FloorParentInput, FloorParentResult, floorParent } from './floorWorkflows';
import { simulatorCounts } from './metrics';
import type { Stage } from './orchestrator';
import { forEachPooled } from './pool';
import { cpuSeconds, peakRssMb } from './processStats';
import type { SimulatorProcess } from './simulatorProcess';
import type { FloorResult, FloorShape, RunPlan } from './types';
import { startWorkerProcess } from './workerProcess';

/** Users' workflows whose history length is read, spread evenly over the users. */
const HISTORY_SAMPLE = 200;
const DESCRIBE_CONCURRENCY = 20;

export interface FloorInput {
  plan: RunPlan;
  shape: FloorShape;
  simulator: SimulatorProcess;
  token: string;
}

export async function runFloor(stage: Stage, input: FloorInput): Promise<FloorResult> {
  const { plan, shape, simulator } = input;
  // The floor has no codec: the SDK's default data converter, on the stage's connection.
  const client = new Client({
    connection: stage.client.connection,
    namespace: stage.client.options.namespace,
  });
  const taskQueue = `bench-${shape}-${plan.label}-${randomBytes(3).toString('hex')}`;
  const env: NodeJS.ProcessEnv = {
    ...stage.env,
    BULK_RESET_TASK_QUEUE: taskQueue,
    GRAPH_BASE_URL: simulator.baseUrl,
    GRAPH_TOKEN: input.token,
  };
  const worker = await startWorkerProcess(client, env, taskQueue, join(stage.logDir, `${taskQueue}.log`), [
    join(PROJECT_ROOT, 'dist', 'bench', 'floorWorker.js'),
  ]);
  stage.defer(() => worker.stop());
  try {
    const workerStartup = cpuSeconds(worker.pid);
    const serverBefore = stage.serverCpuSeconds?.();
    const simulatorBefore = cpuSeconds(simulator.pid);
    const startedMs = performance.now();

    const parentId = taskQueue;
    const parentInput: FloorParentInput = {
      shape,
      users: plan.users,
      windowSize: plan.windowSize,
      maxHistoryEvents: DEFAULT_MAX_HISTORY_EVENTS,
    };
    let counted: FloorParentResult;
    try {
      counted = await client.workflow.execute<typeof floorParent>('floorParent', {
        workflowId: parentId,
        taskQueue,
        args: [parentInput],
      });
    } catch (error) {
      throw new Error(`the ${shape} floor's parent ${parentId} failed\n${await worker.logTail()}`, {
        cause: error,
      });
    }
    const wallSeconds = (performance.now() - startedMs) / 1000;
    const devServer =
      stage.serverCpuSeconds === undefined ? undefined : stage.serverCpuSeconds() - (serverBefore ?? 0);
    const simulatorCpu = cpuSeconds(simulator.pid) - simulatorBefore;
    const stats = await simulator.stats();
    const workerCpu = cpuSeconds(worker.pid);
    const peakWorkerRss = peakRssMb(worker.pid);

    const userHistory = await childHistoryLengths(client, parentId, plan.users);
    const parentEvents = await parentHistoryLengths(client, parentId);
    return {
      shape,
      wallSeconds,
      usersPerSecond: plan.users / wallSeconds,
      succeeded: counted.succeeded,
      failed: counted.failed,
      simulator: simulatorCounts(stats),
      cpuSeconds: { simulator: simulatorCpu, worker: workerCpu - workerStartup, workerStartup, devServer },
      peakWorkerRssMb: peakWorkerRss,
      userHistory: {
        sampled: userHistory.length,
        average: userHistory.reduce((sum, length) => sum + length, 0) / Math.max(userHistory.length, 1),
      },
      parent: {
        runs: parentEvents.length,
        eventsPerUser: parentEvents.reduce((sum, length) => sum + length, 0) / plan.users,
      },
    };
  } finally {
    await worker.stop();
  }
}

/** History lengths of up to HISTORY_SAMPLE users' workflows (ids `${parentId}/${index}`). */
async function childHistoryLengths(client: Client, parentId: string, users: number): Promise<number[]> {
  const count = Math.min(HISTORY_SAMPLE, users);
  const picked = Array.from({ length: count }, (_, index) => Math.floor((index * users) / count));
  const lengths: number[] = [];
  await forEachPooled(picked, DESCRIBE_CONCURRENCY, async (index) => {
    lengths.push((await client.workflow.getHandle(`${parentId}/${index}`).describe()).historyLength);
  });
  return lengths;
}

/**
 * The history lengths of the parent's runs, newest first: each run's first event names the run it
 * continued from, so the chain is walked back from the last run to the first (exact, with no wait for
 * visibility to catch up).
 */
export async function parentHistoryLengths(client: Client, parentId: string): Promise<number[]> {
  const lengths: number[] = [];
  let runId: string | undefined = (await client.workflow.getHandle(parentId).describe()).runId;
  while (runId) {
    const { events } = await client.workflow.getHandle(parentId, runId).fetchHistory();
    lengths.push(events?.length ?? 0);
    runId = events?.[0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId || undefined;
  }
  return lengths;
}
