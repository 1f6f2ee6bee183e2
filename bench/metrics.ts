/** Numbers derived from what a side recorded. */
import type { FloorRatio, FloorResult, OrchestratorResult, ProgressSample, SimulatorCounts } from './types';
import type { SimulatorStats } from '../simulator/graphSimulator';

/** Span of the sliding window for the lowest sustained rate. */
export const RATE_SPAN_SECONDS = 10;

/** The samples from the first finished user until fewer than a window of users remained. */
export function steadyState(
  samples: readonly ProgressSample[],
  total: number,
  windowSize: number,
): ProgressSample[] {
  const first = samples.findIndex((sample) => sample.done > 0);
  if (first === -1) return [];
  const drain = samples.findIndex((sample) => sample.done > total - windowSize);
  return samples.slice(first, drain === -1 ? samples.length : drain + 1);
}

/** How full the window was in the steady state: the least and the median users in flight. */
export function windowFill(
  samples: readonly ProgressSample[],
  total: number,
  windowSize: number,
): { min: number; median: number } | undefined {
  const inFlight = steadyState(samples, total, windowSize)
    .map((sample) => sample.inFlight)
    .sort((a, b) => a - b);
  if (inFlight.length === 0) return undefined;
  return { min: inFlight[0], median: inFlight[Math.floor(inFlight.length / 2)] };
}

/**
 * The lowest users/s over any RATE_SPAN_SECONDS of the steady state: from the first finished user until
 * fewer than a window of users remained (the ramp-up and the drain are slow by construction, not by
 * any fault of the side). Null when the steady state was shorter than the span.
 */
export function lowestSustainedRate(
  samples: readonly ProgressSample[],
  total: number,
  windowSize: number,
): number | null {
  const steady = steadyState(samples, total, windowSize);
  let lowest: number | null = null;
  let end = 0;
  for (let start = 0; start < steady.length; start++) {
    while (end < steady.length && steady[end].seconds - steady[start].seconds < RATE_SPAN_SECONDS) end++;
    if (end === steady.length) break;
    const rate = (steady[end].done - steady[start].done) / (steady[end].seconds - steady[start].seconds);
    lowest = lowest === null ? rate : Math.min(lowest, rate);
  }
  return lowest;
}

export function simulatorCounts(stats: SimulatorStats): SimulatorCounts {
  return {
    posts: stats.posts,
    resetsAccepted: stats.resetsAccepted,
    polls: stats.polls,
    throttled: stats.throttled,
    earlyRequests: stats.earlyRequests,
    peakActiveUsers: stats.peakActiveUsers,
    peakConcurrentRequests: stats.peakConcurrentRequests,
  };
}

/** Seconds of CPU per 1,000 users. */
export function perThousandUsers(seconds: number | undefined, users: number): number | undefined {
  return seconds === undefined ? undefined : (seconds * 1000) / users;
}

/** This process's CPU seconds (user + system) so far. */
export function ownCpuSeconds(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
}

/** `part / whole`, or null when either is unknown or the whole is not above 0. */
function ratio(part: number | undefined, whole: number | undefined): number | null {
  if (part === undefined || whole === undefined || !Number.isFinite(part) || !(whole > 0)) return null;
  return part / whole;
}

/**
 * bulk-reset's figures divided by one floor's. Both ran the same users, so a ratio of CPU totals is the
 * ratio of CPU per user; events add the users' workflows and the job's (or the parent's) share.
 */
export function floorRatio(orchestrator: OrchestratorResult, floor: FloorResult): FloorRatio {
  return {
    shape: floor.shape,
    usersPerSecond: ratio(orchestrator.usersPerSecond, floor.usersPerSecond),
    devServerCpuPerUser: ratio(orchestrator.cpuSeconds.devServer, floor.cpuSeconds.devServer),
    workerCpuPerUser: ratio(orchestrator.cpuSeconds.worker, floor.cpuSeconds.worker),
    eventsPerUser: ratio(
      orchestrator.userHistory.average + orchestrator.parent.eventsPerUser,
      floor.userHistory.average + floor.parent.eventsPerUser,
    ),
    peakWorkerRss: ratio(orchestrator.peakWorkerRssMb, floor.peakWorkerRssMb),
  };
}
