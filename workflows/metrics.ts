/**
 * The job's metrics, emitted from workflow code through the SDK's workflow metric meter: it adds the
 * namespace, task queue and workflow type, and emits nothing while a workflow is replayed, so each
 * outcome is counted once however often its history is replayed. (A worker lost in the middle of a
 * workflow task can make its replacement emit that task's metrics again: counts are at least once.)
 *
 * Labels are low-cardinality on purpose: never the user, the job or a request-id.
 */
import { metricMeter } from '@temporalio/workflow';
import type { OutcomeStatus } from './types';

export const WORKFLOW_METRICS = {
  resets: 'bulk_reset_resets',
  ambiguousResends: 'bulk_reset_ambiguous_resends',
  waits: 'bulk_reset_wait_seconds',
} as const;

/** Rows that reached an outcome, by outcome (the report's counts, summed over jobs). */
export function countOutcomes(outcome: OutcomeStatus, rows = 1): void {
  if (rows <= 0) return;
  metricMeter
    .createCounter(WORKFLOW_METRICS.resets, undefined, 'CSV rows that reached an outcome, by outcome')
    .add(rows, { outcome });
}

/** resetPassword POSTs sent again after one that got no answer (the user may have been reset twice). */
export function countAmbiguousResends(resends: number | undefined): void {
  if (!resends) return;
  metricMeter
    .createCounter(
      WORKFLOW_METRICS.ambiguousResends,
      undefined,
      'resetPassword requests sent again after one that got no answer',
    )
    .add(resends);
}

/**
 * A durable wait a user's workflow is about to take: before sending the reset again (`resend`) or
 * before polling the operation (`poll`), as long as Graph's Retry-After asked (`retry-after`) or the
 * policy's default (`default`).
 */
export function recordWait(
  waitMs: number,
  before: 'resend' | 'poll',
  retryAfterMs: number | undefined,
): void {
  metricMeter
    .createHistogram(
      WORKFLOW_METRICS.waits,
      'float',
      's',
      'Durable waits of the user workflows, in seconds, before a resend or a poll',
    )
    .record(waitMs / 1000, { before, source: retryAfterMs === undefined ? 'default' : 'retry-after' });
}
