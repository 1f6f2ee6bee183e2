import { MockActivityEnvironment } from '@temporalio/testing';

import { StaticTokenCredential } from '../graph/credentials';
import { GraphClient } from '../graph/client';
import { GraphError } from '../graph/errors';
import { createActivities } from '../activities/index';
import { startGraphSimulator, type GraphSimulator } from '../simulator/graphSimulator';
import type { StartResetResult } from '../workflows/types';
import { freePort } from './support/ports';
import { rejectionOf } from './support/rejection';

const TOKEN = 'graph-client-test-token';
/** Fractional on purpose: Graph sends values like this, and they must survive to the millisecond. */
const RETRY_AFTER_SECONDS = 2.128;
const RETRY_AFTER_MS = 2128;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

let sim: GraphSimulator;
let graph: GraphClient;

beforeAll(async () => {
  sim = await startGraphSimulator({ token: TOKEN, retryAfterSeconds: RETRY_AFTER_SECONDS });
  graph = new GraphClient({ baseUrl: sim.baseUrl, credential: new StaticTokenCredential(TOKEN) });
});

afterAll(async () => {
  await sim.close();
});

/** The GraphError a call failed with; fails the test when the call succeeds or throws anything else. */
async function graphFailure(call: Promise<unknown>): Promise<GraphError> {
  return rejectionOf(call, GraphError, 'the Graph call');
}

describe('GraphClient.startPasswordReset', () => {
  it('is accepted with 202 and hands back the Location to poll, its operation id and the Retry-After', async () => {
    const user = 'alice@contoso.test';
    const accepted = await graph.startPasswordReset(user);

    // Graph names the user by object id in the Location, whatever the caller addressed it by.
    const operationsUrl = `${sim.baseUrl}/users/${sim.user(user)?.id}/authentication/operations/`;
    expect(accepted.operationUrl?.startsWith(operationsUrl)).toBe(true);
    expect(accepted.operationUrl?.endsWith(`/${accepted.operationId}?aadgdc=SIM01&aadgsu=ssprprod-a`)).toBe(
      true,
    );
    expect(accepted.operationId).toMatch(UUID);
    expect(accepted.retryAfterMs).toBe(RETRY_AFTER_MS);
    expect(accepted.requestId).toMatch(UUID);
    expect(sim.user(user)).toMatchObject({ posts: 1, resetsAccepted: 1, polls: 0, passwordSupplied: false });
  });

  it('leaves Retry-After undefined when Graph sends none, rather than inventing a wait', async () => {
    const accepted = await graph.startPasswordReset('noretry.bob@contoso.test');
    expect(accepted.operationUrl).toBeDefined();
    expect(accepted.retryAfterMs).toBeUndefined();
  });

  it('reports an accepted reset without Location as accepted but unconfirmed (no operation to poll)', async () => {
    const user = 'nolocation.carol@contoso.test';
    const accepted = await graph.startPasswordReset(user);
    expect(accepted.operationUrl).toBeUndefined();
    expect(accepted.operationId).toBeUndefined();
    expect(sim.user(user)).toMatchObject({ posts: 1, resetsAccepted: 1 });
  });

  it('sends the password the caller chose, and Graph then generates none', async () => {
    const user = 'dave@contoso.test';
    const accepted = await graph.startPasswordReset(user, { newPassword: 'Chosen-By-Operator-42!' });
    expect(accepted.generatedPassword).toBeUndefined();
    expect(sim.user(user)).toMatchObject({ posts: 1, resetsAccepted: 1, passwordSupplied: true });
  });

  it('hands a generated password only to its immediate caller: not as newPassword, not kept on the client', async () => {
    const user = 'erin@contoso.test';
    const accepted = await graph.startPasswordReset(user);
    expect(sim.user(user)).toMatchObject({ resetsAccepted: 1, passwordSupplied: false });
    // By design the client reads the one-time secret (ResetAccepted.generatedPassword); it does not echo
    // Graph's field name, and it does not remember the value anywhere on the instance.
    expect(accepted).not.toHaveProperty('newPassword');
    expect(accepted.generatedPassword).toMatch(/^\S{20}$/);
    expect(JSON.stringify(graph)).not.toContain(accepted.generatedPassword);
  });

  it('drops a generated password in the startReset activity, so it never reaches Temporal', async () => {
    const user = 'frank@contoso.test';
    const activities = createActivities({
      graph,
      dataDir: '/nonexistent/bulk-reset-test',
      userKeySecret: Buffer.alloc(32),
    });
    const result: StartResetResult = await new MockActivityEnvironment({ attempt: 1 }).run(
      activities.startReset,
      {
        jobId: 'job-1',
        user,
      },
    );
    expect(sim.user(user)).toMatchObject({ resetsAccepted: 1, passwordSupplied: false });
    expect(Object.keys(result).sort()).toEqual(['operationId', 'operationUrl', 'requestId', 'retryAfterMs']);
    expect(result.operationUrl).toContain(`/operations/${result.operationId}?`);
  });

  it('percent-encodes a UPN with path-special characters so the request reaches that exact user', async () => {
    const users = [
      "o'brien+x#1@contoso.test",
      'a/b@contoso.test',
      '100%?x=1&y@contoso.test',
      'semi;colon@contoso.test',
      "slow.o'brien/x#2@contoso.test",
    ];
    const knownBefore = new Set(sim.users().map((stats) => stats.user));

    for (const user of users) {
      const accepted = await graph.startPasswordReset(user);
      expect(accepted.operationUrl).toContain(`/users/${sim.user(user)?.id}/authentication/operations/`);
      const first = await graph.getOperation(accepted.operationUrl ?? '');
      expect(first.status).toBe(user.startsWith('slow.') ? 'notStarted' : 'succeeded');
    }

    const addressed = sim.users().filter((stats) => !knownBefore.has(stats.user));
    expect(addressed.map((stats) => stats.user).sort()).toEqual([...users].sort());
    for (const user of users) {
      expect(sim.user(user)).toMatchObject({ user, posts: 1, resetsAccepted: 1, polls: 1 });
    }
    // The scenario prefix survived too: the simulator saw the whole UPN as one path segment.
    expect(sim.user("slow.o'brien/x#2@contoso.test")?.scenario).toBe('slow');
  });
});

