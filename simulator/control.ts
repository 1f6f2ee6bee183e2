/**
 * The control endpoints under `/_sim/`, for a simulator running in another process (`bulk-reset
 * simulate`, the benchmarks): its stats, zeroing the counters, revoking and restoring the token, and
 * an outage. They need the token like Graph's endpoints, and are never counted as traffic.
 */
import type { IncomingMessage } from 'node:http';
import { type Answer, badRequestAnswer } from './answers';
import type { SimulatorState } from './state';

/** The answer of a `/_sim/...` request, or undefined when it names no control endpoint. */
export function controlAnswer(
  state: SimulatorState,
  req: IncomingMessage,
  url: URL,
  segments: string[],
): Answer | undefined {
  const route = segments.slice(1).join('/').toLowerCase();
  if (route === 'outage') {
    if (req.method === 'DELETE') {
      state.endOutage();
      return { status: 204 };
    }
    if (req.method === 'POST') {
      const seconds = url.searchParams.get('seconds');
      const value = seconds === null ? undefined : Number(seconds);
      if (value !== undefined && !(Number.isFinite(value) && value > 0)) {
        return badRequestAnswer('seconds must be a positive number', 'badRequest');
      }
      state.startOutage(value);
      return { status: 204 };
    }
  }
  if (req.method === 'GET' && route === 'stats') {
    return { status: 200, body: { ...state.snapshot(), userStats: state.allUserStats() } };
  }
  if (req.method === 'POST' && route === 'reset-counters') {
    state.resetCounters();
    return { status: 204 };
  }
  if (req.method === 'POST' && (route === 'revoke-token' || route === 'restore-token')) {
    state.tokenRevoked = route === 'revoke-token';
    return { status: 204 };
  }
  return undefined;
}
