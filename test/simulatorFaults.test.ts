/**
 * The simulator's fault injection and outage switch: seeded draws that do not depend on request order,
 * rates that hold over many draws, drops before and after Graph takes a reset, and the ground truth
 * (applied resets) the chaos test relies on.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { type FaultRates, faultDraw, faultFor, type GraphSimulator } from '../simulator/graphSimulator';
import { simulatorPerTest } from './support/simulators';

const TOKEN = 'fault-test-token';
const PASSWORD_METHOD_ID = '28c10230-6103-485e-b985-444c60001490';

const start = simulatorPerTest({ token: TOKEN, retryAfterSeconds: 0.05 });

/** The HTTP status, or 'dropped' when the connection was cut without an answer. */
async function send(url: string, method: 'GET' | 'POST' | 'DELETE' = 'GET'): Promise<number | 'dropped'> {
  try {
    const response = await fetch(url, {
      method,
      headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' },
      body: method === 'POST' ? '{}' : undefined,
    });
    await response.text();
    return response.status;
  } catch {
    return 'dropped';
  }
}

function resetUrl(simulator: GraphSimulator, user: string): string {
  return `${simulator.baseUrl}/users/${encodeURIComponent(user)}/authentication/methods/${PASSWORD_METHOD_ID}/resetPassword`;
}

describe('fault draws', () => {
  it('are the same for the same seed, user, channel and rank, and differ when any of them changes', () => {
    const base = faultDraw(7, 'a@contoso.test', 'post', 3);
    expect(faultDraw(7, 'A@Contoso.test', 'post', 3)).toBe(base);
    expect(faultDraw(8, 'a@contoso.test', 'post', 3)).not.toBe(base);
    expect(faultDraw(7, 'b@contoso.test', 'post', 3)).not.toBe(base);
    expect(faultDraw(7, 'a@contoso.test', 'poll', 3)).not.toBe(base);
    expect(faultDraw(7, 'a@contoso.test', 'post', 4)).not.toBe(base);
    expect(base).toBeGreaterThanOrEqual(0);
    expect(base).toBeLessThan(1);
  });

  it('fall into throttle, unavailable and drop bands at the configured rates', () => {
    const rates: FaultRates = { throttle: 0.1, unavailable: 0.05, drop: 0.02 };
    const seen = { throttle: 0, unavailable: 0, drop: 0, none: 0 };
    const draws = 40_000;
    for (let index = 0; index < draws; index++) {
      const fault = faultFor(faultDraw('rates', `u${index % 400}@contoso.test`, 'post', index), rates);
      seen[fault ?? 'none'] += 1;
    }
    // Four standard deviations of a binomial: fails only if the draws are not uniform.
    for (const [kind, rate] of [
      ['throttle', 0.1],
      ['unavailable', 0.05],
      ['drop', 0.02],
    ] as const) {
      const sd = Math.sqrt(draws * rate * (1 - rate));
      expect(Math.abs(seen[kind] - draws * rate)).toBeLessThan(4 * sd);
    }
    expect(faultFor(0.5, {})).toBeUndefined();
    expect(faultFor(0.099, rates)).toBe('throttle');
    expect(faultFor(0.1, rates)).toBe('unavailable');
    expect(faultFor(0.16, rates)).toBe('drop');
    expect(faultFor(0.17, rates)).toBeUndefined();
  });

  it('refuses rates outside 0..1 or adding up to more than 1', async () => {
    await expect(start({ faults: { throttle: 1.5 } })).rejects.toThrow(/faults.throttle/);
    await expect(start({ faults: { throttle: 0.6, unavailable: 0.6 } })).rejects.toThrow(/must not exceed 1/);
  });
});

