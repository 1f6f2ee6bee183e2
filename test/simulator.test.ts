import { setTimeout as sleep } from 'node:timers/promises';

import {
  SCENARIOS,
  scenarioFor,
  type GraphSimulator,
  type ScenarioName,
  type SimulatorStats,
  type UserStats,
} from '../simulator/graphSimulator';
import { simulatorPerTest } from './support/simulators';

const TOKEN = 'simulator-test-token';
const PASSWORD_METHOD_ID = '28c10230-6103-485e-b985-444c60001490';

interface GraphErrorBody {
  error: { code: string; message: string; innerError: Record<string, string> };
}

interface OperationBody {
  id: string;
  createdDateTime: string;
  lastActionDateTime: string;
  status: string;
  statusDetail: string | null;
  resourceLocation: string | null;
}

interface Reply<T> {
  status: number;
  headers: Headers;
  text: string;
  body: T;
}

interface CallOptions {
  method?: 'GET' | 'POST';
  body?: unknown;
  token?: string | null;
  headers?: Record<string, string>;
}

const start = simulatorPerTest({ token: TOKEN, retryAfterSeconds: 0.05 });

async function call<T = GraphErrorBody>(url: string, options: CallOptions = {}): Promise<Reply<T>> {
  const headers: Record<string, string> = { ...options.headers };
  const token = options.token === undefined ? TOKEN : options.token;
  if (token !== null) headers.Authorization = `Bearer ${token}`;
  let body: string | undefined;
  if (options.body !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(options.body);
  }
  const response = await fetch(url, { method: options.method ?? 'GET', headers, body });
  const text = await response.text();
  return {
    status: response.status,
    headers: response.headers,
    text,
    body: (text ? JSON.parse(text) : {}) as T,
  };
}

function resetUrl(simulator: GraphSimulator, user: string, methodId = PASSWORD_METHOD_ID): string {
  return `${simulator.baseUrl}/users/${encodeURIComponent(user)}/authentication/methods/${methodId}/resetPassword`;
}

function postReset(
  simulator: GraphSimulator,
  user: string,
  body: unknown = {},
): Promise<Reply<Record<string, unknown>>> {
  return call<Record<string, unknown>>(resetUrl(simulator, user), { method: 'POST', body });
}

function poll(location: string): Promise<Reply<OperationBody>> {
  return call<OperationBody>(location);
}

function locationOf(reply: Reply<unknown>): string {
  const location = reply.headers.get('location');
  if (location === null) throw new Error(`expected a Location header, got status ${reply.status}`);
  return location;
}

/** Polls the operation until a terminal status, waiting each Retry-After it is given. */
async function pollToEnd(location: string): Promise<string[]> {
  const statuses: string[] = [];
  for (let attempt = 0; attempt < 10; attempt++) {
    const reply = await poll(location);
    statuses.push(reply.status === 200 ? reply.body.status : String(reply.status));
    const retryAfter = reply.headers.get('retry-after');
    if (reply.status === 200 && retryAfter === null) return statuses;
    await sleep(Number(retryAfter ?? '0') * 1000 + 5);
  }
  throw new Error(`operation did not finish: ${statuses.join(', ')}`);
}

function userStats(simulator: GraphSimulator, user: string): UserStats {
  const stats = simulator.user(user);
  if (!stats) throw new Error(`simulator never saw ${user}`);
  return stats;
}

function expectGraphError(
  reply: Reply<GraphErrorBody>,
  status: number,
  code: string,
  message?: string,
): void {
  expect(reply.status).toBe(status);
  expect(reply.body.error.code).toBe(code);
  if (message !== undefined) expect(reply.body.error.message).toBe(message);
  expect(reply.body.error.innerError['request-id']).toBe(reply.headers.get('request-id'));
  expect(Date.parse(reply.body.error.innerError.date)).not.toBeNaN();
}

