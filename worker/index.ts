/**
 * The worker: runs the bulkReset and resetUser workflows and the Graph and job-file activities. Start
 * as many as you like, on as many hosts as share the data folder.
 *
 * resetPassword POSTs are served from a task queue of their own (`<queue>-writes`) whose dispatch rate
 * Temporal limits for all workers together: that is how a job keeps to the tenant's write budget
 * however many workers run, instead of learning it from 429s.
 */
import { access } from 'node:fs/promises';
import { Context } from '@temporalio/activity';
import {
  type BundleOptions,
  NativeConnection,
  Runtime,
  Worker,
  type WorkerOptions,
} from '@temporalio/worker';
import { createActivities } from '../activities';
import type { TokenCredential } from '@azure/identity';
import { createCredential, isAppOnlyConfig } from '../graph/credentials';
import { GraphClient } from '../graph/client';
import { graphMetricsObserver } from '../graph/metrics';
import {
  type Settings,
  type TemporalSettings,
  connectionFailure,
  connectionOptions,
} from '../temporal/config';
import { dataConverterFor, loadCodecKeys, workflowIdSecret } from '../temporal/codec';
import { startTracing, tracingPlugins } from '../temporal/tracing';
import { metricsAddress } from './metrics';
import { installRuntime } from './runtime';
import { writeTaskQueue } from '../workflows/types';
import { WORKFLOW_BUNDLE_ENV, bundleApart } from './bundle';

/** How long SIGTERM lets in-flight activities (Graph calls, job files) run on before they are cancelled. */
/**
 * The worker's connection to Temporal, with the same settings and error words as the CLI's client. Here,
 * not in temporal/config.ts, so that only the `worker` command loads @temporalio/worker.
 */
export function connectWorker(temporal: TemporalSettings): Promise<NativeConnection> {
  return NativeConnection.connect(connectionOptions(temporal)).catch((error: unknown) => {
    throw connectionFailure(temporal, error);
  });
}

