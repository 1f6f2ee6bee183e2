/**
 * Classifying a refused sign-in once, at the boundary: a 401 from Graph and a credential that cannot give
 * a token both become `SignInRequired`, which the user's workflow holds on instead of failing the user.
 */
import { ActivityFailure, ApplicationFailure, RetryState } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { StaticTokenCredential } from '../graph/credentials';
import { GraphClient } from '../graph/client';
import { GraphError } from '../graph/errors';
import { SIGN_IN_REQUIRED, createActivities, toActivityFailure } from '../activities/index';
import { isSignInRequired } from '../workflows/resetUser';
import type { StartResetResult } from '../workflows/types';
import { useSimulator } from './support/simulators';
import { rejectionOf } from './support/rejection';

const TOKEN = 'sign-in-test-token';

const sim = useSimulator({ token: TOKEN, retryAfterSeconds: 0.1 });

function activitiesWith(credential: ConstructorParameters<typeof GraphClient>[0]['credential']) {
  return createActivities({
    graph: new GraphClient({ baseUrl: sim.baseUrl, credential }),
    dataDir: '/nonexistent/bulk-reset-test',
    userKeySecret: Buffer.alloc(32),
  });
}

async function activityError(run: () => Promise<unknown>): Promise<ApplicationFailure> {
  return rejectionOf(run(), ApplicationFailure, 'the activity');
}

function asActivityFailure(cause: Error): ActivityFailure {
  return new ActivityFailure(
    'activity failed',
    'startReset',
    '1',
    RetryState.NON_RETRYABLE_FAILURE,
    '',
    cause,
  );
}

describe('a refused sign-in at the activity boundary', () => {
  it('turns a 401 on the reset into a non-retryable SignInRequired that Graph did not apply', async () => {
    const activities = activitiesWith(new StaticTokenCredential(TOKEN));
    sim.revokeToken();
    try {
      const failure = await activityError(() =>
        new MockActivityEnvironment({ attempt: 1 }).run(activities.startReset, {
          jobId: 'job-1',
          user: 'held@contoso.com',
        }),
      );
      expect(failure.type).toBe(SIGN_IN_REQUIRED);
      expect(failure.nonRetryable).toBe(true);
      expect(failure.details?.[0]).toMatchObject({ kind: 'auth', httpStatus: 401, ambiguous: false });
      expect(failure.message).toContain('bulk-reset login');
      expect(failure.message).not.toContain(TOKEN);
      expect(sim.user('held@contoso.com')?.resetsAccepted ?? 0).toBe(0);
    } finally {
      sim.restoreToken();
    }
    // Restored: the same request goes through.
    const accepted: StartResetResult = await new MockActivityEnvironment({ attempt: 1 }).run(
      activities.startReset,
      {
        jobId: 'job-1',
        user: 'held@contoso.com',
      },
    );
    expect(accepted.operationUrl).toBeTruthy();
    expect(sim.user('held@contoso.com')?.resetsAccepted).toBe(1);
  });

  it('turns a 401 on a poll into SignInRequired too', async () => {
    const activities = activitiesWith(new StaticTokenCredential(TOKEN));
    const accepted: StartResetResult = await new MockActivityEnvironment({ attempt: 1 }).run(
      activities.startReset,
      {
        jobId: 'job-1',
        user: 'polled@contoso.com',
      },
    );
    sim.revokeToken();
    try {
      const failure = await activityError(() =>
        new MockActivityEnvironment({ attempt: 1 }).run(activities.pollOperation, {
          user: 'polled@contoso.com',
          operationUrl: accepted.operationUrl as string,
        }),
      );
      expect(failure.type).toBe(SIGN_IN_REQUIRED);
      expect(failure.nonRetryable).toBe(true);
    } finally {
      sim.restoreToken();
    }
  });

  it('turns a credential that cannot give a token (sign-in required) into SignInRequired, without calling Graph', async () => {
    const activities = activitiesWith({
      getToken: () => Promise.reject(new Error('AADSTS50173: the grant has expired for admin@contoso.test')),
    });
    const requestsBefore = sim.stats().requests;
    const failure = await activityError(() =>
      new MockActivityEnvironment({ attempt: 1 }).run(activities.startReset, {
        jobId: 'job-1',
        user: 'nobody@contoso.com',
      }),
    );
    expect(failure.type).toBe(SIGN_IN_REQUIRED);
    expect(failure.details?.[0]).toMatchObject({ kind: 'auth', graphCode: 'SignInRequired' });
    expect(failure.message).not.toContain('admin@contoso.test');
    expect(sim.stats().requests).toBe(requestsBefore);
  });

  it('leaves a refused sign-in to Temporal retries for a call the workflow does not hold for', () => {
    const failure = toActivityFailure(
      new GraphError('Graph refused the token', {
        kind: 'auth',
        status: 401,
        code: 'InvalidAuthenticationToken',
      }),
      'a@contoso.com',
      { retrySignIn: true },
    ) as ApplicationFailure;
    expect(failure.type).not.toBe(SIGN_IN_REQUIRED);
    expect(failure.nonRetryable).toBe(false);
  });
});

describe('isSignInRequired (the workflow side)', () => {
  const failureFor = (error: GraphError) =>
    asActivityFailure(toActivityFailure(error, 'a@contoso.com') as ApplicationFailure);

  it('is true for a 401 and for a missing token', () => {
    expect(
      isSignInRequired(
        failureFor(new GraphError('no', { kind: 'auth', status: 401, code: 'InvalidAuthenticationToken' })),
      ),
    ).toBe(true);
    expect(isSignInRequired(failureFor(new GraphError('no', { kind: 'auth', code: 'SignInRequired' })))).toBe(
      true,
    );
  });

  it('is false for throttling, outages, refusals about the user and lost answers', () => {
    for (const error of [
      new GraphError('slow down', { kind: 'transient', status: 429, code: 'TooManyRequests' }),
      new GraphError('down', { kind: 'transient', status: 503, code: 'ServiceUnavailable' }),
      new GraphError('denied', { kind: 'permanent', status: 403, code: 'Authorization_RequestDenied' }),
      new GraphError('dropped', { kind: 'transient', code: 'NetworkError', ambiguous: true }),
    ]) {
      expect(isSignInRequired(failureFor(error))).toBe(false);
    }
    expect(isSignInRequired(new Error('anything else'))).toBe(false);
  });
});
