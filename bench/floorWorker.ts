/**
 * The floor's worker: a process of its own, like `bulk-reset worker`, so that its CPU and peak memory
 * are read from /proc the same way. It runs bench/floorWorkflows.ts with the same activity and
 * local-activity slots as bulk-reset's main worker, the SDK's default data converter and nothing else.
 *
 *   TEMPORAL_ADDRESS=… BULK_RESET_TASK_QUEUE=… GRAPH_BASE_URL=… GRAPH_TOKEN=… node dist/bench/floorWorker.js
 *
 * It stops on SIGTERM or SIGINT (the SDK's Runtime handles both).
 */
import { NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { GraphClient } from '../graph/client';
import { StaticTokenCredential } from '../graph/credentials';
import { bundleApart } from '../worker/bundle';
import type { FloorActivities } from './floorWorkflows';

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`the floor worker needs ${name} in its environment (the benchmark sets it)`);
  return value;
}

/** The POST and the poll, over the project's Graph client: the same HTTP cost as bulk-reset's. */
export function floorActivities(graph: GraphClient): FloorActivities {
  return {
    async floorPost({ user }) {
      const accepted = await graph.startPasswordReset(user);
      return { operationUrl: accepted.operationUrl, retryAfterMs: accepted.retryAfterMs };
    },
    async floorPoll({ operationUrl }) {
      const state = await graph.getOperation(operationUrl);
      return { status: state.status, retryAfterMs: state.retryAfterMs };
    },
  };
}

async function main(): Promise<void> {
  const graph = new GraphClient({
    baseUrl: required('GRAPH_BASE_URL'),
    credential: new StaticTokenCredential(required('GRAPH_TOKEN')),
  });
  const connection = await NativeConnection.connect({ address: required('TEMPORAL_ADDRESS') });
  try {
    const worker = await Worker.create({
      connection,
      namespace: process.env.TEMPORAL_NAMESPACE ?? 'default',
      taskQueue: required('BULK_RESET_TASK_QUEUE'),
      // Bundled as bulk-reset's worker bundles its own, so that their memory compares.
      workflowBundle: {
        code: await bundleApart(Runtime.instance().logger, {
          workflowsPath: require.resolve('./floorWorkflows'),
        }),
      },
      activities: floorActivities(graph),
      // As bulk-reset's main worker (worker/index.ts): the window's Graph calls wait at once.
      maxConcurrentActivityTaskExecutions: 200,
      maxConcurrentLocalActivityExecutions: 200,
    });
    await worker.run();
  } finally {
    await connection.close();
  }
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error('floor worker:', error instanceof Error ? (error.stack ?? error.message) : error);
    process.exitCode = 1;
  });
}
