/**
 * Faults on top of the scenarios: random ones drawn per request from a seed, and the outage switch.
 * The draws are a pure function of the seed, the user and the request's rank, so a run meets the same
 * faults whatever the order in which users' requests interleave.
 */
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { type Answer, DROPPED, throttledAnswer, unavailableAnswer } from './answers';
import type { Simulation, UserState } from './state';

/**
 * Chances (0 to 1) that a Graph request meets a fault instead of its scenario. Each request of a user
 * draws from a hash of the seed, the user and the request's rank among that user's requests of its
 * kind, so a run meets the same faults whatever the order in which users' requests interleave.
 */
export interface FaultRates {
  /** 429 TooManyRequests with Retry-After. */
  throttle?: number;
  /** 503 serviceNotAvailable with Retry-After. */
  unavailable?: number;
  /**
   * The connection drops without an answer. On a resetPassword POST it drops before Graph took the
   * reset or, with chance `dropAfterApply`, after Graph accepted it: the ambiguous case.
   */
  drop?: number;
  /** Of the dropped POSTs, the share dropped after the reset was accepted. Default 0.5. */
  dropAfterApply?: number;
  /** An accepted reset's operation fails (as the `opfail` scenario) instead of succeeding. */
  opFail?: number;
  /** Any string or number; the same seed gives the same faults. Default 0. */
  seed?: string | number;
}

/** `drop` counts every dropped connection; `dropAfterApply` the POSTs among them dropped after Graph took the reset. */
export type FaultKind = 'throttle' | 'unavailable' | 'drop' | 'dropAfterApply' | 'opFail' | 'outage';

/** What one request of a user meets: the first matching band of a uniform draw in [0, 1). */
export type FaultDraw = 'throttle' | 'unavailable' | 'drop' | undefined;

/** Which kinds of request draw faults independently of each other. */
export type FaultChannel = 'post' | 'poll' | 'get' | 'revoke' | 'op' | 'dropside';

/**
 * A deterministic draw in [0, 1) for the request of `user` that is number `index` of its `channel`,
 * under `seed`: the same inputs always give the same number.
 */
export function faultDraw(seed: string | number, user: string, channel: FaultChannel, index: number): number {
  const digest = createHash('sha256').update(`${seed}|${user.toLowerCase()}|${channel}|${index}`).digest();
  return digest.readUInt32BE(0) / 2 ** 32;
}

/** The fault a draw falls on: throttle first, then unavailable, then drop; none beyond their sum. */
export function faultFor(draw: number, rates: FaultRates): FaultDraw {
  let edge = rates.throttle ?? 0;
  if (draw < edge) return 'throttle';
  edge += rates.unavailable ?? 0;
  if (draw < edge) return 'unavailable';
  edge += rates.drop ?? 0;
  if (draw < edge) return 'drop';
  return undefined;
}

/** The next draw of the user's `channel`: each channel counts its own ranks. */
export function nextDraw(sim: Simulation, user: UserState, channel: FaultChannel): number {
  const index = user.draws[channel] ?? 0;
  user.draws[channel] = index + 1;
  return faultDraw(sim.settings.faults?.seed ?? 0, user.key, channel, index);
}

/**
 * The outage or a random fault this request meets, if any, before its scenario sees it. A POST's
 * drop is only decided here; whether it falls before or after the reset is taken is the caller's.
 */
export function injectedFault(
  sim: Simulation,
  user: UserState,
  channel: FaultChannel,
): Answer | 'drop' | undefined {
  const { state, settings } = sim;
  if (state.outageUntil !== undefined) {
    if (performance.now() < state.outageUntil) {
      state.countFault('outage');
      return unavailableAnswer(settings.retryAfterSeconds);
    }
    state.outageUntil = undefined;
  }
  if (!settings.faults) return undefined;
  switch (faultFor(nextDraw(sim, user, channel), settings.faults)) {
    case 'throttle':
      state.countFault('throttle');
      return throttledAnswer(state, settings.retryAfterSeconds);
    case 'unavailable':
      state.countFault('unavailable');
      return unavailableAnswer(settings.retryAfterSeconds);
    case 'drop':
      return 'drop';
    default:
      return undefined;
  }
}

/** Like injectedFault for a request that applies nothing: a drop is simply a lost connection. */
export function readFault(sim: Simulation, user: UserState, channel: FaultChannel): Answer | undefined {
  const fault = injectedFault(sim, user, channel);
  if (fault !== 'drop') return fault;
  sim.state.countFault('drop');
  return DROPPED;
}
