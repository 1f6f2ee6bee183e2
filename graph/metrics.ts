/**
 * The Graph client's metrics: every answer by call and HTTP status, the 429s, and the Retry-After
 * Graph asked for. Fed by the client's observer, so the client itself stays free of Temporal.
 *
 * Labels are low-cardinality on purpose: never the user, a request-id or an operation id.
 */
import type { MetricMeter } from '@temporalio/common';
import type { GraphObserver } from './client';

export const GRAPH_METRICS = {
  responses: 'bulk_reset_graph_responses',
  throttled: 'bulk_reset_graph_throttled',
  retryAfter: 'bulk_reset_graph_retry_after_seconds',
} as const;

/**
 * An observer for `GraphClientOptions.observer` that records into the meter `meterOf` gives at the time
 * of the call (in the worker: the running activity's, which adds the namespace, task queue and activity
 * type). A call outside an activity, where there is none, is not recorded.
 */
export function graphMetricsObserver(meterOf: () => MetricMeter): GraphObserver {
  return ({ call, status, retryAfterMs }) => {
    const meter = meterOf();
    const tags = { call, status: String(status) };
    meter
      .createCounter(
        GRAPH_METRICS.responses,
        undefined,
        'Graph answers by call and HTTP status (timeout, cancelled or network when none came)',
      )
      .add(1, tags);
    if (status === 429) {
      meter.createCounter(GRAPH_METRICS.throttled, undefined, 'Graph 429 answers by call').add(1, { call });
    }
    if (retryAfterMs !== undefined) {
      meter
        .createHistogram(
          GRAPH_METRICS.retryAfter,
          'float',
          's',
          'Retry-After Graph sent, in seconds, by call and HTTP status',
        )
        .record(retryAfterMs / 1000, tags);
    }
  };
}