describe('GraphClient.getOperation', () => {
  it('follows the Location until the operation succeeds, honouring Retry-After on each non-terminal poll', async () => {
    const user = 'slow.grace@contoso.test';
    const accepted = await graph.startPasswordReset(user);
    const location = accepted.operationUrl ?? '';

    const first = await graph.getOperation(location);
    const second = await graph.getOperation(location);
    const third = await graph.getOperation(location);

    expect([first.status, second.status, third.status]).toEqual(['notStarted', 'running', 'succeeded']);
    expect([first.retryAfterMs, second.retryAfterMs, third.retryAfterMs]).toEqual([
      RETRY_AFTER_MS,
      RETRY_AFTER_MS,
      undefined,
    ]);
    expect(third.operationId).toBe(accepted.operationId);
    expect(third.requestId).toMatch(UUID);
    expect(third.requestId).not.toBe(first.requestId);
    expect(sim.user(user)).toMatchObject({ posts: 1, resetsAccepted: 1, polls: 3, active: false });
  });

  it('follows a rehearsal to its end when the simulator is reached by another name (localhost)', async () => {
    const viaLocalhost = new GraphClient({
      baseUrl: sim.baseUrl.replace('127.0.0.1', 'localhost'),
      credential: new StaticTokenCredential(TOKEN),
    });
    const user = 'noretry.localhost@contoso.test';

    const accepted = await viaLocalhost.startPasswordReset(user);
    const first = await viaLocalhost.getOperation(accepted.operationUrl ?? '');
    const second = await viaLocalhost.getOperation(accepted.operationUrl ?? '');

    expect(new URL(accepted.operationUrl ?? '').hostname).toBe('localhost');
    expect([first.status, second.status]).toEqual(['running', 'succeeded']);
    expect(second.statusDetail).toBe('ResetSuccess');
    expect(sim.user(user)).toMatchObject({ posts: 1, polls: 2, resetsApplied: 1 });
  });

  it("reports a failed operation with Graph's statusDetail", async () => {
    const accepted = await graph.startPasswordReset('opfail.heidi@contoso.test');
    const state = await graph.getOperation(accepted.operationUrl ?? '');
    expect(state.status).toBe('failed');
    expect(state.statusDetail).toMatch(/writeback/i);
  });

  it('passes a status it does not know through as sent, never as success', async () => {
    const accepted = await graph.startPasswordReset('unknown.ivan@contoso.test');
    const state = await graph.getOperation(accepted.operationUrl ?? '');
    expect(state.status).toBe('unknownFutureValue');
  });

  it('sends the Location verbatim: the same URL without its query string is not found', async () => {
    const user = 'judy@contoso.test';
    const accepted = await graph.startPasswordReset(user);
    const withoutQuery = (accepted.operationUrl ?? '').split('?')[0];

    const error = await graphFailure(graph.getOperation(withoutQuery));
    // A 404 on an operation reads as "not visible yet" (polled again), and says what Graph answered.
    expect(error).toMatchObject({ kind: 'transient', status: 404, code: 'OperationNotVisibleYet' });
    expect(error.message).toContain('query string included');
    expect((await graph.getOperation(accepted.operationUrl ?? '')).status).toBe('succeeded');
    expect(sim.user(user)?.polls).toBe(2);
  });

  it('refuses a Location on another origin and sends it nothing, not even the token', async () => {
    const elsewhere = await startGraphSimulator({ token: TOKEN });
    try {
      const accepted = await graph.startPasswordReset('mallory@contoso.test');
      const location = new URL(accepted.operationUrl ?? '');
      const onOtherPort = new URL(location.href);
      onOtherPort.port = new URL(elsewhere.baseUrl).port;
      const onOtherHost = new URL(location.href);
      onOtherHost.hostname = 'localhost';
      const requestsBefore = sim.stats().requests;

      for (const url of [
        onOtherPort.href,
        onOtherHost.href,
        location.href.replace(/^http:/, 'https:'),
        'https://graph.microsoft.com.evil.test/v1.0/users/x/authentication/operations/1?aadgdc=SIM01',
        'not a url',
      ]) {
        const error = await graphFailure(graph.getOperation(url));
        expect({ url, kind: error.kind, code: error.code }).toEqual({
          url,
          kind: 'permanent',
          code: 'UntrustedLocation',
        });
      }
      expect(elsewhere.stats().requests).toBe(0);
      expect(sim.stats().requests).toBe(requestsBefore);
    } finally {
      await elsewhere.close();
    }
  });

  it('treats a 200 without a status as a transient malformed answer, not as success', async () => {
    const user = 'ken@contoso.test';
    // A same-origin URL that answers 200 with something that is not an operation: the user itself.
    const error = await graphFailure(graph.getOperation(`${sim.baseUrl}/users/${encodeURIComponent(user)}`));
    expect(error).toMatchObject({ kind: 'transient', status: 200, code: 'MalformedOperation' });
    expect(error.requestId).toMatch(UUID);
    expect(sim.user(user)?.gets).toBe(1);
  });
});

