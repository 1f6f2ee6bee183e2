/**
 * Jobs start their users in batches through an activity, not as children: each user reports once, by
 * signal, carries no search attribute, and the job's history grows by about two events per user instead
 * of five. The guarantees of children still hold: one outcome per row, a user ended by hand is found, a
 * user started by an earlier attempt of the activity is in flight rather than skipped.
 */
import { WorkflowIdReusePolicy } from '@temporalio/common';
import { controlJob } from '../client/jobs';
import { progressQuery } from '../workflows';
import {
  DEFAULT_RESET_POLICY,
  JOB_ID_SEARCH_ATTRIBUTE,
  type ResetUserInput,
  userWorkflowsQuery,
} from '../workflows/types';
import { FAST_POLICY, useStage, userWorkflowIdOf, waitUntil } from './support/harness';
import { finishedJob, startStageJob, writeCheckedCsv } from './support/jobs';
import { numberedUsers, upnCsv } from './support/users';

const stage = useStage({ retryAfterSeconds: 1 });

/** Every event of every run of the job's workflow (continue-as-new included). */
async function jobEvents(jobId: string): Promise<number> {
  let events = 0;
  for await (const run of stage.client.workflow.list({ query: `WorkflowId = "${jobId}"` })) {
    const history = await stage.client.workflow.getHandle(jobId, run.runId).fetchHistory();
    events += history.events?.length ?? 0;
  }
  return events;
}

test("a job records about two events per user; each user reports once and is nobody's child", async () => {
  const users = numberedUsers('ok', 120, 'batch.test');
  const csv = await writeCheckedCsv(stage, 'batched.csv', upnCsv(users));
  const jobId = await startStageJob(stage, csv, { policy: FAST_POLICY, windowSize: 40 });
  const { summary, report } = await finishedJob(stage, jobId);
  expect(report.outcomes.map((outcome) => [outcome.user, outcome.status])).toEqual(
    users.map((user) => [user, 'succeeded']),
  );
  expect(summary.counts).toMatchObject({ succeeded: users.length, skipped: 0, failed: 0 });
  for (const user of users) expect(stage.simulator.user(user)?.resetsAccepted).toBe(1);

  // Temporal's side: each user's workflow has no parent and no search attribute, and sent one report.
  for (const user of users) {
    const handle = stage.client.workflow.getHandle(await userWorkflowIdOf(stage, jobId, user));
    const description = await handle.describe();
    expect(description.parentExecution).toBeUndefined();
    expect(description.typedSearchAttributes.get(JOB_ID_SEARCH_ATTRIBUTE)).toBeUndefined();
    const signals = ((await handle.fetchHistory()).events ?? []).flatMap((event) => {
      const sent = event.signalExternalWorkflowExecutionInitiatedEventAttributes;
      return sent ? [[sent.signalName, sent.workflowExecution?.workflowId]] : [];
    });
    expect(signals).toEqual([['userFinished', jobId]]);
  }
  // The job's own history: about two events per user (a signal and its share of workflow tasks).
  const perUser = (await jobEvents(jobId)) / users.length;
  console.log(`job history events per user: ${perUser.toFixed(2)}`);
  expect(perUser).toBeLessThanOrEqual(2.5);

  // And the users are listed by their ids' prefix.
  await waitUntil(
    'visibility lists every user of the job',
    async () =>
      (await stage.client.workflow.count(userWorkflowsQuery(jobId, 'Completed'))).count === users.length,
    30_000,
  );
});

/**
 * A job held for approval (its rows prepared, nobody started yet) and its first user's workflow started by
 * hand as an attempt of startUsers that was lost would have left it: reporting to the job, or (`report:
 * false`) as a user's workflow that never tells the job anything.
 */
