/**
 * A job starts a batch of users through a local activity, so the users run before the job's workflow task
 * that started them is recorded. When that task is lost (its worker killed, the server restarted) Temporal
 * runs it again from the job's history, where the users' reports may already be: they arrive before the
 * job has put those users in flight again. Every such report must still count, once; the chaos run found
 * users reported "ended without an outcome" whose passwords Graph had changed.
 */
import { bundleWorkflowCode } from '@temporalio/worker';
import type { ActivityInterceptorsFactory } from '@temporalio/worker';
import { workflowBundleOptions } from '../worker/bundle';
import { createWorker } from '../worker';
import type { StartUsersInput } from '../workflows/types';
import { FAST_POLICY, useStage, waitUntil } from './support/harness';
import { finishedJob, startStageJob, writeCheckedCsv } from './support/jobs';
import { LOSE_TASK_MARK } from './support/loseStartTask';
import { numberedUsers, upnCsv } from './support/users';

const stage = useStage({}, { worker: false });

/** How many startUsers answers were marked so that their workflow task is lost. */
let lostTasks = 0;

/**
 * The first startUsers answers only once every user it started has finished (and so has sent its report),
 * and carries the mark that makes the job's workflow task fail.
 */
const loseFirstStart: ActivityInterceptorsFactory = (context) => ({
  inbound: {
    async execute(input, next) {
      const result = await next(input);
      if (context.info.activityType !== 'startUsers' || lostTasks > 0) return result;
      lostTasks += 1;
      const [{ users }] = input.args as [StartUsersInput];
      await waitUntil(
        "the batch's users have finished before the job's task is lost",
        async () => {
          for (const { workflowId } of users) {
            const { status } = await stage.client.workflow.getHandle(workflowId).describe();
            if (status.name !== 'COMPLETED') return false;
          }
          return true;
        },
        60_000,
      );
      return { ...(result as object), [LOSE_TASK_MARK]: true };
    },
  },
});

test('users whose reports came before the job put them in flight again each get their own outcome', async () => {
  const bundle = await bundleWorkflowCode({
    ...workflowBundleOptions({ ...console, trace() {}, debug() {}, info() {}, warn() {}, log() {} }),
    workflowInterceptorModules: [require.resolve('./support/loseStartTask')],
  });
  const worker = await createWorker(stage.settings, {
    workflowBundle: bundle,
    interceptors: { activity: [loseFirstStart] },
  });
  const running = worker.run();
  try {
    const users = numberedUsers('ok', 6, 'lost.test');
    const csv = await writeCheckedCsv(stage, 'lost.csv', upnCsv(users));
    // The periodic check (which reads an ended user's own outcome too) is kept out of the way: the reports
    // alone must settle these users.
    const jobId = await startStageJob(stage, csv, {
      policy: FAST_POLICY,
      windowSize: 3,
      inheritedCheckMs: 10 * 60_000,
    });
    const { summary, report } = await finishedJob(stage, jobId);
    expect(lostTasks).toBe(1);
    expect(report.outcomes.map((outcome) => [outcome.user, outcome.status, outcome.reason])).toEqual(
      users.map((user) => [user, 'succeeded', undefined]),
    );
    expect(summary.counts).toMatchObject({ succeeded: users.length, failed: 0, skipped: 0 });
    // Ground truth: each user's password was reset once, by one request.
    for (const user of users) expect(stage.simulator.user(user)?.posts).toBe(1);
  } finally {
    worker.shutdown();
    await running;
  }
});
