/**
 * The worker: runs the bulkReset and resetUser workflows and the Graph and job-file activities on one
 * task queue. Start as many as you like, on as many hosts as share the data folder.
 */
import { Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities } from '../activities';
import { createCredential } from '../activities/credentials';
import { GraphClient } from '../activities/graphClient';
import { type Settings, connectWorker } from '../client/config';

/** A worker for these settings; `overrides` lets tests and the benchmark share one workflow bundle. */
export async function createWorker(
  settings: Settings,
  overrides: Partial<WorkerOptions> = {},
): Promise<Worker> {
  const graph = new GraphClient({
    baseUrl: settings.graphBaseUrl,
    credential: await createCredential(settings.credential),
  });
  const connection = await connectWorker(settings.temporal);
  return Worker.create({
    connection,
    namespace: settings.temporal.namespace,
    taskQueue: settings.taskQueue,
    ...(overrides.workflowBundle ? {} : { workflowsPath: require.resolve('../workflows') }),
    activities: createActivities({ graph, dataDir: settings.dataDir }),
    // Graph calls are I/O-bound: many can wait at once without using a core.
    maxConcurrentActivityTaskExecutions: 200,
    // Lets SIGTERM finish in-flight Graph calls instead of abandoning them mid-request.
    shutdownGraceTime: '30 seconds',
    ...overrides,
  });
}

/** Runs a worker until SIGINT/SIGTERM (the SDK installs those handlers and drains before exiting). */
export async function runWorker(settings: Settings): Promise<void> {
  const worker = await createWorker(settings);
  await worker.run();
}