describe('GraphClient.getUser', () => {
  it('reads the preflight fields, and sees the password change a succeeded reset made', async () => {
    const user = 'laura@contoso.test';
    const before = await graph.getUser(user);
    expect(before).toEqual({
      id: sim.user(user)?.id,
      userPrincipalName: user,
      accountEnabled: true,
      onPremisesSyncEnabled: null,
      lastPasswordChangeDateTime: '2025-01-01T08:00:00Z',
    });
    const accepted = await graph.startPasswordReset(user);
    expect((await graph.getOperation(accepted.operationUrl ?? '')).status).toBe('succeeded');
    const after = await graph.getUser(user);
    expect(Date.parse(after.lastPasswordChangeDateTime ?? '')).toBeGreaterThan(
      Date.parse(before.lastPasswordChangeDateTime ?? ''),
    );
    expect(sim.user(user)?.gets).toBe(2);
  });
});

describe('GraphClient errors', () => {
  it.each([
    ['badpw', 400, 'invalidRequest', /password does not comply/],
    ['denied', 403, 'Authorization_RequestDenied', /Insufficient privileges/],
    ['missing', 404, 'Request_ResourceNotFound', /does not exist/],
  ])(
    'classifies the %s answer %i as permanent, keeping Graph code, message and request-id',
    async (scenario, status, code, message) => {
      const user = `${scenario}.mike@contoso.test`;
      const byStatusBefore = sim.stats().responsesByStatus[String(status)] ?? 0;

      const error = await graphFailure(
        graph.startPasswordReset(user, { newPassword: 'Chosen-By-Operator-42!' }),
      );

      expect(error).toMatchObject({
        kind: 'permanent',
        status,
        code,
        ambiguous: false,
        retryAfterMs: undefined,
      });
      expect(error.message).toContain(`${status} ${code}`);
      expect(error.message).toMatch(message);
      expect(error.requestId).toMatch(UUID);
      expect(sim.user(user)).toMatchObject({ posts: 1, resetsAccepted: 0, active: false });
      expect(sim.stats().responsesByStatus[String(status)]).toBe(byStatusBefore + 1);
    },
  );

  it('gives each failure the request-id of its own answer', async () => {
    const first = await graphFailure(graph.startPasswordReset('denied.nina@contoso.test'));
    const second = await graphFailure(graph.startPasswordReset('denied.oscar@contoso.test'));
    expect(first.requestId).toMatch(UUID);
    expect(second.requestId).toMatch(UUID);
    expect(first.requestId).not.toBe(second.requestId);
  });

  it('classifies 429 as transient and keeps the Retry-After to the millisecond', async () => {
    const user = 'throttled.peggy@contoso.test';
    const throttledBefore = sim.stats().throttled;

    const error = await graphFailure(graph.startPasswordReset(user));

    expect(error).toMatchObject({
      kind: 'transient',
      status: 429,
      code: 'TooManyRequests',
      retryAfterMs: RETRY_AFTER_MS,
      ambiguous: false,
    });
    expect(error.requestId).toMatch(UUID);
    expect(sim.stats().throttled).toBe(throttledBefore + 1);
    expect(sim.user(user)).toMatchObject({ posts: 1, resetsAccepted: 0 });
  });

  it('classifies 429 on a poll as transient with its Retry-After', async () => {
    const user = 'pollthrottle.quinn@contoso.test';
    const accepted = await graph.startPasswordReset(user);
    const error = await graphFailure(graph.getOperation(accepted.operationUrl ?? ''));
    expect(error).toMatchObject({ kind: 'transient', status: 429, retryAfterMs: RETRY_AFTER_MS });
    expect((await graph.getOperation(accepted.operationUrl ?? '')).status).toBe('succeeded');
    expect(sim.user(user)).toMatchObject({ posts: 1, polls: 2 });
  });

  it('reads a Retry-After sent as an HTTP-date as the wait until that moment, on a 429 and a 202', async () => {
    const user = 'httpdate.olivia@contoso.test';

    const error = await graphFailure(graph.startPasswordReset(user));
    const accepted = await graph.startPasswordReset(user);

    expect(error).toMatchObject({ kind: 'transient', status: 429, code: 'TooManyRequests' });
    // The date counts whole seconds: Graph's wait, rounded up to the next second, less the time in flight.
    for (const waitMs of [error.retryAfterMs, accepted.retryAfterMs]) {
      expect(waitMs).toBeGreaterThan(RETRY_AFTER_MS - 200);
      expect(waitMs).toBeLessThanOrEqual(RETRY_AFTER_MS + 1000);
    }
    expect(sim.user(user)).toMatchObject({ posts: 2, resetsAccepted: 1 });
  });

  it('classifies 503 as transient and keeps the Retry-After', async () => {
    const user = 'flaky.rupert@contoso.test';
    const error = await graphFailure(graph.startPasswordReset(user));
    expect(error).toMatchObject({
      kind: 'transient',
      status: 503,
      code: 'serviceNotAvailable',
      retryAfterMs: RETRY_AFTER_MS,
      ambiguous: false,
    });
    expect(sim.user(user)).toMatchObject({ posts: 1, resetsAccepted: 0 });
  });

  it('marks a reset whose connection dropped as transient and ambiguous: Graph received it', async () => {
    const user = 'drop.sybil@contoso.test';
    const droppedBefore = sim.stats().responsesByStatus.dropped ?? 0;

    const error = await graphFailure(graph.startPasswordReset(user));

    expect(error).toMatchObject({
      kind: 'transient',
      code: 'NetworkError',
      ambiguous: true,
      status: undefined,
    });
    expect(sim.user(user)?.posts).toBe(1);
    expect(sim.stats().responsesByStatus.dropped).toBe(droppedBefore + 1);
    // The scenario drops only the first POST: the next one is answered normally.
    expect((await graph.startPasswordReset(user)).operationUrl).toBeDefined();
    expect(sim.user(user)).toMatchObject({ posts: 2, resetsAccepted: 1 });
  });

  it('marks a refused connection as transient but not ambiguous: nothing was sent', async () => {
    const port = await freePort();
    const offline = new GraphClient({
      baseUrl: `http://127.0.0.1:${port}/v1.0`,
      credential: new StaticTokenCredential(TOKEN),
    });

    const error = await graphFailure(offline.startPasswordReset('trent@contoso.test'));

    expect(error).toMatchObject({
      kind: 'transient',
      code: 'NetworkError',
      ambiguous: false,
      status: undefined,
    });
    expect(error.message).toContain('ECONNREFUSED');
    expect(error.message).toContain(`127.0.0.1:${port}`);
  });

  it('classifies a refused token as auth (401), and the simulator attributes nothing to the user', async () => {
    const user = 'ursula@contoso.test';
    const unauthorizedBefore = sim.stats().unauthorized;
    const postsBefore = sim.stats().posts;
    const wrongToken = new GraphClient({
      baseUrl: sim.baseUrl,
      credential: new StaticTokenCredential('not-the-token'),
    });

    const error = await graphFailure(wrongToken.startPasswordReset(user));

    expect(error).toMatchObject({ kind: 'auth', status: 401, code: 'InvalidAuthenticationToken' });
    expect(error.requestId).toMatch(UUID);
    expect(sim.stats().unauthorized).toBe(unauthorizedBefore + 1);
    expect(sim.stats().posts).toBe(postsBefore);
    expect(sim.user(user)).toBeUndefined();
  });

  it('classifies a credential that cannot give a token as auth, without calling Graph', async () => {
    const requestsBefore = sim.stats().requests;
    const signedOut = new GraphClient({
      baseUrl: sim.baseUrl,
      credential: {
        getToken: () => Promise.reject(new Error('refresh token expired for admin@contoso.test')),
      },
    });

    const error = await graphFailure(signedOut.startPasswordReset('victor@contoso.test'));

    expect(error).toMatchObject({ kind: 'auth', code: 'SignInRequired' });
    expect(error.message).not.toContain('admin@contoso.test');
    expect(sim.stats().requests).toBe(requestsBefore);
  });

  describe('against a slow Graph', () => {
    const LATENCY_MS = 1500;
    const TIMEOUT_MS = 100;
    let slowSim: GraphSimulator;
    let impatient: GraphClient;

    beforeAll(async () => {
      slowSim = await startGraphSimulator({ token: TOKEN, latencyMs: LATENCY_MS });
      impatient = new GraphClient({
        baseUrl: slowSim.baseUrl,
        credential: new StaticTokenCredential(TOKEN),
        requestTimeoutMs: TIMEOUT_MS,
      });
    });

    afterAll(async () => {
      await slowSim.close();
    });

    it('gives up on a reset after the request timeout, as a transient Timeout that may have been applied', async () => {
      const user = 'walter@contoso.test';
      const startedAt = performance.now();

      const error = await graphFailure(impatient.startPasswordReset(user));

      expect(performance.now() - startedAt).toBeLessThan(LATENCY_MS);
      expect(error).toMatchObject({ kind: 'transient', code: 'Timeout', ambiguous: true, status: undefined });
      // Ground truth for "ambiguous": the simulator had already accepted the reset it never answered.
      expect(slowSim.user(user)).toMatchObject({ posts: 1, resetsAccepted: 1 });
    });

    it('does not call a timed-out read ambiguous: a GET changes nothing', async () => {
      const user = 'xena@contoso.test';
      const error = await graphFailure(impatient.getUser(user));
      expect(error).toMatchObject({ kind: 'transient', code: 'Timeout', ambiguous: false });
      expect(slowSim.user(user)?.gets).toBe(1);
    });

    it('answers normally when the timeout is longer than the latency', async () => {
      const patient = new GraphClient({
        baseUrl: slowSim.baseUrl,
        credential: new StaticTokenCredential(TOKEN),
        requestTimeoutMs: LATENCY_MS * 4,
      });
      const accepted = await patient.startPasswordReset('yusuf@contoso.test');
      expect(accepted.operationUrl).toContain('/authentication/operations/');
    });
  });
});

