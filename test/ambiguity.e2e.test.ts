/**
 * A resetPassword whose answer is lost after Graph took it: the workflow reads the user's
 * lastPasswordChangeDateTime, sees that the reset landed, and does not send it again. One that was lost
 * before Graph took it is sent again, counted and marked. The check costs a one-poll user one event.
 */
import { FAST_POLICY, openStage, type Stage, userWorkflowIdOf } from './support/harness';
import { resetsSeen } from './support/groundTruth';
import { runJob as runStageJob } from './support/jobs';
import { upnCsv } from './support/users';

let stage: Stage;

afterEach(async () => {
  await stage?.close();
});

/** Runs a job of these users on a fresh stage and returns its report. */
async function runJob(users: string[], simulator: Parameters<typeof openStage>[0] = {}) {
  stage = await openStage({ retryAfterSeconds: 0.3, ...simulator });
  await stage.startWorker();
  const { jobId, summary, report } = await runStageJob(stage, 'users.csv', upnCsv(users), {
    windowSize: 10,
    policy: FAST_POLICY,
  });
  const byUser = new Map(report.outcomes.map((outcome) => [outcome.user, outcome]));
  return { jobId, summary, report, byUser };
}

test('a reset applied before its connection dropped is confirmed by the password-change time and never re-sent', async () => {
  const landed = ['dropafter.a@contoso.test', 'dropafter.b@contoso.test', 'dropafter.c@contoso.test'];
  const lost = ['drop.a@contoso.test', 'drop.b@contoso.test'];
  const plain = 'ok.a@contoso.test';
  const { jobId, summary, byUser } = await runJob([...landed, ...lost, plain]);
  expect(summary.counts).toMatchObject({ succeeded: 6, failed: 0, unconfirmed: 0 });

  for (const user of landed) {
    const outcome = byUser.get(user);
    // Ground truth: Graph took exactly one reset for this user and applied it.
    expect(resetsSeen(stage.simulator, user)).toEqual({ user, posts: 1, accepted: 1, applied: 1 });
    expect(outcome).toMatchObject({
      status: 'succeeded',
      confirmedBy: 'passwordChange',
      startAttempts: 1,
      ambiguousResends: 0,
      polls: 0,
    });
    expect(outcome?.reason).toContain('lastPasswordChangeDateTime');
    expect(stage.simulator.user(user)?.polls).toBe(0);
  }
  for (const user of lost) {
    expect(resetsSeen(stage.simulator, user)).toEqual({ user, posts: 2, accepted: 1, applied: 1 });
    expect(byUser.get(user)).toMatchObject({ status: 'succeeded', startAttempts: 2, ambiguousResends: 1 });
    expect(byUser.get(user)?.confirmedBy).toBeUndefined();
  }
  expect(byUser.get(plain)).toMatchObject({ status: 'succeeded', startAttempts: 1, polls: 1 });
  expect(byUser.get(plain)?.confirmedBy).toBeUndefined();
  expect(stage.simulator.stats().earlyRequests).toBe(0);

  // The baseline read is one local-activity marker: a one-poll user stays within 30 events.
  const history = await stage.client.workflow
    .getHandle(await userWorkflowIdOf(stage, jobId, plain))
    .fetchHistory();
  const events = history.events?.length ?? 0;
  console.log(`a one-poll user's workflow took ${events} history events`);
  expect(events).toBeLessThanOrEqual(30);
});

test('a dropped reset whose operation is still running is waited for, not sent a second time', async () => {
  // Graph takes 0.6 s to apply an accepted reset: longer than the wait before the first look (0.2 s),
  // shorter than that plus the further wait (0.4 s). However fast or slow this machine is, the reset
  // must be confirmed without a second operation.
  const users = ['dropafter.slow1@contoso.test', 'dropafter.slow2@contoso.test'];
  const { byUser } = await runJob(users, { operationSeconds: 0.6 });
  for (const user of users) {
    expect(resetsSeen(stage.simulator, user)).toEqual({ user, posts: 1, accepted: 1, applied: 1 });
    expect(byUser.get(user)).toMatchObject({ status: 'succeeded', confirmedBy: 'passwordChange' });
  }
});

test('an accepted reset whose operation failed is re-sent after the check, and the resend is counted', async () => {
  // The dropped first reset's operation fails (opFail 1): the password never changed, so the check must
  // not confirm it; the resend's operation fails too and the user ends failed, with the resend counted.
  const user = 'dropafter.failing@contoso.test';
  const { byUser } = await runJob([user], { faults: { opFail: 1, seed: 'ambiguity' } });
  expect(resetsSeen(stage.simulator, user)).toEqual({ user, posts: 2, accepted: 2, applied: 0 });
  expect(byUser.get(user)).toMatchObject({ status: 'failed', startAttempts: 2, ambiguousResends: 1 });
  expect(byUser.get(user)?.confirmedBy).toBeUndefined();
});
