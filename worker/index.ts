/**
 * The worker: runs the bulkReset and resetUser workflows and the Graph and job-file activities. Start
 * as many as you like, on as many hosts as share the data folder.
 *
 * resetPassword POSTs are served from a task queue of their own (`<queue>-writes`) whose dispatch rate
 * Temporal limits for all workers together: that is how a job keeps to the tenant's write budget
 * however many workers run, instead of learning it from 429s.
 */
import { Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities } from '../activities';
import type { TokenCredential } from '@azure/identity';
import { createCredential } from '../activities/credentials';
import { GraphClient } from '../activities/graphClient';
import { type Settings, connectWorker, dataConverter } from '../client/config';
import { writeTaskQueue } from '../workflows/types';

/** The workers of one process, run and stopped together. */
export interface WorkerGroup {
  /** Resolves when every worker has stopped; rejects (after stopping the others) if one fails. */
  run(): Promise<void>;
  /** Begins a graceful stop: no new tasks, in-flight activities get the grace time to finish. */
  shutdown(): void;
  readonly workers: readonly Worker[];
}

/**
 * The workers for these settings; `overrides` lets tests and the benchmark share one workflow bundle, and
 * `credential` replaces the one the settings name (tests of a sign-in that stops working).
 */
export async function createWorker(
  settings: Settings,
  overrides: Partial<WorkerOptions> = {},
  credential?: TokenCredential,
): Promise<WorkerGroup> {
  const graph = new GraphClient({
    baseUrl: settings.graphBaseUrl,
    credential: credential ?? (await createCredential(settings.credential)),
  });
  const connection = await connectWorker(settings.temporal);
  const activities = createActivities({
    graph,
    dataDir: settings.dataDir,
    protectedUsersPath: settings.protectedUsersPath,
  });
  const common = {
    connection,
    namespace: settings.temporal.namespace,
    dataConverter: await dataConverter(settings),
    // Lets SIGTERM finish in-flight Graph calls instead of abandoning them mid-request.
    shutdownGraceTime: '30 seconds',
  } satisfies Partial<WorkerOptions>;
  const main = await Worker.create({
    ...common,
    taskQueue: settings.taskQueue,
    ...(overrides.workflowBundle ? {} : { workflowsPath: require.resolve('../workflows') }),
    activities,
    // Graph calls are I/O-bound: many can wait at once without using a core.
    maxConcurrentActivityTaskExecutions: 200,
    ...overrides,
  });
  const writes = await Worker.create({
    ...common,
    taskQueue: writeTaskQueue(settings.taskQueue),
    // Only startReset is ever scheduled on this queue.
    activities,
    maxConcurrentActivityTaskExecutions: 100,
    // Enforced by the server across every worker polling this queue (they must all use the same value).
    ...(settings.writesPerSecond > 0 && { maxTaskQueueActivitiesPerSecond: settings.writesPerSecond }),
  });
  const workers = [main, writes];
  const shutdown = () => {
    for (const worker of workers) if (worker.getState() === 'RUNNING') worker.shutdown();
  };
  return {
    workers,
    shutdown,
    async run() {
      const runs = workers.map((worker) =>
        worker.run().catch((error: unknown) => {
          shutdown();
          throw error;
        }),
      );
      const results = await Promise.allSettled(runs);
      const failed = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
      if (failed) throw failed.reason;
    },
  };
}

/** Runs the workers until SIGINT/SIGTERM (the SDK installs those handlers and drains before exiting). */
export async function runWorker(settings: Settings): Promise<void> {
  const group = await createWorker(settings);
  await group.run();
}
