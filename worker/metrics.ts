/**
 * Prometheus metrics of a worker process: the Temporal SDK's own (`temporal_…`: workflow and activity
 * completions, latencies, task slots, polls) and bulk-reset's (`bulk_reset_…`: outcomes, Graph answers,
 * 429s, Retry-After waits, ambiguous resends), all from the SDK's metric meter on one endpoint.
 *
 * Opt-in: `BULK_RESET_METRICS=host:port` or `bulk-reset worker --metrics host:port`. The endpoint is the
 * process's: the Temporal Runtime that serves it is a process-wide singleton, installed before the
 * first connection (worker/runtime.ts).
 */
import type { TelemetryOptions } from '@temporalio/worker';
import { GRAPH_METRICS } from '../graph/metrics';
import { WORKFLOW_METRICS } from '../workflows/metrics';

/** Seconds: from a short Retry-After to the longest wait a policy allows. */
const WAIT_BUCKETS = [0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300];

/**
 * `host:port` to listen on, from `--metrics` or `BULK_RESET_METRICS`; a bare port listens on every
 * interface. Undefined when metrics are off.
 */
export function metricsAddress(
  flag: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  const value = (flag ?? env.BULK_RESET_METRICS ?? '').trim();
  if (value === '') return undefined;
  const address = /^\d+$/.test(value) ? `0.0.0.0:${value}` : value;
  const match = /^(\[[0-9a-fA-F:.]+\]|[^:\s]+):(\d{1,5})$/.exec(address);
  if (!match || Number(match[2]) > 65_535) {
    throw new Error(
      `the metrics address must be host:port (like 0.0.0.0:9464) or a port, got "${value}" (--metrics or BULK_RESET_METRICS)`,
    );
  }
  return address;
}

/** The Runtime's telemetry options for a Prometheus endpoint on `address` (`/metrics`). */
export function prometheusTelemetry(address: string): NonNullable<TelemetryOptions['metrics']> {
  return {
    prometheus: {
      bindAddress: address,
      // Prometheus conventions: counters end in _total, durations are in seconds.
      countersTotalSuffix: true,
      useSecondsForDurations: true,
      histogramBucketOverrides: {
        [WORKFLOW_METRICS.waits]: WAIT_BUCKETS,
        [GRAPH_METRICS.retryAfter]: WAIT_BUCKETS,
      },
    },
  };
}
