/**
 * The worker process's Temporal Runtime: a process-wide singleton, installed once, before the first
 * connection. It holds the logger every record of the SDK's TypeScript side and of the workflows goes
 * through (worker/logging.ts: errors summarised unless BULK_RESET_LOG_VERBOSE asks otherwise) and, when
 * asked, the Prometheus endpoint (worker/metrics.ts). The Rust core prints its own warnings as before:
 * it never holds a failure's text, which the failure converter seals into a payload first.
 */
import { type LogLevel, Runtime } from '@temporalio/worker';
import { type LogFormat, runtimeLogger } from './logging';
import { prometheusTelemetry } from './metrics';

export interface RuntimeChoice {
  /** Records at this level and above are printed; default INFO. */
  logLevel?: LogLevel;
  /** Print the SDK's records as they are, errors and stack traces included. */
  verboseLogs?: boolean;
  /** Text lines, or one JSON object per line (BULK_RESET_LOG_FORMAT). */
  logFormat?: LogFormat;
  /** `host:port` for the Prometheus endpoint; none when undefined. */
  metricsAddress?: string;
}

/** Installs the Runtime; returns the URL to scrape when there is a metrics endpoint. */
export function installRuntime({
  logLevel = 'INFO',
  verboseLogs = false,
  logFormat = 'text',
  metricsAddress,
}: RuntimeChoice): {
  metricsUrl?: string;
} {
  try {
    Runtime.install({
      logger: runtimeLogger(logLevel, { verbose: verboseLogs, format: logFormat }),
      ...(metricsAddress && { telemetryOptions: { metrics: prometheusTelemetry(metricsAddress) } }),
    });
  } catch (error) {
    if (!metricsAddress) throw error;
    // No `cause`: the CLI prints the innermost cause, and this message (which has it) says what to do.
    // eslint-disable-next-line preserve-caught-error
    throw new Error(
      `the metrics endpoint ${metricsAddress} could not be opened (${error instanceof Error ? error.message : String(error)}); choose another --metrics address or free the port`,
    );
  }
  return metricsAddress ? { metricsUrl: `http://${metricsAddress}/metrics` } : {};
}