describe('simulator with faults', () => {
  /** Each user's answers to `posts` POSTs, users taken in the given order. */
  async function answers(simulator: GraphSimulator, users: string[], posts: number) {
    const result = new Map<string, (number | 'dropped')[]>();
    for (const user of users) result.set(user, []);
    for (let round = 0; round < posts; round++) {
      for (const user of users) result.get(user)?.push(await send(resetUrl(simulator, user), 'POST'));
    }
    return result;
  }

  it('gives each user the same faults whatever order the requests arrive in', async () => {
    const faults: FaultRates = { throttle: 0.2, unavailable: 0.1, drop: 0.1, seed: 42 };
    const users = Array.from({ length: 12 }, (_, index) => `u${index}@contoso.test`);
    const first = await answers(await start({ faults }), users, 6);
    const second = await answers(await start({ faults }), [...users].reverse(), 6);
    expect(second).toEqual(first);
    const all = [...first.values()].flat();
    expect(all).toContain(429);
    expect(all).toContain(202);
  });

  it('counts faults by kind and tells drops after Graph took the reset from drops before', async () => {
    const simulator = await start({ faults: { drop: 1, dropAfterApply: 0.5, seed: 'drops' } });
    const users = Array.from({ length: 40 }, (_, index) => `d${index}@contoso.test`);
    for (const user of users) expect(await send(resetUrl(simulator, user), 'POST')).toBe('dropped');
    const stats = simulator.stats();
    expect(stats.faults.drop).toBe(40);
    expect(stats.faults.dropAfterApply).toBeGreaterThan(5);
    expect(stats.faults.dropAfterApply).toBeLessThan(35);
    // Ground truth: exactly the drops after acceptance took effect (operationSeconds 0: at once).
    expect(stats.resetsAccepted).toBe(stats.faults.dropAfterApply);
    expect(stats.resetsApplied).toBe(stats.faults.dropAfterApply);
    for (const user of users) {
      const seen = simulator.user(user);
      expect(seen?.resetsApplied).toBe(seen?.resetsAccepted);
    }
  });

  it('applies a reset when its operation completes, polled or not, and never for a failed operation', async () => {
    const simulator = await start({ operationSeconds: 1, faults: { opFail: 0.5, seed: 1 } });
    const users = Array.from({ length: 20 }, (_, index) => `p${index}@contoso.test`);
    for (const user of users) {
      expect(await send(resetUrl(simulator, user), 'POST')).toBe(202);
      // Read in the same process right after the answer: the operation's second has not passed.
      expect(simulator.user(user)?.resetsApplied).toBe(0);
    }
    await sleep(1_100);
    const stats = simulator.stats();
    expect(stats.faults.opFail).toBeGreaterThan(0);
    expect(stats.resetsApplied).toBe(20 - stats.faults.opFail);
    const failed = users.filter((user) => simulator.user(user)?.operationsFailed === 1);
    expect(failed).toHaveLength(stats.faults.opFail);
    for (const user of failed) expect(simulator.user(user)?.resetsApplied).toBe(0);
  });

  it('sends Retry-After with every injected 429 and 503', async () => {
    const simulator = await start({ faults: { throttle: 0.5, unavailable: 0.5, seed: 3 } });
    for (let index = 0; index < 10; index++) {
      const response = await fetch(`${simulator.baseUrl}/users/r${index}@contoso.test`, {
        headers: { Authorization: `Bearer ${TOKEN}` },
      });
      await response.text();
      expect([429, 503]).toContain(response.status);
      expect(response.headers.get('retry-after')).toBe('0.05');
    }
    const { faults } = simulator.stats();
    expect(faults.throttle + faults.unavailable).toBe(10);
  });
});

describe('outage switch', () => {
  it('answers every Graph call 503 with Retry-After until turned off, while accepted operations carry on', async () => {
    const simulator = await start({ operationSeconds: 0.1 });
    expect(await send(resetUrl(simulator, 'before@contoso.test'), 'POST')).toBe(202);
    simulator.startOutage();
    expect(simulator.outageActive()).toBe(true);
    expect(await send(resetUrl(simulator, 'during@contoso.test'), 'POST')).toBe(503);
    expect(await send(`${simulator.baseUrl}/users/during@contoso.test`)).toBe(503);
    await sleep(200);
    expect(simulator.user('before@contoso.test')?.resetsApplied).toBe(1);
    simulator.endOutage();
    expect(await send(resetUrl(simulator, 'during@contoso.test'), 'POST')).toBe(202);
    const stats = simulator.stats();
    expect(stats.faults.outage).toBe(2);
    expect(simulator.user('during@contoso.test')?.resetsAccepted).toBe(1);
  });

  it('ends by itself after the given seconds, and can be driven over HTTP', async () => {
    const simulator = await start();
    const control = `${simulator.baseUrl.replace(/\/v1\.0$/, '')}/_sim/outage`;
    expect(await send(`${control}?seconds=1`, 'POST')).toBe(204);
    expect(await send(`${simulator.baseUrl}/users/x@contoso.test`)).toBe(503);
    await sleep(1_100);
    expect(await send(`${simulator.baseUrl}/users/x@contoso.test`)).toBe(200);
    expect(await send(control, 'POST')).toBe(204);
    expect(await send(`${simulator.baseUrl}/users/x@contoso.test`)).toBe(503);
    expect(await send(control, 'DELETE')).toBe(204);
    expect(await send(`${simulator.baseUrl}/users/x@contoso.test`)).toBe(200);
    expect(await send(`${control}?seconds=-1`, 'POST')).toBe(400);
  });
});