async function startFirstUserByHand(
  name: string,
  users: string[],
  { report, startDelay }: { report: boolean; startDelay?: string },
): Promise<{ jobId: string; workflowId: string }> {
  const csv = await writeCheckedCsv(stage, `${name}.csv`, upnCsv(users));
  const jobId = await startStageJob(stage, csv, {
    policy: FAST_POLICY,
    startedBy: 'alice@ops',
    approvalTimeoutMs: 120_000,
    inheritedCheckMs: 1_000,
  });
  const job = stage.client.workflow.getHandle(jobId);
  await waitUntil(
    'the job awaits approval',
    async () => (await job.query(progressQuery)).phase === 'awaiting-approval',
  );
  const workflowId = await userWorkflowIdOf(stage, jobId, users[0]);
  const input: ResetUserInput = {
    jobId,
    target: {
      row: 2,
      user: users[0],
      idKind: 'userPrincipalName',
      key: workflowId.slice(`${jobId}/user-`.length),
    },
    policy: { ...DEFAULT_RESET_POLICY, ...FAST_POLICY },
    polls: 'local',
    followThrough: true,
    endState: 'outcome',
    ...(report && { reportTo: jobId }),
  };
  await stage.client.workflow.start('resetUser', {
    workflowId,
    taskQueue: stage.settings.taskQueue,
    args: [input],
    workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
    ...(startDelay && { startDelay }),
  });
  return { jobId, workflowId };
}

/** Approves the job, waits for it: every user succeeded, by one request each. */
async function approveAndExpectEverySucceeded(jobId: string, users: string[]): Promise<void> {
  await controlJob(stage.client, jobId, 'approve', { by: 'bob@ops' });
  const { summary, report } = await finishedJob(stage, jobId);
  expect(report.outcomes.map((outcome) => [outcome.row, outcome.status, outcome.reason])).toEqual(
    users.map((_, index) => [index + 2, 'succeeded', undefined]),
  );
  expect(summary.counts).toMatchObject({ succeeded: users.length, skipped: 0, failed: 0 });
  for (const user of users) expect(stage.simulator.user(user)?.posts).toBe(1);
}

test('a user already started by an earlier attempt is in flight, not skipped: it reports once, reset once', async () => {
  const users = numberedUsers('ok', 3, 'again.test');
  // Still running when the job starts its users.
  const { jobId } = await startFirstUserByHand('again', users, { report: true, startDelay: '3 seconds' });
  await approveAndExpectEverySucceeded(jobId, users);
});

test.each([
  {
    name: 'early',
    report: true,
    about: 'a user that reported before the job put it in flight keeps its own outcome',
  },
  {
    name: 'silent',
    report: false,
    about: 'a user whose workflow ended without telling the job is given the outcome that workflow returned',
  },
])('$about', async ({ name, report }) => {
  const users = numberedUsers('ok', 3, `${name}.test`);
  const { jobId, workflowId } = await startFirstUserByHand(name, users, { report });
  await waitUntil(
    'the first user has finished before the job starts anyone',
    async () => (await stage.client.workflow.getHandle(workflowId).describe()).status.name === 'COMPLETED',
  );
  await approveAndExpectEverySucceeded(jobId, users);
});

test('a user ended by hand in the run that started it gets an outcome, and the job ends', async () => {
  const users = [...numberedUsers('slow', 1, 'ended.test'), ...numberedUsers('ok', 4, 'ended.test')];
  const csv = await writeCheckedCsv(stage, 'ended.csv', upnCsv(users));
  const jobId = await startStageJob(stage, csv, { policy: FAST_POLICY, inheritedCheckMs: 1_000 });
  const job = stage.client.workflow.getHandle(jobId);
  await waitUntil(
    'the job has started its users',
    async () => (await job.query(progressQuery)).dispatched > 0,
  );
  const terminatedId = await userWorkflowIdOf(stage, jobId, users[0]);
  const terminated = stage.client.workflow.getHandle(terminatedId);
  await waitUntil('the slow user runs', async () => {
    try {
      return (await terminated.describe()).status.name === 'RUNNING';
    } catch {
      return false;
    }
  });
  await terminated.terminate('stuck user, ended by hand');

  const { summary, report } = await finishedJob(stage, jobId);
  expect(report.outcomes.map((outcome) => outcome.user)).toEqual(users);
  const [first, ...rest] = report.outcomes;
  expect([first.status, first.reason]).toEqual([
    'failed',
    `the user's workflow ${terminatedId} ended without an outcome: terminated`,
  ]);
  for (const outcome of rest) expect(outcome.status).toBe('succeeded');
  expect(summary.counts).toMatchObject({ succeeded: users.length - 1, failed: 1 });
  expect((await job.query(progressQuery)).runs).toBe(1);
});
