/**
 * A rehearsal on the simulator behaves like Graph: the Location names the host the caller used and the
 * user's object id, a user lookup returns Graph's default properties or exactly the `$select`ed ones, a
 * succeeded operation says so and names the password method, and the answers Graph's docs allow but a
 * client rarely meets (a 404 or an unknown status on a fresh operation, an HTTP-date Retry-After,
 * missing or malformed timestamps) can be had by naming a user for them. Real HTTP, as a client sees it.
 */
import { setTimeout as sleep } from 'node:timers/promises';

import { parseRetryAfter } from '../graph/retryAfter';
import { scenarioFor, type GraphSimulator, type UserStats } from '../simulator/graphSimulator';
import { freePort } from './support/ports';
import { simulatorPerTest } from './support/simulators';

const TOKEN = 'fidelity-test-token';
const PASSWORD_METHOD_ID = '28c10230-6103-485e-b985-444c60001490';
const RETRY_AFTER_SECONDS = 0.05;
/** Microsoft's own example operation writes its times with '-' between hours, minutes and seconds. */
const MALFORMED_LIKE_MICROSOFTS_EXAMPLE = /^\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}\.\d{2}Z$/;
/** Graph's default property set of `GET /users/{id}` in v1.0. */
const DEFAULT_USER_PROPERTIES = [
  'businessPhones',
  'displayName',
  'givenName',
  'id',
  'jobTitle',
  'mail',
  'mobilePhone',
  'officeLocation',
  'preferredLanguage',
  'surname',
  'userPrincipalName',
];

interface Reply {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
  /** Date.now() when the request left and when its answer was read. */
  sentAt: number;
  receivedAt: number;
}

const start = simulatorPerTest({ token: TOKEN, retryAfterSeconds: RETRY_AFTER_SECONDS });

async function call(url: string, method: 'GET' | 'POST' = 'GET'): Promise<Reply> {
  const sentAt = Date.now();
  const response = await fetch(url, {
    method,
    headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' },
    body: method === 'POST' ? '{}' : undefined,
  });
  const text = await response.text();
  return {
    status: response.status,
    headers: response.headers,
    body: (text ? JSON.parse(text) : {}) as Record<string, unknown>,
    sentAt,
    receivedAt: Date.now(),
  };
}

function postReset(base: string, user: string): Promise<Reply> {
  return call(
    `${base}/users/${encodeURIComponent(user)}/authentication/methods/${PASSWORD_METHOD_ID}/resetPassword`,
    'POST',
  );
}

function locationOf(reply: Reply): string {
  const location = reply.headers.get('location');
  if (location === null) throw new Error(`expected a Location header, got status ${reply.status}`);
  return location;
}

function userStats(simulator: GraphSimulator, user: string): UserStats {
  const stats = simulator.user(user);
  if (!stats) throw new Error(`simulator never saw ${user}`);
  return stats;
}

/** Waits what the answer's Retry-After asks (either form), or a moment when it has none. */
async function waitAsTold(reply: Reply): Promise<void> {
  await sleep((parseRetryAfter(reply.headers.get('retry-after')) ?? 0) + 5);
}

/** Polls `count` times, each after the wait the previous answer asked for: status or HTTP status, in order. */
async function pollTimes(location: string, count: number): Promise<{ seen: string[]; last: Reply }> {
  const seen: string[] = [];
  let last: Reply | undefined;
  for (let poll = 0; poll < count; poll++) {
    last = await call(location);
    seen.push(last.status === 200 ? String(last.body.status) : String(last.status));
    await waitAsTold(last);
  }
  if (!last) throw new Error('poll at least once');
  return { seen, last };
}

