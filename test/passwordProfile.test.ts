/**
 * The passwordProfile PATCH at the Graph client boundary, against the simulator: what is sent, how each
 * answer is classified, and the refusal of resetPassword with an app-only credential before anything
 * leaves. Then the app-only credential settings.
 */
import { appCredentialFromEnv, isAppOnlyConfig, StaticTokenCredential } from '../graph/credentials';
import { GraphClient } from '../graph/client';
import { GraphError } from '../graph/errors';
import { tokenFacts, unsignedToken } from '../graph/tokenClaims';
import { startGraphSimulator, type GraphSimulator } from '../simulator/graphSimulator';
import { missingPermissions } from '../client/plan';
import { MockActivityEnvironment } from '@temporalio/testing';
import { ApplicationFailure } from '@temporalio/common';
import { createActivities } from '../activities/index';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const DELEGATED = 'password-profile-test-token';
const APP = unsignedToken({ idtyp: 'app', roles: ['User-PasswordProfile.ReadWrite.All'] });
const PASSWORD = 'Profile-Test-Password-1!';

async function graphFailure(call: Promise<unknown>): Promise<GraphError> {
  try {
    await call;
  } catch (error) {
    expect(error).toBeInstanceOf(GraphError);
    return error as GraphError;
  }
  throw new Error('expected the Graph call to fail');
}

