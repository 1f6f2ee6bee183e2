/**
 * The baseline: what a script without Temporal would do. For each user, in a plain async pool as wide
 * as the orchestrator's window: POST resetPassword (on 429 or another transient failure, wait the
 * Retry-After and send again), wait the Retry-After, poll until the operation ends. Same Graph client,
 * same waits (`nextWaitMs`), same policy; no durability, no pacing.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { performance } from 'node:perf_hooks';
import { StaticTokenCredential } from '../graph/credentials';
import { GraphClient, type ResetAccepted } from '../graph/client';
import { GraphError } from '../graph/errors';
import { nextWaitMs } from '../workflows/resetUser';
import { type OutcomeStatus, type ResetPolicy, emptyCounts } from '../workflows/types';
import { lowestSustainedRate, ownCpuSeconds, simulatorCounts } from './metrics';
import { forEachPooled } from './pool';
import { cpuSeconds } from './processStats';
import type { SimulatorProcess } from './simulatorProcess';
import type { ProgressSample, RunPlan, SideResult } from './types';

const RUNNING_STATUSES = new Set(['notStarted', 'running']);

/**
 * Waits at least `ms`. A bare setTimeout counts from the event loop's cached clock, so with hundreds of
 * answers handled in one turn it fires a few ms early, and Graph would see requests before their
 * Retry-After.
 */
async function waitAtLeast(ms: number): Promise<void> {
  const until = performance.now() + ms;
  for (let left = ms; left > 0; left = until - performance.now()) await sleep(Math.ceil(left));
}

/** Resets one user; returns its outcome as the orchestrator would classify it. */
async function resetOne(graph: GraphClient, user: string, policy: ResetPolicy): Promise<OutcomeStatus> {
  const deadline = performance.now() + policy.deadlineMs;
  let accepted: ResetAccepted | undefined;
  for (let sends = 1; !accepted; sends++) {
    try {
      accepted = await graph.startPasswordReset(user);
    } catch (error) {
      if (!(error instanceof GraphError)) throw error;
      if (error.kind === 'permanent') return 'failed';
      const waitMs = nextWaitMs(error.retryAfterMs, error.retryAfterMs === undefined ? sends : 0, policy);
      if (deadline - performance.now() <= waitMs) return error.ambiguous ? 'unconfirmed' : 'failed';
      await waitAtLeast(waitMs);
    }
  }
  if (!accepted.operationUrl) return 'unconfirmed';

  let retryAfterMs = accepted.retryAfterMs;
  let answersWithoutRetryAfter = retryAfterMs === undefined ? 1 : 0;
  for (;;) {
    const remainingMs = deadline - performance.now();
    if (remainingMs <= 0) return 'unconfirmed';
    await waitAtLeast(Math.min(nextWaitMs(retryAfterMs, answersWithoutRetryAfter, policy), remainingMs));
    let status: string;
    try {
      const state = await graph.getOperation(accepted.operationUrl);
      status = state.status;
      retryAfterMs = state.retryAfterMs;
    } catch (error) {
      if (!(error instanceof GraphError)) throw error;
      if (error.kind === 'permanent') return 'unconfirmed';
      // A poll is a GET: try it again after the wait Graph asked for.
      retryAfterMs = error.retryAfterMs;
      status = 'running';
    }
    if (status === 'succeeded') return 'succeeded';
    if (status === 'failed') return 'failed';
    if (!RUNNING_STATUSES.has(status)) return 'unconfirmed';
    answersWithoutRetryAfter = retryAfterMs === undefined ? answersWithoutRetryAfter + 1 : 0;
  }
}

export async function runBaseline(
  plan: RunPlan,
  users: readonly string[],
  simulator: SimulatorProcess,
  token: string,
  onProgress: (done: number, elapsedSeconds: number) => void,
): Promise<SideResult> {
  const graph = new GraphClient({
    baseUrl: simulator.baseUrl,
    credential: new StaticTokenCredential(token),
    requestTimeoutMs: plan.policy.requestTimeoutMs,
  });
  const outcomes = emptyCounts();
  let done = 0;
  let started = 0;
  const samples: ProgressSample[] = [];
  const simulatorCpuBefore = cpuSeconds(simulator.pid);
  const ownCpuBefore = ownCpuSeconds();
  const startedMs = performance.now();
  const elapsed = () => (performance.now() - startedMs) / 1000;
  const sampler = setInterval(() => {
    samples.push({ seconds: elapsed(), done, inFlight: started - done });
    onProgress(done, elapsed());
  }, 1_000);
  try {
    await forEachPooled(users, plan.windowSize, async (user) => {
      started += 1;
      outcomes[await resetOne(graph, user, plan.policy)] += 1;
      done += 1;
    });
  } finally {
    clearInterval(sampler);
  }
  const wallSeconds = elapsed();
  samples.push({ seconds: wallSeconds, done, inFlight: 0 });
  const benchProcess = ownCpuSeconds() - ownCpuBefore;
  const simulatorCpu = cpuSeconds(simulator.pid) - simulatorCpuBefore;
  return {
    wallSeconds,
    usersPerSecond: users.length / wallSeconds,
    outcomes,
    simulator: simulatorCounts(await simulator.stats()),
    cpuSeconds: { simulator: simulatorCpu, benchProcess },
    lowestTenSecondUsersPerSecond: lowestSustainedRate(samples, users.length, plan.windowSize),
    samples,
  };
}