describe('Graph simulator: fidelity', () => {
  describe('the Location of an accepted reset', () => {
    it('names the host the caller used, as Graph names its own host', async () => {
      const simulator = await start();
      const port = new URL(simulator.baseUrl).port;

      const viaLocalhost = await postReset(`http://localhost:${port}/v1.0`, 'alice@contoso.test');
      const viaAddress = await postReset(`http://127.0.0.1:${port}/v1.0`, 'bob@contoso.test');

      expect(locationOf(viaLocalhost).startsWith(`http://localhost:${port}/v1.0/users/`)).toBe(true);
      expect(locationOf(viaAddress).startsWith(`http://127.0.0.1:${port}/v1.0/users/`)).toBe(true);
      await waitAsTold(viaLocalhost);
      expect((await call(locationOf(viaLocalhost))).body.status).toBe('succeeded');
    });

    it('names the public base URL when one is set, whatever host the caller used', async () => {
      const port = await freePort();
      await start({ port, publicBaseUrl: 'http://simulator:8080/v1.0/' });

      const accepted = await postReset(`http://localhost:${port}/v1.0`, 'alice@contoso.test');

      expect(locationOf(accepted).startsWith('http://simulator:8080/v1.0/users/')).toBe(true);
    });

    it('names the user by object id, not by the userPrincipalName the caller used', async () => {
      const simulator = await start();
      const accepted = await postReset(simulator.baseUrl, 'alice@contoso.test');
      const { id } = userStats(simulator, 'alice@contoso.test');

      const location = new URL(locationOf(accepted));

      expect(location.pathname).toMatch(
        new RegExp(`^/v1\\.0/users/${id}/authentication/operations/[0-9a-f-]{36}$`),
      );
      await waitAsTold(accepted);
      expect((await call(location.href)).status).toBe(200);
      expect(userStats(simulator, 'alice@contoso.test')).toMatchObject({ posts: 1, polls: 1, active: false });
    });
  });

  describe('the operation', () => {
    it('says a succeeded reset succeeded (ResetSuccess) and names the password method it changed', async () => {
      const simulator = await start();
      const port = new URL(simulator.baseUrl).port;
      const accepted = await postReset(`http://localhost:${port}/v1.0`, 'slow.alice@contoso.test');
      const { id } = userStats(simulator, 'slow.alice@contoso.test');

      const { seen, last } = await pollTimes(locationOf(accepted), 3);

      expect(seen).toEqual(['notStarted', 'running', 'succeeded']);
      expect(last.body).toMatchObject({
        status: 'succeeded',
        statusDetail: 'ResetSuccess',
        resourceLocation: `http://localhost:${port}/v1.0/users/${id}/authentication/methods/${PASSWORD_METHOD_ID}`,
      });
    });

    it('leaves statusDetail and resourceLocation empty while the operation is still running', async () => {
      const simulator = await start();
      const accepted = await postReset(simulator.baseUrl, 'slow.bob@contoso.test');
      await waitAsTold(accepted);

      const first = await call(locationOf(accepted));

      expect(first.body).toMatchObject({ status: 'notStarted', statusDetail: null, resourceLocation: null });
    });
  });

  describe('GET /users/{id}', () => {
    it("returns only Graph's default properties without $select: no password time, no account state", async () => {
      const simulator = await start();

      const reply = await call(`${simulator.baseUrl}/users/alice%40contoso.test`);

      expect(reply.status).toBe(200);
      const properties = Object.keys(reply.body).filter((key) => !key.startsWith('@odata.'));
      expect(properties.sort()).toEqual(DEFAULT_USER_PROPERTIES);
      expect(reply.body).toMatchObject({
        id: userStats(simulator, 'alice@contoso.test').id,
        userPrincipalName: 'alice@contoso.test',
        '@odata.context': 'https://graph.microsoft.com/v1.0/$metadata#users/$entity',
      });
    });

    it('returns exactly the $select-ed properties, those Graph leaves out by default included', async () => {
      const simulator = await start();
      const select = 'id,userPrincipalName,accountEnabled,onPremisesSyncEnabled,lastPasswordChangeDateTime';

      const reply = await call(`${simulator.baseUrl}/users/synced.carol%40contoso.test?$select=${select}`);

      expect(reply.body).toEqual({
        '@odata.context': `https://graph.microsoft.com/v1.0/$metadata#users(${select})/$entity`,
        id: userStats(simulator, 'synced.carol@contoso.test').id,
        userPrincipalName: 'synced.carol@contoso.test',
        accountEnabled: true,
        onPremisesSyncEnabled: true,
        lastPasswordChangeDateTime: '2025-01-01T08:00:00Z',
      });
    });

    it('refuses to $select a property a user does not have, with 400 and the property named', async () => {
      const simulator = await start();

      const reply = await call(`${simulator.baseUrl}/users/alice%40contoso.test?$select=id,favouriteColour`);

      expect(reply.status).toBe(400);
      expect(reply.body.error).toMatchObject({ code: 'BadRequest' });
      expect(JSON.stringify(reply.body.error)).toContain("'favouriteColour'");
    });
  });
});