describe('GraphClient.updatePasswordProfile (delegated)', () => {
  let sim: GraphSimulator;
  let graph: GraphClient;

  beforeAll(async () => {
    sim = await startGraphSimulator({ token: DELEGATED, retryAfterSeconds: 0.5, keepPasswords: true });
    graph = new GraphClient({ baseUrl: sim.baseUrl, credential: new StaticTokenCredential(DELEGATED) });
  });

  afterAll(async () => {
    await sim.close();
  });

  it('PATCHes the password with the force-change flags, and Graph applies it at once (204)', async () => {
    const user = 'ok.profile1@contoso.test';
    const answer = await graph.updatePasswordProfile(user, {
      password: PASSWORD,
      forceChange: true,
      forceChangeWithMfa: true,
    });
    expect(answer.requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(sim.user(user)).toMatchObject({
      posts: 0,
      resetsApplied: 1,
      profileWrites: [
        {
          forceChangePasswordNextSignIn: true,
          forceChangePasswordNextSignInWithMfa: true,
          appOnly: false,
          status: 204,
        },
      ],
    });
    expect(sim.passwords(user)?.accepted).toEqual([PASSWORD]);
  });

  it.each([
    ['a password the policy refuses', 'ok.weak@contoso.test', 'short', 400, 'permanent'],
    ['a synced user', 'synced.profile@contoso.test', PASSWORD, 400, 'permanent'],
    ['a user the caller may not touch', 'denied.profile@contoso.test', PASSWORD, 403, 'permanent'],
    ['a missing user', 'missing.profile@contoso.test', PASSWORD, 404, 'permanent'],
    ['throttling', 'throttled.profile@contoso.test', PASSWORD, 429, 'transient'],
    ['trouble at Graph', 'flaky.profile@contoso.test', PASSWORD, 503, 'transient'],
  ])('classifies %s', async (_case, user, password, status, kind) => {
    const error = await graphFailure(graph.updatePasswordProfile(user, { password, forceChange: true }));
    expect({ status: error.status, kind: error.kind, ambiguous: error.ambiguous }).toEqual({
      status,
      kind,
      ambiguous: false,
    });
    expect(error.requestId).toBeDefined();
    expect(sim.user(user)?.resetsApplied).toBe(0);
  });

  it('is never sent without a password from the worker: Graph generates none for this call', async () => {
    const activities = createActivities({
      graph,
      dataDir: '/nonexistent/bulk-reset-test',
      userKeySecret: Buffer.alloc(32),
    });
    const user = 'ok.nopassword@contoso.test';
    const failure = await new MockActivityEnvironment({ attempt: 1 })
      .run(activities.setPasswordProfile, { jobId: 'job-1', user, forceChange: true })
      .then(
        () => undefined,
        (error: unknown) => error,
      );
    expect(failure).toBeInstanceOf(ApplicationFailure);
    expect(failure).toMatchObject({ type: 'PasswordRequired', nonRetryable: true });
    expect((failure as Error).message).toContain('nothing was sent');
    expect(sim.user(user)?.profileWrites ?? []).toEqual([]);
  });

  it("is checked against the protected list by Graph's object id right before the write, and not sent for a protected user", async () => {
    const folder = await mkdtemp(join(tmpdir(), 'bulk-reset-profile-'));
    try {
      const guarded = 'ok.guarded@contoso.test';
      // The list names the account by object id only; the CSV names it by userPrincipalName.
      const { id } = await graph.getUser(guarded);
      const protectedUsersPath = join(folder, 'protected-users');
      await writeFile(protectedUsersPath, `${id}\n`);
      const activities = createActivities({
        graph,
        dataDir: folder,
        protectedUsersPath,
        userKeySecret: Buffer.alloc(32),
      });
      const refused = await new MockActivityEnvironment({ attempt: 1 })
        .run(activities.setPasswordProfile, {
          jobId: 'job-2',
          user: guarded,
          password: { mode: 'generated' as const, length: 20 },
          forceChange: true,
        })
        .then(
          () => undefined,
          (error: unknown) => error,
        );
      expect(refused).toMatchObject({ type: 'ProtectedAccount', nonRetryable: true });
      expect(sim.user(guarded)?.profileWrites).toEqual([]);

      const other = 'ok.unguarded@contoso.test';
      await new MockActivityEnvironment({ attempt: 1 }).run(activities.setPasswordProfile, {
        jobId: 'job-2',
        user: other,
        password: { mode: 'generated' as const, length: 20 },
        forceChange: true,
      });
      expect(sim.user(other)?.profileWrites).toHaveLength(1);
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  });

  it('calls a dropped PATCH ambiguous: it may have been applied', async () => {
    const user = 'dropafter.profile@contoso.test';
    const error = await graphFailure(
      graph.updatePasswordProfile(user, { password: PASSWORD, forceChange: false }),
    );
    expect({ kind: error.kind, ambiguous: error.ambiguous }).toEqual({ kind: 'transient', ambiguous: true });
    expect(sim.user(user)?.resetsApplied).toBe(1);
    expect(sim.user(user)?.profileWrites).toEqual([
      { forceChangePasswordNextSignIn: false, appOnly: false, status: 0 },
    ]);
  });
});

describe('an app-only credential', () => {
  let sim: GraphSimulator;

  beforeAll(async () => {
    sim = await startGraphSimulator({ token: APP, keepPasswords: true });
  });

  afterAll(async () => {
    await sim.close();
  });

  it('may PATCH a passwordProfile but not an administrator (its User Administrator role reaches none)', async () => {
    const graph = new GraphClient({ baseUrl: sim.baseUrl, credential: new StaticTokenCredential(APP) });
    await graph.updatePasswordProfile('ok.app1@contoso.test', { password: PASSWORD, forceChange: true });
    expect(sim.user('ok.app1@contoso.test')?.profileWrites).toEqual([
      { forceChangePasswordNextSignIn: true, appOnly: true, status: 204 },
    ]);
    const denied = await graphFailure(
      graph.updatePasswordProfile('admin.app2@contoso.test', { password: PASSWORD, forceChange: true }),
    );
    expect(denied.status).toBe(403);
  });

  it.each([
    ['its token says it is an app', { appOnly: false }],
    ['the settings say it is an app', { appOnly: true }],
  ])('never sends resetPassword when %s, and journals nothing', async (_case, { appOnly }) => {
    const graph = new GraphClient({
      baseUrl: sim.baseUrl,
      // With appOnly, even a token that does not look like an app's is held back.
      credential: new StaticTokenCredential(appOnly ? DELEGATED : APP),
      appOnly,
    });
    const beforeSend = jest.fn(() => Promise.resolve());
    const error = await graphFailure(graph.startPasswordReset('ok.app3@contoso.test', { beforeSend }));
    expect(error).toMatchObject({ kind: 'permanent', code: 'AppOnlyResetRefused', ambiguous: false });
    expect(error.message).toContain('--method password-profile');
    expect(beforeSend).not.toHaveBeenCalled();
    expect(sim.stats().posts).toBe(0);
  });

  it('is refused resetPassword by the simulator as by Graph, should one be sent', async () => {
    const response = await fetch(
      `${sim.baseUrl}/users/ok.app4%40contoso.test/authentication/methods/28c10230-6103-485e-b985-444c60001490/resetPassword`,
      {
        method: 'POST',
        headers: { authorization: `Bearer ${APP}`, 'content-type': 'application/json' },
        body: '{}',
      },
    );
    expect(response.status).toBe(403);
    expect(sim.user('ok.app4@contoso.test')?.resetsApplied).toBe(0);
  });
});

describe('token facts and app-only settings', () => {
  it('tells an app-only token from a delegated one, and an opaque one from both', () => {
    expect(tokenFacts(APP)).toEqual({ identity: 'app', permissions: ['User-PasswordProfile.ReadWrite.All'] });
    expect(
      tokenFacts(unsignedToken({ scp: 'User.Read.All UserAuthenticationMethod.ReadWrite.All' })),
    ).toEqual({
      identity: 'user',
      permissions: ['User.Read.All', 'UserAuthenticationMethod.ReadWrite.All'],
    });
    expect(tokenFacts('opaque')).toEqual({ permissions: [] });
  });

  it('names what each method is missing', () => {
    const app = tokenFacts(unsignedToken({ roles: ['User.Read.All'] }));
    expect(missingPermissions('password-profile', app)).toEqual([
      'User-PasswordProfile.ReadWrite.All (application)',
    ]);
    expect(missingPermissions('reset-password', app)[0]).toMatch(
      /Graph does not allow resetPassword app-only/,
    );
    const operator = tokenFacts(
      unsignedToken({ scp: 'User.Read.All UserAuthenticationMethod.ReadWrite.All' }),
    );
    expect(missingPermissions('reset-password', operator)).toEqual([]);
    expect(missingPermissions('password-profile', operator)).toEqual([
      'User-PasswordProfile.ReadWrite.All (delegated)',
    ]);
    expect(missingPermissions('password-profile', tokenFacts('opaque'))).toEqual([]);
  });

  it('reads the app-only credential from BULK_RESET_GRAPH_AUTH, and refuses a kind it does not know', () => {
    expect(appCredentialFromEnv({})).toBeUndefined();
    expect(
      appCredentialFromEnv({
        BULK_RESET_GRAPH_AUTH: 'certificate',
        AZURE_CLIENT_CERTIFICATE_PATH: '/etc/app.pem',
      }),
    ).toMatchObject({ kind: 'certificate', certificatePath: '/etc/app.pem' });
    expect(() => appCredentialFromEnv({ BULK_RESET_GRAPH_AUTH: 'password' })).toThrow(
      /certificate, managed-identity, workload-identity, client-secret; not "password"/,
    );
    expect(isAppOnlyConfig({ authDir: '/x', app: { kind: 'managed-identity' } })).toBe(true);
    expect(isAppOnlyConfig({ authDir: '/x' })).toBe(false);
    expect(isAppOnlyConfig({ authDir: '/x', graphToken: APP })).toBe(true);
  });
});