describe('Graph simulator', () => {
  describe('authentication and error shape', () => {
    it('refuses requests without the bearer token with a Graph-shaped 401', async () => {
      const simulator = await start();
      const missing = await call(resetUrl(simulator, 'alice@contoso.test'), {
        method: 'POST',
        body: {},
        token: null,
      });
      const wrong = await call(resetUrl(simulator, 'alice@contoso.test'), {
        method: 'POST',
        body: {},
        token: 'nope',
      });

      expectGraphError(missing, 401, 'InvalidAuthenticationToken');
      expectGraphError(wrong, 401, 'InvalidAuthenticationToken');
      expect(simulator.stats()).toMatchObject({ requests: 2, unauthorized: 2, posts: 0, users: 0 });
      expect(simulator.stats().responsesByStatus).toEqual({ '401': 2 });
    });

    it('answers unknown routes with a Graph error and a request-id header that matches its body', async () => {
      const simulator = await start();
      const reply = await call(`${simulator.baseUrl}/me/drive`, {
        headers: { 'client-request-id': 'trace-42' },
      });

      expectGraphError(reply, 404, 'Request_ResourceNotFound');
      expect(reply.body.error.innerError['client-request-id']).toBe('trace-42');
      expect(reply.headers.get('request-id')).toMatch(/^[0-9a-f-]{36}$/);
    });

    it('puts a request-id header on successful answers too', async () => {
      const simulator = await start();
      const reply = await postReset(simulator, 'alice@contoso.test');

      expect(reply.status).toBe(202);
      expect(reply.headers.get('request-id')).toMatch(/^[0-9a-f-]{36}$/);
    });

    it('rejects a resetPassword on any method id but the password method', async () => {
      const simulator = await start();
      const reply = await call(
        resetUrl(simulator, 'alice@contoso.test', '00000000-0000-0000-0000-000000000000'),
        {
          method: 'POST',
          body: {},
        },
      );

      expectGraphError(reply, 400, 'badRequest', 'The method is not supported for this URL.');
      expect(userStats(simulator, 'alice@contoso.test').resetsAccepted).toBe(0);
    });
  });

  describe('reset and poll', () => {
    it('answers 202 with a Location that must be followed verbatim', async () => {
      const simulator = await start();
      const accepted = await postReset(simulator, 'alice@contoso.test');
      const location = locationOf(accepted);

      expect(accepted.status).toBe(202);
      const { id } = userStats(simulator, 'alice@contoso.test');
      expect(location.startsWith(`${simulator.baseUrl}/users/${id}/authentication/operations/`)).toBe(true);
      expect(new URL(location).searchParams.get('aadgdc')).toBe('SIM01');
      expect(accepted.headers.get('retry-after')).toBe('0.05');

      await sleep(60);
      const done = await poll(location);
      expect(done.status).toBe(200);
      expect(done.body).toMatchObject({ status: 'succeeded', statusDetail: 'ResetSuccess' });
      expect(Date.parse(done.body.createdDateTime)).not.toBeNaN();
      expect(userStats(simulator, 'alice@contoso.test')).toMatchObject({
        posts: 1,
        resetsAccepted: 1,
        polls: 1,
        earlyRequests: 0,
        active: false,
      });
    });

    it('does not find the operation when the Location query string is dropped', async () => {
      const simulator = await start();
      const location = locationOf(await postReset(simulator, 'alice@contoso.test'));
      await sleep(60);

      const rebuilt = await call(location.split('?')[0]);

      expectGraphError(rebuilt, 404, 'Request_ResourceNotFound');
    });

    it('does not find an operation id it never issued', async () => {
      const simulator = await start();
      const reply = await call(
        `${simulator.baseUrl}/users/alice%40contoso.test/authentication/operations/not-an-operation?aadgdc=SIM01`,
      );

      expectGraphError(reply, 404, 'Request_ResourceNotFound');
    });

    it('returns a generated password only when the caller supplied none, and never exposes it in stats', async () => {
      const simulator = await start();
      const generated = await postReset(simulator, 'alice@contoso.test');
      const supplied = await postReset(simulator, 'bob@contoso.test', {
        newPassword: 'Caller-Chosen-Secret-1',
      });

      const password = generated.body.newPassword;
      expect(typeof password).toBe('string');
      expect((password as string).length).toBeGreaterThanOrEqual(16);
      expect(generated.body['@odata.context']).toContain('passwordResetResponse');
      expect(supplied.status).toBe(202);
      expect(supplied.body).toEqual({});
      expect(userStats(simulator, 'alice@contoso.test').passwordSupplied).toBe(false);
      expect(userStats(simulator, 'bob@contoso.test').passwordSupplied).toBe(true);

      const remote = await call<Record<string, unknown>>(simulator.baseUrl.replace('/v1.0', '/_sim/stats'));
      for (const exposed of [
        JSON.stringify(simulator.stats()),
        JSON.stringify(simulator.users()),
        remote.text,
      ]) {
        expect(exposed).not.toContain(password as string);
        expect(exposed).not.toContain('Caller-Chosen-Secret-1');
      }
    });

    it('generates a different password for every reset', async () => {
      const simulator = await start();
      const first = await postReset(simulator, 'alice@contoso.test');
      const second = await postReset(simulator, 'bob@contoso.test');

      expect(first.body.newPassword).not.toBe(second.body.newPassword);
    });

    it('treats user names case-insensitively and percent-decodes them', async () => {
      const simulator = await start();
      await postReset(simulator, 'Alice@Contoso.test');
      await postReset(simulator, 'alice@contoso.test');

      expect(simulator.stats().users).toBe(1);
      expect(userStats(simulator, 'ALICE@contoso.test')).toMatchObject({
        user: 'Alice@Contoso.test',
        posts: 2,
      });
    });
  });

  describe('scenarios', () => {
    it('picks a scenario from the explicit map, then the name prefix, then the default', () => {
      const options = {
        defaultScenario: 'slow' as const,
        scenarios: { 'Boss@Contoso.test': 'denied' as const },
      };

      expect(scenarioFor('boss@contoso.test', options)).toBe('denied');
      expect(scenarioFor('opfail.u0042@contoso.test', options)).toBe('opfail');
      expect(scenarioFor('Throttled.x@contoso.test', options)).toBe('throttled');
      expect(scenarioFor('flaky', options)).toBe('flaky');
      expect(scenarioFor('okay.u1@contoso.test', options)).toBe('slow');
      expect(scenarioFor('carol@contoso.test', {})).toBe('ok');
      expect(SCENARIOS).toHaveLength(24);
    });

    it('lets the explicit scenarios map override the name convention', async () => {
      const simulator = await start({ scenarios: { 'DENIED.vip@contoso.test': 'ok' } });
      const reply = await postReset(simulator, 'denied.vip@contoso.test');

      expect(reply.status).toBe(202);
      expect(userStats(simulator, 'denied.vip@contoso.test').scenario).toBe('ok');
    });

    it('slow: reports notStarted, then running, then succeeded on the third poll', async () => {
      const simulator = await start();
      const location = locationOf(await postReset(simulator, 'slow.u1@contoso.test'));
      await sleep(60);

      const first = await poll(location);
      expect(first.headers.get('retry-after')).toBe('0.05');
      await sleep(60);
      const second = await poll(location);
      expect(second.headers.get('retry-after')).toBe('0.05');
      await sleep(60);
      const third = await poll(location);

      expect([first.body.status, second.body.status, third.body.status]).toEqual([
        'notStarted',
        'running',
        'succeeded',
      ]);
      expect(third.headers.get('retry-after')).toBeNull();
      expect(userStats(simulator, 'slow.u1@contoso.test')).toMatchObject({
        polls: 3,
        earlyRequests: 0,
        active: false,
      });
    });

    it('opfail: the operation fails with the writeback detail', async () => {
      const simulator = await start();
      const location = locationOf(await postReset(simulator, 'opfail.u1@contoso.test'));
      await sleep(60);
      const reply = await poll(location);

      expect(reply.body).toMatchObject({
        status: 'failed',
        statusDetail: 'Password writeback to on-premises Active Directory failed.',
      });
      expect(userStats(simulator, 'opfail.u1@contoso.test')).toMatchObject({
        resetsAccepted: 1,
        active: false,
      });
    });

    it.each<[ScenarioName, number, string, string]>([
      [
        'badpw',
        400,
        'invalidRequest',
        'The password does not comply with the password complexity or banned password requirements.',
      ],
      ['denied', 403, 'Authorization_RequestDenied', 'Insufficient privileges to complete the operation.'],
      [
        'missing',
        404,
        'Request_ResourceNotFound',
        "Resource 'missing.u1@contoso.test' does not exist or one of its queried reference-property objects are not present.",
      ],
    ])('%s: refuses the reset with %i %s and ends the user', async (scenario, status, code, message) => {
      const simulator = await start();
      const user = `${scenario}.u1@contoso.test`;
      const reply = await call(resetUrl(simulator, user), { method: 'POST', body: {} });

      expectGraphError(reply, status, code, message);
      expect(reply.headers.get('retry-after')).toBeNull();
      expect(userStats(simulator, user)).toMatchObject({ posts: 1, resetsAccepted: 0, active: false });
      expect(simulator.stats()).toMatchObject({ activeUsers: 0, peakActiveUsers: 1 });
    });

    it('accepts a second reset once the scenario has given its terminal answer, so double resets show', async () => {
      const simulator = await start();
      await postReset(simulator, 'denied.u1@contoso.test');
      const second = await postReset(simulator, 'denied.u1@contoso.test');
      await sleep(60);
      const statuses = await pollToEnd(locationOf(second));

      expect(second.status).toBe(202);
      expect(statuses).toEqual(['succeeded']);
      expect(userStats(simulator, 'denied.u1@contoso.test')).toMatchObject({ posts: 2, resetsAccepted: 1 });
    });

    it('throttled: the first two POSTs get 429 with Retry-After, the third is accepted', async () => {
      const simulator = await start();
      const user = 'throttled.u1@contoso.test';
      const answers: Reply<Record<string, unknown>>[] = [];
      for (let attempt = 0; attempt < 3; attempt++) {
        const reply = await postReset(simulator, user);
        answers.push(reply);
        await sleep(60);
      }

      expect(answers.map((reply) => reply.status)).toEqual([429, 429, 202]);
      expect(answers[0].headers.get('retry-after')).toBe('0.05');
      expect((answers[0].body as unknown as GraphErrorBody).error.code).toBe('TooManyRequests');
      expect(await pollToEnd(locationOf(answers[2]))).toEqual(['succeeded']);
      expect(userStats(simulator, user)).toMatchObject({ posts: 3, resetsAccepted: 1, earlyRequests: 0 });
      expect(simulator.stats()).toMatchObject({ throttled: 2, posts: 3, resetsAccepted: 1 });
    });

    it('flaky: the first two POSTs get 503 serviceNotAvailable with Retry-After, the third is accepted', async () => {
      const simulator = await start();
      const user = 'flaky.u1@contoso.test';
      const first = await call(resetUrl(simulator, user), { method: 'POST', body: {} });
      await sleep(60);
      const second = await call(resetUrl(simulator, user), { method: 'POST', body: {} });
      await sleep(60);
      const third = await postReset(simulator, user);

      expectGraphError(first, 503, 'serviceNotAvailable');
      expect(first.headers.get('retry-after')).toBe('0.05');
      expect(second.status).toBe(503);
      expect(third.status).toBe(202);
      expect(simulator.stats().responsesByStatus).toEqual({ '503': 2, '202': 1 });
    });

    it('drop: the first POST loses its connection without starting a reset, the next is accepted', async () => {
      const simulator = await start();
      const user = 'drop.u1@contoso.test';

      await expect(postReset(simulator, user)).rejects.toThrow();
      expect(userStats(simulator, user)).toMatchObject({ posts: 1, resetsAccepted: 0 });
      expect(simulator.stats().responsesByStatus).toEqual({ dropped: 1 });

      const retried = await postReset(simulator, user);
      expect(retried.status).toBe(202);
      expect(userStats(simulator, user)).toMatchObject({ posts: 2, resetsAccepted: 1, earlyRequests: 0 });
    });

    it('noretry: sends no Retry-After anywhere; running, then succeeded', async () => {
      const simulator = await start();
      const accepted = await postReset(simulator, 'noretry.u1@contoso.test');
      const location = locationOf(accepted);
      const first = await poll(location);
      const second = await poll(location);

      expect(accepted.headers.get('retry-after')).toBeNull();
      expect(first.headers.get('retry-after')).toBeNull();
      expect([first.body.status, second.body.status]).toEqual(['running', 'succeeded']);
      expect(userStats(simulator, 'noretry.u1@contoso.test')).toMatchObject({ polls: 2, earlyRequests: 0 });
    });

    it('nolocation: accepts the reset without a Location, which ends the user', async () => {
      const simulator = await start();
      const accepted = await postReset(simulator, 'nolocation.u1@contoso.test');

      expect(accepted.status).toBe(202);
      expect(accepted.headers.get('location')).toBeNull();
      expect(userStats(simulator, 'nolocation.u1@contoso.test')).toMatchObject({
        resetsAccepted: 1,
        active: false,
      });
    });

    it('unknown: every poll reports unknownFutureValue and the password never changes', async () => {
      const simulator = await start();
      const location = locationOf(await postReset(simulator, 'unknown.u1@contoso.test'));
      await sleep(60);
      const first = await poll(location);
      const second = await poll(location);

      expect([first.body.status, second.body.status]).toEqual(['unknownFutureValue', 'unknownFutureValue']);
      // The scenario has said all it will say at the first poll: the user's work ends there.
      expect(userStats(simulator, 'unknown.u1@contoso.test')).toMatchObject({
        polls: 2,
        resetsApplied: 0,
        active: false,
      });
    });

    it('pollthrottle: the first poll gets 429 with Retry-After, the next succeeds', async () => {
      const simulator = await start();
      const location = locationOf(await postReset(simulator, 'pollthrottle.u1@contoso.test'));
      await sleep(60);
      const throttled = await call(location);
      await sleep(60);
      const done = await poll(location);

      expectGraphError(throttled, 429, 'TooManyRequests');
      expect(throttled.headers.get('retry-after')).toBe('0.05');
      expect(done.body.status).toBe('succeeded');
      expect(simulator.stats()).toMatchObject({ throttled: 1, polls: 2, earlyRequests: 0 });
    });
  });

  describe('pacing and load', () => {
    it('counts a request sent before the Retry-After elapsed as early, and one sent after as not', async () => {
      const simulator = await start({ retryAfterSeconds: 0.2, scenarios: { 'alice@contoso.test': 'slow' } });
      const location = locationOf(await postReset(simulator, 'alice@contoso.test'));

      const hasty = await poll(location);
      expect(hasty.headers.get('retry-after')).toBe('0.2');
      expect(userStats(simulator, 'alice@contoso.test').earlyRequests).toBe(1);

      await sleep(250);
      await poll(location);
      expect(userStats(simulator, 'alice@contoso.test').earlyRequests).toBe(1);
      expect(simulator.stats().earlyRequests).toBe(1);
      // The early one is described: which request, after which answer, and by how much.
      const [early] = simulator.stats().earlyDetails;
      expect(simulator.stats().earlyDetails).toHaveLength(1);
      expect(early?.user).toBe('alice@contoso.test');
      expect(early?.request).toMatch(/^GET \/v1\.0\/.*operations\//);
      expect(early?.after.request).toMatch(/^POST .*resetPassword$/);
      expect(early?.after).toMatchObject({ status: 202, retryAfterSeconds: 0.2 });
      expect(early?.earlyByMs).toBeGreaterThan(0);
      expect(early?.earlyByMs).toBeLessThanOrEqual(200);
    });

    it('lifts the pacing constraint after an answer without Retry-After', async () => {
      const simulator = await start({ retryAfterSeconds: 0.2 });
      await postReset(simulator, 'alice@contoso.test');
      const hastyLookup = await call(`${simulator.baseUrl}/users/alice%40contoso.test`);
      await call(`${simulator.baseUrl}/users/alice%40contoso.test/revokeSignInSessions`, { method: 'POST' });

      expect(hastyLookup.headers.get('retry-after')).toBeNull();
      expect(userStats(simulator, 'alice@contoso.test')).toMatchObject({
        gets: 1,
        revokes: 1,
        earlyRequests: 1,
      });
    });

    it('tracks active users from their first request to their terminal answer', async () => {
      const simulator = await start();
      const locations = await Promise.all(
        ['a@contoso.test', 'b@contoso.test', 'c@contoso.test'].map(async (user) =>
          locationOf(await postReset(simulator, user)),
        ),
      );
      expect(simulator.stats()).toMatchObject({ activeUsers: 3, peakActiveUsers: 3 });

      await sleep(60);
      await Promise.all(locations.map((location) => poll(location)));
      expect(simulator.stats()).toMatchObject({ activeUsers: 0, peakActiveUsers: 3 });

      await postReset(simulator, 'd@contoso.test');
      expect(simulator.stats()).toMatchObject({ activeUsers: 1, peakActiveUsers: 3 });
    });

    it('counts requests that are being answered at the same time, latency included', async () => {
      const simulator = await start({ latencyMs: 100 });
      const started = performance.now();
      await Promise.all(
        ['a', 'b', 'c', 'd', 'e'].map((name) => postReset(simulator, `${name}@contoso.test`)),
      );

      expect(performance.now() - started).toBeGreaterThanOrEqual(95);
      expect(simulator.stats().peakConcurrentRequests).toBe(5);
    });

    it('throttles resetPassword POSTs beyond the write budget with a Retry-After until the next token', async () => {
      const simulator = await start({ writeBudget: { writes: 2, perSeconds: 1 } });
      const replies = [];
      for (const name of ['a', 'b', 'c']) replies.push(await postReset(simulator, `${name}@contoso.test`));

      expect(replies.map((reply) => reply.status)).toEqual([202, 202, 429]);
      const retryAfter = Number(replies[2].headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThan(0);
      expect(retryAfter).toBeLessThanOrEqual(0.5);
      expect(simulator.stats()).toMatchObject({ throttled: 1, posts: 3, resetsAccepted: 2 });

      await sleep(retryAfter * 1000 + 5);
      const retried = await postReset(simulator, 'c@contoso.test');
      expect(retried.status).toBe(202);
      expect(userStats(simulator, 'c@contoso.test')).toMatchObject({
        posts: 2,
        resetsAccepted: 1,
        earlyRequests: 0,
      });
    });
  });

  describe('companion calls', () => {
    it('revokes sign-in sessions, and answers 404 for a missing user', async () => {
      const simulator = await start();
      const revoked = await call<Record<string, unknown>>(
        `${simulator.baseUrl}/users/alice%40contoso.test/revokeSignInSessions`,
        { method: 'POST' },
      );
      const missing = await call(`${simulator.baseUrl}/users/missing.x%40contoso.test/revokeSignInSessions`, {
        method: 'POST',
      });

      expect(revoked.status).toBe(200);
      expect(revoked.body.value).toBe(true);
      expectGraphError(missing, 404, 'Request_ResourceNotFound');
      expect(userStats(simulator, 'alice@contoso.test').revokes).toBe(1);
    });

    it('looks a user up with a stable id and a lastPasswordChangeDateTime that moves when a reset succeeds', async () => {
      const simulator = await start();
      const url =
        `${simulator.baseUrl}/users/alice%40contoso.test` +
        '?$select=id,userPrincipalName,accountEnabled,onPremisesSyncEnabled,lastPasswordChangeDateTime';
      const before = await call<Record<string, unknown>>(url);
      await sleep(60);
      await pollToEnd(locationOf(await postReset(simulator, 'alice@contoso.test')));
      const after = await call<Record<string, unknown>>(url);
      const byId = await call<Record<string, unknown>>(
        `${simulator.baseUrl}/users/${String(before.body.id)}`,
      );

      expect(before.body).toMatchObject({
        userPrincipalName: 'alice@contoso.test',
        accountEnabled: true,
        onPremisesSyncEnabled: null,
      });
      expect(before.body.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      expect(after.body.id).toBe(before.body.id);
      expect(Date.parse(String(after.body.lastPasswordChangeDateTime))).toBeGreaterThan(
        Date.parse(String(before.body.lastPasswordChangeDateTime)),
      );
      expect(byId.body.userPrincipalName).toBe('alice@contoso.test');
      expect(userStats(simulator, 'alice@contoso.test').gets).toBe(3);
      expectGraphError(
        await call(`${simulator.baseUrl}/users/missing.u2%40contoso.test`),
        404,
        'Request_ResourceNotFound',
      );
    });
  });

  describe('control endpoints', () => {
    it('serves stats and resets counters over HTTP without counting itself, behind the token', async () => {
      const simulator = await start();
      await postReset(simulator, 'alice@contoso.test');
      const controlUrl = simulator.baseUrl.replace('/v1.0', '/_sim');

      const refused = await call(`${controlUrl}/stats`, { token: 'nope' });
      const stats = await call<SimulatorStats & { userStats: UserStats[] }>(`${controlUrl}/stats`);
      expect(refused.status).toBe(401);
      expect(stats.body).toMatchObject({ requests: 1, posts: 1, resetsAccepted: 1, users: 1 });
      expect(stats.body.userStats).toEqual([
        expect.objectContaining({ user: 'alice@contoso.test', posts: 1 }),
      ]);

      const reset = await call(`${controlUrl}/reset-counters`, { method: 'POST' });
      expect(reset.status).toBe(204);
      expect(simulator.stats()).toMatchObject({ requests: 0, posts: 0, resetsAccepted: 0, activeUsers: 1 });
      expect(simulator.stats().responsesByStatus).toEqual({});
      expect(userStats(simulator, 'alice@contoso.test')).toMatchObject({ posts: 0, resetsAccepted: 0 });
    });

    it('resets counters in-process while keeping each user where its scenario stands', async () => {
      const simulator = await start();
      await postReset(simulator, 'throttled.u1@contoso.test');
      simulator.resetCounters();
      await sleep(60);
      await postReset(simulator, 'throttled.u1@contoso.test');
      await sleep(60);
      const third = await postReset(simulator, 'throttled.u1@contoso.test');

      expect(third.status).toBe(202);
      expect(simulator.stats()).toMatchObject({ posts: 2, throttled: 1, resetsAccepted: 1 });
    });
  });
});

describe('Graph simulator: directory attributes for a preflight', () => {
  const GLOBAL_ADMINISTRATOR_TEMPLATE = '62e90394-69f5-4237-9190-012177145e10';

  function rolesUrl(simulator: GraphSimulator, user: string): string {
    return (
      `${simulator.baseUrl}/users/${encodeURIComponent(user)}` +
      '/transitiveMemberOf/microsoft.graph.directoryRole?$select=id,displayName,roleTemplateId'
    );
  }

  it('shows disabled. users as disabled and synced. users as synced from on-premises', async () => {
    const simulator = await start();
    const lookup = (user: string) =>
      call<Record<string, unknown>>(
        `${simulator.baseUrl}/users/${encodeURIComponent(user)}?$select=accountEnabled,onPremisesSyncEnabled`,
      );

    expect((await lookup('disabled.d1@contoso.test')).body).toMatchObject({
      accountEnabled: false,
      onPremisesSyncEnabled: null,
    });
    expect((await lookup('synced.s1@contoso.test')).body).toMatchObject({
      accountEnabled: true,
      onPremisesSyncEnabled: true,
    });
    expect((await lookup('admin.a1@contoso.test')).body).toMatchObject({
      accountEnabled: true,
      onPremisesSyncEnabled: null,
    });
  });

  it('lists Global Administrator for admin. users, no role for others, and 404 for missing ones', async () => {
    const simulator = await start();
    type Roles = { value: Record<string, unknown>[] };

    const admin = await call<Roles>(rolesUrl(simulator, 'admin.a1@contoso.test'));
    const plain = await call<Roles>(rolesUrl(simulator, 'carol@contoso.test'));
    const missing = await call(rolesUrl(simulator, 'missing.m1@contoso.test'));

    expect(admin.status).toBe(200);
    expect(admin.body.value).toEqual([
      {
        id: expect.stringMatching(/^[0-9a-f-]{36}$/) as unknown,
        displayName: 'Global Administrator',
        roleTemplateId: GLOBAL_ADMINISTRATOR_TEMPLATE,
      },
    ]);
    expect(plain.status).toBe(200);
    expect(plain.body.value).toEqual([]);
    expectGraphError(missing, 404, 'Request_ResourceNotFound');
  });

  it('finds the roles by object id too, and counts role lookups as the user’s GETs', async () => {
    const simulator = await start();
    const user = await call<Record<string, unknown>>(`${simulator.baseUrl}/users/admin.a2%40contoso.test`);
    const byId = await call<{ value: { displayName: string }[] }>(rolesUrl(simulator, String(user.body.id)));

    expect(byId.body.value.map((role) => role.displayName)).toEqual(['Global Administrator']);
    expect(userStats(simulator, 'admin.a2@contoso.test')).toMatchObject({ gets: 2, posts: 0 });
    expect(simulator.stats().posts).toBe(0);
  });

  it.each(['disabled', 'synced', 'admin'])('%s: a reset behaves like ok', async (scenario) => {
    const simulator = await start();
    const user = `${scenario}.r1@contoso.test`;
    const accepted = await postReset(simulator, user);

    expect(accepted.status).toBe(202);
    expect(await pollToEnd(locationOf(accepted))).toEqual(['succeeded']);
    expect(userStats(simulator, user)).toMatchObject({ scenario, posts: 1, resetsAccepted: 1 });
  });

  it('throttles lookups beyond the read budget with a Retry-After, and never touches POSTs', async () => {
    const simulator = await start({ readBudget: { reads: 2, perSeconds: 1 } });
    const first = await call(`${simulator.baseUrl}/users/u1%40contoso.test`);
    const second = await call(rolesUrl(simulator, 'u1@contoso.test'));
    const third = await call(`${simulator.baseUrl}/users/u2%40contoso.test`);
    const reset = await postReset(simulator, 'u3@contoso.test');

    expect([first.status, second.status]).toEqual([200, 200]);
    expectGraphError(third, 429, 'TooManyRequests');
    expect(Number(third.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(reset.status).toBe(202);
    expect(userStats(simulator, 'u2@contoso.test').gets).toBe(1);
  });
});
