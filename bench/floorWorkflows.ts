/**
 * Temporal's own floor for bulk-reset's shape: the least a user can cost with one workflow per user on
 * the same server, SDK and Graph simulator. The benchmark measures these next to a real job, so that
 * bulk-reset's throughput, CPU and events read as a ratio to what Temporal itself costs, not to a
 * plain loop that records nothing.
 *
 * Two shapes, each a parent that keeps `windowSize` children in flight (the sliding window of
 * `temporalio/samples-typescript` batch-sliding-window) and, like the job, starts nobody more once its
 * history reaches `maxHistoryEvents` (or Temporal suggests it), drains its window and continues as new:
 * - `floor-activity`: a child runs ONE activity (the resetPassword POST) and completes;
 * - `floor-shape`: the bare shape of bulk-reset's user: the POST, a durable timer for the Retry-After,
 *   a local-activity poll until the operation ends, the outcome signalled to the parent, completion.
 *   The parent counts outcomes from the signals, as the job does.
 *
 * Nothing else: no codec, no search attributes, no ledger, no write queue, no summaries. This file is
 * bench code, bundled only by the floor worker (bench/floorWorker.ts); it never runs in production.
 */
import {
  ParentClosePolicy,
  condition,
  continueAsNew,
  defineSignal,
  getExternalWorkflowHandle,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  sleep,
  startChild,
  workflowInfo,
} from '@temporalio/workflow';
import type { FloorShape } from './types';

// ---- types ----

export interface FloorParentInput {
  shape: FloorShape;
  users: number;
  windowSize: number;
  /** Events after which a run starts nobody more, drains its window and continues as new (the job's). */
  maxHistoryEvents: number;
  /** The first user this run starts (0 in the first run). */
  offset?: number;
  /** Users counted by earlier runs. */
  succeeded?: number;
  failed?: number;
}

export interface FloorParentResult {
  succeeded: number;
  failed: number;
}

export interface FloorUserInput {
  user: string;
  /** The parent to signal the outcome to (floor-shape only). */
  parentId?: string;
}

/** What the POST answered: enough for the timer and the poll. */
export interface FloorPostResult {
  operationUrl?: string;
  retryAfterMs?: number;
}

export interface FloorPollResult {
  status: string;
  retryAfterMs?: number;
}

export interface FloorActivities {
  floorPost(input: { user: string }): Promise<FloorPostResult>;
  floorPoll(input: { operationUrl: string }): Promise<FloorPollResult>;
}

// ---- messages ----

export const floorOutcomeSignal = defineSignal<[{ succeeded: boolean }]>('floorOutcome');

// ---- helpers ----

/** The same names as the benchmark's CSV (simulator/sampleUsers.ts, scenario `ok`). */
export function floorUserName(index: number): string {
  return `ok.u${String(index + 1).padStart(6, '0')}@contoso.test`;
}

const { floorPost } = proxyActivities<FloorActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '100 ms' },
});
const { floorPoll } = proxyLocalActivities<FloorActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '100 ms' },
});

const RUNNING = new Set(['notStarted', 'running']);

// ---- workflows ----

/** One user, one activity: the POST, then done. */
export async function floorActivityUser(input: FloorUserInput): Promise<boolean> {
  const accepted = await floorPost({ user: input.user });
  return accepted.operationUrl !== undefined;
}

/** One user in bulk-reset's bare shape: POST, timer, local-activity poll, outcome signal to the parent. */
export async function floorShapeUser(input: FloorUserInput): Promise<boolean> {
  const accepted = await floorPost({ user: input.user });
  let succeeded = false;
  if (accepted.operationUrl) {
    let waitMs = accepted.retryAfterMs ?? 1_000;
    for (;;) {
      await sleep(waitMs);
      const state = await floorPoll({ operationUrl: accepted.operationUrl });
      if (!RUNNING.has(state.status)) {
        succeeded = state.status === 'succeeded';
        break;
      }
      waitMs = state.retryAfterMs ?? 1_000;
    }
  }
  if (input.parentId) {
    await getExternalWorkflowHandle(input.parentId).signal(floorOutcomeSignal, { succeeded });
  }
  return succeeded;
}

/**
 * Starts `users` children, at most `windowSize` in flight; counts each outcome once (the child's result
 * for floor-activity, its signal for floor-shape) and returns the counts.
 */
export async function floorParent(input: FloorParentInput): Promise<FloorParentResult> {
  const offset = input.offset ?? 0;
  let succeeded = input.succeeded ?? 0;
  let failed = input.failed ?? 0;
  let inFlight = 0;
  const count = (ok: boolean): void => {
    if (ok) succeeded += 1;
    else failed += 1;
    inFlight -= 1;
  };
  const bySignal = input.shape === 'floor-shape';
  if (bySignal) setHandler(floorOutcomeSignal, ({ succeeded: ok }) => count(ok));
  const { workflowId } = workflowInfo();
  const due = () =>
    workflowInfo().continueAsNewSuggested || workflowInfo().historyLength >= input.maxHistoryEvents;
  const results: Promise<void>[] = [];
  let index = offset;
  for (; index < input.users; index++) {
    await condition(() => inFlight < input.windowSize);
    if (due()) break;
    inFlight += 1;
    const child = await startChild(bySignal ? floorShapeUser : floorActivityUser, {
      workflowId: `${workflowId}/${index}`,
      args: [{ user: floorUserName(index), parentId: bySignal ? workflowId : undefined }],
      parentClosePolicy: ParentClosePolicy.ABANDON,
    });
    const done = child.result();
    results.push(bySignal ? done.then(() => undefined) : done.then(count));
  }
  await Promise.all(results);
  await condition(() => inFlight === 0);
  if (index < input.users) {
    await continueAsNew<typeof floorParent>({ ...input, offset: index, succeeded, failed });
  }
  return { succeeded, failed };
}
