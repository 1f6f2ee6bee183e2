/**
 * What an operator sees in the Temporal Web UI: a failed user's workflow ends Failed (red, and
 * filterable by ExecutionStatus), so one visibility query lists exactly a job's failed users; every
 * other outcome completes. The job's and each user's page say what they are in their current details
 * (read through the codec, like the rest of the history), without the user's name.
 */
import { USER_FAILED_TYPE, userWorkflowsQuery } from '../workflows/types';
import { FAST_POLICY, useStage, userWorkflowIdOf, waitUntil } from './support/harness';
import { runJob } from './support/jobs';
import { upnCsv } from './support/users';

const stage = useStage({ retryAfterSeconds: 0.2 });

const USERS = [
  'ok.1@webui.test',
  'denied.1@webui.test',
  'ok.2@webui.test',
  'missing.1@webui.test',
  'badpw.1@webui.test',
  'opfail.1@webui.test',
  'ok.3@webui.test',
];

/** The Web UI's metadata query: what it shows as the workflow's current details. */
async function currentDetails(workflowId: string): Promise<string> {
  const metadata = await stage.client.workflow
    .getHandle(workflowId)
    .query<{ currentDetails?: string }>('__temporal_workflow_metadata');
  return metadata.currentDetails ?? '';
}

test("one visibility query lists exactly a job's failed users, and only they ended Failed", async () => {
  const { jobId, report } = await runJob(stage, 'webui.csv', upnCsv(USERS), { policy: FAST_POLICY });

  const failedRows = report.outcomes.filter((outcome) => outcome.status === 'failed');
  expect(failedRows.map((outcome) => outcome.user).sort()).toEqual(
    ['badpw.1@webui.test', 'denied.1@webui.test', 'missing.1@webui.test', 'opfail.1@webui.test'].sort(),
  );
  const failedIds = await Promise.all(
    failedRows.map((outcome) => userWorkflowIdOf(stage, jobId, outcome.user)),
  );

  const query = userWorkflowsQuery(jobId, 'Failed');
  // Visibility catches up with the histories a moment later.
  await waitUntil(
    'visibility lists the failed users',
    async () => (await stage.client.workflow.count(query)).count === failedRows.length,
    30_000,
  );
  const listed: string[] = [];
  for await (const execution of stage.client.workflow.list({ query })) listed.push(execution.workflowId);
  expect(listed.sort()).toEqual([...failedIds].sort());

  // Ground truth per user: Temporal's own status, and the failure that carries the outcome.
  for (const outcome of report.outcomes) {
    const handle = stage.client.workflow.getHandle(await userWorkflowIdOf(stage, jobId, outcome.user));
    const { status } = await handle.describe();
    expect([outcome.user, status.name]).toEqual([
      outcome.user,
      outcome.status === 'failed' ? 'FAILED' : 'COMPLETED',
    ]);
    if (outcome.status !== 'failed') continue;
    const failure = await handle.result().then(
      () => undefined,
      (error: Error) => error.cause as Error & { type?: string; details?: unknown[] },
    );
    expect(failure?.type).toBe(USER_FAILED_TYPE);
    expect(failure?.message).toContain(`row ${outcome.row} of job ${jobId} failed`);
    expect(failure?.message).not.toContain(outcome.user);
    expect(failure?.details?.[0]).toMatchObject({
      row: outcome.row,
      status: 'failed',
      graphCode: outcome.graphCode,
    });
  }
  // The completed ones are the rest: nothing else ended Failed.
  const completed = await stage.client.workflow.count(userWorkflowsQuery(jobId, 'Completed'));
  expect(completed.count).toBe(USERS.length - failedRows.length);

  // Current details: the job says what it is; a user says its row and outcome; neither names a user.
  const jobText = await currentDetails(jobId);
  expect(jobText).toContain('CSV `webui.csv`, 7 rows');
  expect(jobText).toContain(`failed ${failedRows.length}`);
  expect(jobText).toContain('succeeded 3');
  expect(jobText).toContain(query);
  const denied = report.outcomes.find((outcome) => outcome.user === 'denied.1@webui.test');
  const deniedText = await currentDetails(await userWorkflowIdOf(stage, jobId, 'denied.1@webui.test'));
  expect(deniedText).toContain(`**failed**: row ${denied?.row} of job \`${jobId}\` (HTTP 403`);
  for (const text of [jobText, deniedText]) for (const user of USERS) expect(text).not.toContain(user);
});