export const SHUTDOWN_GRACE_MS = 30_000;

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
    appOnly: isAppOnlyConfig(settings.credential),
    observer: graphMetricsObserver(() => Context.current().metricMeter),
  });
  const connection = await connectWorker(settings.temporal);
  const keys = await loadCodecKeys(settings.codecKeys);
  const activities = createActivities({
    graph,
    dataDir: settings.dataDir,
    protectedUsersPath: settings.protectedUsersPath,
    userKeySecret: workflowIdSecret(keys),
    webUi: settings.webUi ? { url: settings.webUi, namespace: settings.temporal.namespace } : undefined,
  });
  const common = {
    connection,
    namespace: settings.temporal.namespace,
    // Only payloads sealed with the deployment's keys reach the workflows: anything else (a signal or an
    // update sent without the codec, a forged payload) arrives as a refusal they turn down.
    dataConverter: dataConverterFor(keys, {
      unopenable: 'refuse',
      onRefused: (why) => {
        Runtime.instance().logger.warn(`bulk-reset worker: ${why}`);
      },
    }),
    // Lets SIGTERM finish in-flight Graph calls instead of abandoning them mid-request.
    shutdownGraceTime: SHUTDOWN_GRACE_MS,
    // Traces, when OTEL_EXPORTER_OTLP_ENDPOINT asked for them (see runWorker).
    plugins: tracingPlugins(),
  } satisfies Partial<WorkerOptions>;
  const main = await Worker.create({
    ...common,
    taskQueue: settings.taskQueue,
    ...(overrides.workflowBundle ? {} : await workflowCode(settings)),
    activities,
    // Graph calls are I/O-bound: many can wait at once without using a core.
    maxConcurrentActivityTaskExecutions: 200,
    // Polls and password-change reads run as local activities inside workflow tasks: as many as the window.
    maxConcurrentLocalActivityExecutions: 200,
    ...overrides,
  });
  const writes = await Worker.create({
    ...common,
    taskQueue: writeTaskQueue(settings.taskQueue),
    // Only the password writes (startReset, setPasswordProfile) and revocations are scheduled on this queue.
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

/**
 * The workflow interceptor modules this worker's plugins add (tracing's, when traces are asked for). A
 * worker given a bundle ignores the ones named in its options, so they are bundled in.
 */
function pluginWorkflowModules(): string[] {
  const options = tracingPlugins().reduce<BundleOptions>(
    (current, plugin) => plugin.configureBundler(current),
    { workflowsPath: require.resolve('../workflows') },
  );
  return options.workflowInterceptorModules ?? [];
}

/**
 * The prebuilt bundle when settings name one (the worker image), else the sources, bundled now in a
 * process of its own (see bundleApart).
 */
async function workflowCode(settings: Settings): Promise<Pick<WorkerOptions, 'workflowBundle'>> {
  const codePath = settings.workflowBundlePath;
  if (!codePath) {
    const code = await bundleApart(Runtime.instance().logger, {
      workflowInterceptorModules: pluginWorkflowModules(),
    });
    return { workflowBundle: { code } };
  }
  await access(codePath).catch(() => {
    throw new Error(
      `${WORKFLOW_BUNDLE_ENV} names ${codePath}, which cannot be read: build it with \`node dist/worker/bundle.js ${codePath}\` or unset ${WORKFLOW_BUNDLE_ENV} to bundle at start`,
    );
  });
  return { workflowBundle: { codePath } };
}

export interface WorkerProcessOptions {
  /** `host:port` for the Prometheus endpoint (`--metrics`); else BULK_RESET_METRICS; else none. */
  metrics?: string;
}

/**
 * Runs the workers until SIGINT or SIGTERM, then drains: no new tasks are taken, activities in flight get
 * SHUTDOWN_GRACE_MS to finish, and the promise resolves once they have. A second signal during the drain
 * is not caught, so it ends the process at once.
 */
export async function runWorker(settings: Settings, options: WorkerProcessOptions = {}): Promise<void> {
  // Both before the first connection: the Runtime and the tracer provider are the process's.
  const { metricsUrl } = installRuntime({
    metricsAddress: metricsAddress(options.metrics, { BULK_RESET_METRICS: settings.metrics }),
    verboseLogs: settings.verboseLogs,
    logFormat: settings.logFormat,
  });
  // The worker's own lines: as they always were in text, through the Runtime's logger (one JSON object
  // each) when the log is JSON, so that every line of it parses.
  const say = (level: 'INFO' | 'WARN', text: string, stream: 'stdout' | 'stderr' = 'stderr'): void => {
    if (settings.logFormat === 'json') Runtime.instance().logger.log(level, `bulk-reset worker: ${text}`);
    else if (stream === 'stdout') console.log(`bulk-reset worker: ${text}`);
    else console.error(`bulk-reset worker: ${text}`);
  };
  if (metricsUrl) say('INFO', `Prometheus metrics at ${metricsUrl}`, 'stdout');
  if (settings.verboseLogs) {
    say(
      'WARN',
      'BULK_RESET_LOG_VERBOSE is set: the log shows errors in full, with user names, Graph messages and request-ids',
    );
  }
  const tracing = startTracing('bulk-reset-worker');
  if (tracing) say('INFO', `OpenTelemetry traces to ${tracing.endpoint}`, 'stdout');
  try {
    const group = await createWorker(settings);
    const drain = (signal: NodeJS.Signals): void => {
      say(
        'INFO',
        `${signal} received, draining: taking no new tasks, letting activities in flight finish (up to ${SHUTDOWN_GRACE_MS / 1000} s); send ${signal} again to stop at once`,
      );
      group.shutdown();
    };
    process.once('SIGTERM', drain);
    process.once('SIGINT', drain);
    try {
      await group.run();
    } finally {
      process.off('SIGTERM', drain);
      process.off('SIGINT', drain);
    }
    say('INFO', 'drained and stopped');
  } finally {
    await tracing?.shutdown();
  }
}