describe('GraphClient.getAdminRoles', () => {
  it('names the directory roles of an admin and none for anyone else, counting one GET each', async () => {
    expect(await graph.getAdminRoles('admin.olga@contoso.test')).toEqual(['Global Administrator']);
    expect(await graph.getAdminRoles('peter@contoso.test')).toEqual([]);
    expect(sim.user('admin.olga@contoso.test')).toMatchObject({ gets: 1, posts: 0 });
  });

  it('classifies a missing user as permanent 404 with its request-id', async () => {
    const error = await graphFailure(graph.getAdminRoles('missing.quinn@contoso.test'));
    expect(error).toMatchObject({ kind: 'permanent', status: 404, code: 'Request_ResourceNotFound' });
    expect(error.requestId).toMatch(UUID);
  });

  it('classifies throttling as transient and keeps the Retry-After', async () => {
    const throttlingSim = await startGraphSimulator({
      token: TOKEN,
      readBudget: { reads: 1, perSeconds: 10 },
    });
    try {
      const client = new GraphClient({
        baseUrl: throttlingSim.baseUrl,
        credential: new StaticTokenCredential(TOKEN),
      });
      await client.getUser('admin.rita@contoso.test');
      const error = await graphFailure(client.getAdminRoles('admin.rita@contoso.test'));
      expect(error).toMatchObject({ kind: 'transient', status: 429, code: 'TooManyRequests' });
      expect(error.retryAfterMs).toBeGreaterThan(0);
    } finally {
      await throttlingSim.close();
    }
  });
});
