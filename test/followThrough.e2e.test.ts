/**
 * An accepted reset is followed to its end, and the counts in the report mean what they say: on the real
 * dev server, worker and simulator.
 */
import type { AccessToken, TokenCredential } from '@azure/identity';
import { setTimeout as sleep } from 'node:timers/promises';
import { checkCsv, startJob, waitForJob } from '../client/jobs';
import { createWorker } from '../worker';
import { DEFAULT_RESET_POLICY } from '../workflows/types';
import {
  FAST_POLICY,
  openStage,
  readJson,
  type ReportJson,
  type Stage,
  workflowBundle,
} from './support/harness';

let stage: Stage;

beforeAll(async () => {
  stage = await openStage({ retryAfterSeconds: 0.2 });
});

afterAll(async () => {
  await stage?.close();
});

async function reportOf(jobId: string): Promise<ReportJson> {
  const final = await waitForJob(stage.client, jobId, () => undefined, 200);
  if (final.state !== 'completed') throw new Error(`job ${jobId} did not complete: ${JSON.stringify(final)}`);
  return readJson<ReportJson>(final.summary.reportJsonPath);
}

/**
 * The simulator's token, except that the `hangOn`-th request for one waits longer than the reset's
 * activity may run: that request never leaves the worker, which then gives up on it as if it had died.
 */
class TokenThatHangsOnce implements TokenCredential {
  private calls = 0;
  constructor(
    private readonly token: string,
    private readonly hangOn: number,
    private readonly hangMs: number,
  ) {}

  async getToken(): Promise<AccessToken> {
    this.calls += 1;
    if (this.calls === this.hangOn) {
      await sleep(this.hangMs);
      throw new Error('no token this time');
    }
    return { token: this.token, expiresOnTimestamp: Date.now() + 3600_000 };
  }
}

test('a reset request lost before it left the worker is not counted as sent, nor its resend as ambiguous', async () => {
  const user = 'ok.lost-before-send@follow.test';
  // Request 1 is the baseline read; request 2 is the reset, which hangs past the activity's timeout.
  const credential = new TokenThatHangsOnce(stage.env.GRAPH_TOKEN as string, 2, 12_000);
  const worker = await createWorker(stage.settings, { workflowBundle: await workflowBundle() }, credential);
  const running = worker.run();
  try {
    const csv = await checkCsv(await stage.writeCsv('lost.csv', `userPrincipalName\n${user}\n`));
    const jobId = await startJob(stage.client, stage.settings.taskQueue, csv, {
      policy: { ...FAST_POLICY, requestTimeoutMs: 2_000 },
    });
    const report = await reportOf(jobId);
    const [outcome] = report.outcomes;
    expect(outcome.status).toBe('succeeded');
    // Ground truth: Graph saw one reset, and the report says one, with no resend after a lost answer.
    expect(stage.simulator.user(user)?.posts).toBe(1);
    expect(outcome.startAttempts).toBe(1);
    expect(outcome.ambiguousResends ?? 0).toBe(0);
  } finally {
    worker.shutdown();
    await running;
  }
});

test('a job whose policy could let a user history outgrow Temporal is refused by the worker, nothing sent', async () => {
  const worker = await stage.startWorker();
  try {
    const csv = await checkCsv(
      await stage.writeCsv('long.csv', 'userPrincipalName\nok.long-deadline@follow.test\n'),
    );
    // Straight through the client's workflow API, not startJob: the CLI's own check is not the guarantee.
    const jobId = `history-limit-${Date.now()}`;
    await stage.client.workflow.start('bulkReset', {
      workflowId: jobId,
      taskQueue: stage.settings.taskQueue,
      args: [
        {
          jobId,
          csv: { path: csv.path, sha256: csv.sha256 },
          windowSize: 10,
          policy: { ...DEFAULT_RESET_POLICY, deadlineMs: 4 * 3600_000 },
        },
      ],
    });
    const final = await waitForJob(stage.client, jobId, () => undefined, 200);
    expect(final.state === 'failed' && final.message).toMatch(/history events, past the 10000/);
    expect(stage.simulator.user('ok.long-deadline@follow.test')).toBeUndefined();
  } finally {
    await worker.stop();
  }
});
