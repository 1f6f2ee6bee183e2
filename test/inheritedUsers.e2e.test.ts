/**
 * Users a job run inherited from an earlier run (continue-as-new) report only by signal. One whose
 * workflow is ended without reporting, as an operator might terminate it from the Web UI, must still get
 * an outcome, and the job must still end: before the job asked Temporal about them, it waited forever.
 */
import { progressQuery } from '../workflows';
import { FAST_POLICY, useStage, userWorkflowIdOf, waitUntil } from './support/harness';
import { finishedJob, startStageJob, writeCheckedCsv } from './support/jobs';
import { upnCsv } from './support/users';

/** Every operation runs this long, so the users are still in flight when one is terminated. */
const OPERATION_SECONDS = 30;

const stage = useStage({ retryAfterSeconds: 1, operationSeconds: OPERATION_SECONDS });

test('a user terminated after the job continued as new gets an outcome, and the job ends', async () => {
  const users = Array.from(
    { length: 12 },
    (_, index) => `ok.u${String(index + 1).padStart(6, '0')}@contoso.test`,
  );
  const csv = await writeCheckedCsv(stage, 'inherited.csv', upnCsv(users));
  // Starting all twelve passes the small history limit, so the first run hands them all to the next.
  const jobId = await startStageJob(stage, csv, {
    windowSize: users.length,
    policy: FAST_POLICY,
    maxHistoryEvents: 30,
    inheritedCheckMs: 1_000,
  });
  const job = stage.client.workflow.getHandle(jobId);
  await waitUntil('the job has continued as new', async () => (await job.query(progressQuery)).runs > 1);

  const terminatedId = await userWorkflowIdOf(stage, jobId, users[0]);
  const terminated = stage.client.workflow.getHandle(terminatedId);
  expect((await terminated.describe()).status.name).toBe('RUNNING');
  await terminated.terminate('stuck user, ended by hand');

  const { summary, report } = await finishedJob(stage, jobId, 500);
  expect(report.outcomes.map((outcome) => outcome.user)).toEqual(users);
  const [first, ...rest] = report.outcomes;
  expect(first.status).toBe('failed');
  expect(first.reason).toBe(`the user's workflow ${terminatedId} ended without an outcome: terminated`);
  // The check touched nobody else: the other inherited users reported as usual.
  for (const outcome of rest) expect(outcome.status).toBe('succeeded');
  expect(summary.counts).toMatchObject({ succeeded: users.length - 1, failed: 1 });

  // Ground truth: Graph took one reset per user, the terminated user's included; it is the only one
  // whose operation nobody saw through.
  for (const user of users) expect(stage.simulator.user(user)?.resetsAccepted).toBe(1);
  expect(stage.simulator.stats().earlyRequests).toBe(0);
});