describe('Graph simulator: scenarios Graph allows and a client rarely meets', () => {
  it('reads a count after the name of a counted scenario, and "all" for every poll', () => {
    expect(scenarioFor('pollmissing.u1@contoso.test', {})).toBe('pollmissing');
    expect(scenarioFor('pollmissing3.u1@contoso.test', {})).toBe('pollmissing');
    expect(scenarioFor('PollMissingAll.u1@contoso.test', {})).toBe('pollmissing');
    expect(scenarioFor('pollmissingnoretry2.u1@contoso.test', {})).toBe('pollmissingnoretry');
    expect(scenarioFor('pollunknownfail4.u1@contoso.test', {})).toBe('pollunknownfail');
    // Only counted scenarios take a count; anything else names no scenario at all.
    expect(scenarioFor('slow3.u1@contoso.test', {})).toBe('ok');
    expect(scenarioFor('pollmissing-3.u1@contoso.test', {})).toBe('ok');
    expect(scenarioFor('carol@contoso.test', { scenarios: { 'carol@contoso.test': 'pollunknown2' } })).toBe(
      'pollunknown',
    );
  });

  it('refuses an explicit scenario it cannot read, naming it', async () => {
    await expect(start({ scenarios: { 'carol@contoso.test': 'slow3' as 'slow' } })).rejects.toThrow(
      /scenarios\["carol@contoso.test"\] is "slow3"/,
    );
  });

  it('pollmissing: the first poll of a fresh operation answers 404 with Retry-After, then the operation succeeds', async () => {
    const simulator = await start();
    const user = 'pollmissing.u1@contoso.test';
    const accepted = await postReset(simulator.baseUrl, user);
    await waitAsTold(accepted);

    const missing = await call(locationOf(accepted));
    expect(missing.status).toBe(404);
    expect(missing.body.error).toMatchObject({ code: 'Request_ResourceNotFound' });
    expect(missing.headers.get('retry-after')).toBe(String(RETRY_AFTER_SECONDS));
    // Not visible yet is not the end: the user is still at work, and the 404 was a poll.
    expect(userStats(simulator, user)).toMatchObject({ polls: 1, active: true });
    await waitAsTold(missing);

    const done = await call(locationOf(accepted));
    expect(done.body.status).toBe('succeeded');
    expect(userStats(simulator, user)).toMatchObject({
      posts: 1,
      resetsAccepted: 1,
      resetsApplied: 1,
      polls: 2,
      earlyRequests: 0,
      active: false,
    });
  });

  it('pollmissing3: three 404s, each with Retry-After, then succeeded', async () => {
    const simulator = await start();
    const user = 'pollmissing3.u1@contoso.test';
    const accepted = await postReset(simulator.baseUrl, user);
    await waitAsTold(accepted);

    const { seen } = await pollTimes(locationOf(accepted), 4);

    expect(seen).toEqual(['404', '404', '404', 'succeeded']);
    expect(userStats(simulator, user)).toMatchObject({ polls: 4, earlyRequests: 0, active: false });
    expect(simulator.stats().responsesByStatus).toMatchObject({ '202': 1, '404': 3, '200': 1 });
  });

  it('pollmissingnoretry2: two 404s without Retry-After, then succeeded', async () => {
    const simulator = await start();
    const user = 'pollmissingnoretry2.u1@contoso.test';
    const accepted = await postReset(simulator.baseUrl, user);
    await waitAsTold(accepted);
    const location = locationOf(accepted);

    const first = await call(location);
    const second = await call(location);
    const third = await call(location);

    expect([first.status, second.status, third.status]).toEqual([404, 404, 200]);
    expect([first.headers.get('retry-after'), second.headers.get('retry-after')]).toEqual([null, null]);
    expect(third.body.status).toBe('succeeded');
    expect(userStats(simulator, user)).toMatchObject({ polls: 3, earlyRequests: 0 });
  });

  it('pollmissingall: every poll answers 404, yet Graph changed the password', async () => {
    const simulator = await start();
    const user = 'pollmissingall.u1@contoso.test';
    const accepted = await postReset(simulator.baseUrl, user);
    await waitAsTold(accepted);

    const { seen } = await pollTimes(locationOf(accepted), 6);

    expect(seen).toEqual(['404', '404', '404', '404', '404', '404']);
    // Its work ends, as far as the simulator can tell, at the first of the 404s that repeat for ever.
    expect(userStats(simulator, user)).toMatchObject({ polls: 6, resetsApplied: 1, active: false });
  });

  it('pollunknown2: unknownFutureValue, then a status no client knows yet, then succeeded', async () => {
    const simulator = await start();
    const user = 'pollunknown2.u1@contoso.test';
    const accepted = await postReset(simulator.baseUrl, user);
    await waitAsTold(accepted);
    const location = locationOf(accepted);

    const first = await call(location);
    expect(first.body.status).toBe('unknownFutureValue');
    expect(first.headers.get('retry-after')).toBe(String(RETRY_AFTER_SECONDS));
    expect(userStats(simulator, user).active).toBe(true);
    await waitAsTold(first);
    const { seen } = await pollTimes(location, 2);

    expect(seen[0]).not.toMatch(/^(notStarted|running|succeeded|failed|unknownFutureValue)$/);
    expect(seen[1]).toBe('succeeded');
    expect(userStats(simulator, user)).toMatchObject({ polls: 3, resetsApplied: 1, active: false });
  });

  it('pollunknownfail: unknownFutureValue, then failed with the writeback detail', async () => {
    const simulator = await start();
    const user = 'pollunknownfail.u1@contoso.test';
    const accepted = await postReset(simulator.baseUrl, user);
    await waitAsTold(accepted);

    const { seen, last } = await pollTimes(locationOf(accepted), 2);

    expect(seen).toEqual(['unknownFutureValue', 'failed']);
    expect(last.body.statusDetail).toMatch(/writeback/i);
    expect(userStats(simulator, user)).toMatchObject({
      polls: 2,
      resetsApplied: 0,
      operationsFailed: 1,
      active: false,
    });
  });

  it('httpdate: Retry-After comes as an HTTP-date on the 429, the 202 and a running poll', async () => {
    const simulator = await start();
    const user = 'httpdate.u1@contoso.test';

    const throttled = await postReset(simulator.baseUrl, user);
    await waitAsTold(throttled);
    const accepted = await postReset(simulator.baseUrl, user);
    await waitAsTold(accepted);
    const running = await call(locationOf(accepted));
    await waitAsTold(running);
    const done = await call(locationOf(accepted));

    expect([throttled.status, accepted.status, running.body.status, done.body.status]).toEqual([
      429,
      202,
      'running',
      'succeeded',
    ]);
    for (const reply of [throttled, accepted, running]) {
      const header = reply.headers.get('retry-after') ?? '';
      expect(header).toMatch(/^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/);
      // An HTTP-date counts whole seconds: the moment it names is never sooner than asked, and less
      // than a second later.
      const at = Date.parse(header);
      expect(at).toBeGreaterThanOrEqual(reply.sentAt + RETRY_AFTER_SECONDS * 1000);
      expect(at).toBeLessThanOrEqual(reply.receivedAt + RETRY_AFTER_SECONDS * 1000 + 1000);
    }
    expect(done.headers.get('retry-after')).toBeNull();
    expect(userStats(simulator, user)).toMatchObject({
      posts: 2,
      resetsAccepted: 1,
      polls: 2,
      earlyRequests: 0,
    });
  });

  it('httpdate: a request before the date is counted early, one after it is not', async () => {
    const simulator = await start();
    const user = 'httpdate.u2@contoso.test';
    const throttled = await postReset(simulator.baseUrl, user);

    const hasty = await postReset(simulator.baseUrl, user);
    expect(userStats(simulator, user).earlyRequests).toBe(1);
    const [early] = simulator.stats().earlyDetails;
    expect(early?.after.status).toBe(429);
    expect(early?.after.retryAfterSeconds).toBeGreaterThanOrEqual(RETRY_AFTER_SECONDS);
    expect(early?.after.retryAfterSeconds).toBeLessThanOrEqual(RETRY_AFTER_SECONDS + 1);

    await waitAsTold(hasty);
    await waitAsTold(throttled);
    await call(locationOf(hasty));
    expect(userStats(simulator, user).earlyRequests).toBe(1);
  });

  it('nocreated: the operation answers without createdDateTime', async () => {
    const simulator = await start();
    const accepted = await postReset(simulator.baseUrl, 'nocreated.u1@contoso.test');
    await waitAsTold(accepted);

    const first = await call(locationOf(accepted));
    await waitAsTold(first);
    const last = await call(locationOf(accepted));

    for (const reply of [first, last]) {
      expect(reply.body).not.toHaveProperty('createdDateTime');
      expect(Date.parse(String(reply.body.lastActionDateTime))).not.toBeNaN();
    }
    expect([first.body.status, last.body.status]).toEqual(['running', 'succeeded']);
  });

  it("baddates: the operation's timestamps are malformed the way Microsoft's own example is", async () => {
    const simulator = await start();
    const accepted = await postReset(simulator.baseUrl, 'baddates.u1@contoso.test');
    await waitAsTold(accepted);

    const { seen, last } = await pollTimes(locationOf(accepted), 2);

    expect(seen).toEqual(['running', 'succeeded']);
    for (const field of ['createdDateTime', 'lastActionDateTime']) {
      expect(String(last.body[field])).toMatch(MALFORMED_LIKE_MICROSOFTS_EXAMPLE);
      expect(Date.parse(String(last.body[field]))).toBeNaN();
    }
  });
});
