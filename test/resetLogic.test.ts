/**
 * The pure decisions inside resetUser: how long to wait before the next poll, and what a failed
 * resetPassword request means for the next step.
 */
import { ActivityFailure, ApplicationFailure, RetryState, TimeoutFailure } from '@temporalio/common';
import { nextWaitMs, resendWaitMs, startFailureOf } from '../workflows/resetUser';
import { DEFAULT_RESET_POLICY, type GraphFailureDetails, type ResetPolicy } from '../workflows/types';

const policy: ResetPolicy = {
  ...DEFAULT_RESET_POLICY,
  minWaitMs: 1_000,
  maxWaitMs: 60_000,
  defaultWaitMs: 2_000,
};

describe('nextWaitMs', () => {
  test("waits exactly Graph's Retry-After when it is within bounds", () => {
    expect(nextWaitMs(7_500, 0, policy)).toBe(7_500);
  });

  test('clamps a Retry-After below the minimum or above the maximum', () => {
    expect(nextWaitMs(0, 0, policy)).toBe(1_000);
    expect(nextWaitMs(250, 0, policy)).toBe(1_000);
    expect(nextWaitMs(3_600_000, 0, policy)).toBe(60_000);
  });

  test('without Retry-After: the default, doubled for each answer in a row without one, up to the maximum', () => {
    expect([1, 2, 3, 4, 5, 6, 7].map((answers) => nextWaitMs(undefined, answers, policy))).toEqual([
      2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000,
    ]);
    expect(nextWaitMs(undefined, 10_000, policy)).toBe(60_000);
  });
});

describe('resendWaitMs', () => {
  test("never sends again before a 429's or 503's Retry-After, even past the policy's maximum", () => {
    expect(resendWaitMs(7_500, 1, policy)).toBe(7_500);
    expect(resendWaitMs(3_600_000, 1, policy)).toBe(3_600_000);
    expect(resendWaitMs(120_000, 4, policy)).toBe(120_000);
  });

  test('a tiny Retry-After is raised to the minimum; without one, the default doubles per request sent', () => {
    expect(resendWaitMs(250, 1, policy)).toBe(1_000);
    expect([1, 2, 3, 6].map((sends) => resendWaitMs(undefined, sends, policy))).toEqual([
      2_000, 4_000, 8_000, 60_000,
    ]);
  });
});

function activityFailure(cause: Error): ActivityFailure {
  const failure = new ActivityFailure(
    'activity failed',
    'startReset',
    '1',
    RetryState.MAXIMUM_ATTEMPTS_REACHED,
    '',
    cause,
  );
  return failure;
}

function graphFailure(details: Partial<GraphFailureDetails>): ActivityFailure {
  const full: GraphFailureDetails = {
    graphCode: 'x',
    ambiguous: false,
    kind: 'transient',
    ...details,
  };
  return activityFailure(
    ApplicationFailure.create({ message: 'Graph said no', type: 'GraphError', details: [full] }),
  );
}

describe('startFailureOf', () => {
  test('a permanent Graph error is final', () => {
    const failure = startFailureOf(
      graphFailure({ kind: 'permanent', httpStatus: 403, graphCode: 'Authorization_RequestDenied' }),
    );
    expect(failure).toMatchObject({ retryable: false, ambiguous: false, message: 'Graph said no' });
    expect(failure.details?.graphCode).toBe('Authorization_RequestDenied');
  });

  test('a 429 is sent again, not ambiguous, with its Retry-After', () => {
    const failure = startFailureOf(graphFailure({ httpStatus: 429, retryAfterMs: 5_000 }));
    expect(failure).toMatchObject({ retryable: true, ambiguous: false, why: 'Graph answered 429' });
    expect(failure.details?.retryAfterMs).toBe(5_000);
  });

  test('an expired token is sent again', () => {
    expect(startFailureOf(graphFailure({ kind: 'auth', httpStatus: 401 })).retryable).toBe(true);
  });

  test('a dropped connection is ambiguous: the reset may have landed', () => {
    expect(startFailureOf(graphFailure({ ambiguous: true, graphCode: 'NetworkError' }))).toMatchObject({
      retryable: true,
      ambiguous: true,
    });
  });

  test('an activity that timed out (a lost worker) is ambiguous', () => {
    const failure = startFailureOf(
      activityFailure(new TimeoutFailure('timed out', undefined, 'START_TO_CLOSE')),
    );
    expect(failure).toMatchObject({ retryable: true, ambiguous: true });
    expect(failure.message).toContain('worker lost');
  });

  test('any other failure is retried and not taken as ambiguous', () => {
    expect(startFailureOf(activityFailure(ApplicationFailure.create({ message: 'no token' })))).toMatchObject(
      {
        retryable: true,
        ambiguous: false,
        message: 'no token',
      },
    );
  });
});
