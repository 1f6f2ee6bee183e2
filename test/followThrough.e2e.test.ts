/**
 * An accepted reset is followed to its end, and the counts in the report mean what they say: on the real
 * dev server, worker and simulator.
 */
import type { AccessToken, TokenCredential } from '@azure/identity';
import { setTimeout as sleep } from 'node:timers/promises';
import type { StartJobOptions } from '../client/jobs';
import type { ResetOutcome } from '../workflows/types';
import { createWorker } from '../worker';
import {
  FAST_POLICY,
  type ReportJson,
  type RunningWorker,
  useStage,
  userWorkflowIdOf,
  waitUntil,
  workflowBundle,
} from './support/harness';
import { finishedJob, startStageJob, writeCheckedCsv } from './support/jobs';
import { upnCsv } from './support/users';

// Each test (or describe block) starts the worker it needs.
const stage = useStage({ retryAfterSeconds: 0.2 }, { worker: false });

async function reportOf(jobId: string): Promise<ReportJson> {
  return (await finishedJob(stage, jobId)).report;
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
    const csv = await writeCheckedCsv(stage, 'lost.csv', upnCsv([user]));
    const jobId = await startStageJob(stage, csv, {
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

/** Runs a job of these users to its report, with the given policy changes; outcomes by user. */
async function runUsers(
  name: string,
  users: string[],
  options: StartJobOptions = {},
): Promise<{ jobId: string; byUser: Map<string, ResetOutcome> }> {
  const csv = await writeCheckedCsv(stage, `${name}.csv`, upnCsv(users));
  const jobId = await startStageJob(stage, csv, {
    ...options,
    policy: { ...FAST_POLICY, ...options.policy },
  });
  const report = await reportOf(jobId);
  return { jobId, byUser: new Map(report.outcomes.map((outcome) => [outcome.user, outcome])) };
}

/** Every run of a user's workflow (continue-as-new keeps the id), with its history length. */
async function runsOf(workflowId: string): Promise<number[]> {
  const lengths: number[] = [];
  for await (const run of stage.client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) {
    lengths.push(run.historyLength);
  }
  return lengths;
}

describe('with a worker', () => {
  let worker: RunningWorker;
  beforeAll(async () => {
    worker = await stage.startWorker();
  });
  afterAll(async () => {
    await worker.stop();
  });

  test('an operation that answers 404 before it is visible is polled again, and the user succeeds', async () => {
    const users = ['pollmissing2.a@follow.test', 'pollmissingnoretry3.b@follow.test'];
    const { byUser } = await runUsers('missing', users);
    for (const user of users) {
      const outcome = byUser.get(user) as ResetOutcome;
      const seen = stage.simulator.user(user);
      expect(outcome.status).toBe('succeeded');
      // Ground truth: every GET Graph saw is counted, the 404s included, and none came early.
      expect(outcome.polls).toBe(seen?.polls);
      expect(seen?.posts).toBe(1);
      expect(seen?.earlyRequests).toBe(0);
    }
    expect(stage.simulator.user(users[0])?.polls).toBe(3);
    expect(stage.simulator.user(users[1])?.polls).toBe(4);
  });

  test('an operation that answers 404 until the deadline ends unconfirmed, saying what was seen last', async () => {
    const user = 'pollmissingall.c@follow.test';
    const { byUser } = await runUsers('missing-always', [user], { policy: { deadlineMs: 6_000 } });
    const outcome = byUser.get(user) as ResetOutcome;
    expect(outcome.status).toBe('unconfirmed');
    expect(outcome.reason).toMatch(/404/);
    expect(outcome.reason).toMatch(/lastPasswordChangeDateTime/);
    expect(outcome.polls).toBeGreaterThan(1);
    expect(outcome.polls).toBe(stage.simulator.user(user)?.polls);
    expect(stage.simulator.user(user)?.earlyRequests).toBe(0);
  });

  test('statuses this tool does not know are polled again: never success, never failure', async () => {
    const users = ['pollunknown3.d@follow.test', 'pollunknownfail2.e@follow.test'];
    const { byUser } = await runUsers('unknown', users);
    expect(byUser.get(users[0])).toMatchObject({ status: 'succeeded', polls: 4 });
    expect(byUser.get(users[1])).toMatchObject({ status: 'failed', polls: 3, retryable: false });
    for (const user of users) expect(stage.simulator.user(user)?.polls).toBe(byUser.get(user)?.polls);
  });

  test('a user polled for long continues as new, keeping its deadline and counts; no run outgrows its bound', async () => {
    const user = 'pollunknownall.f@follow.test';
    const { jobId, byUser } = await runUsers('long', [user], {
      policy: { deadlineMs: 15_000 },
      userMaxHistoryEvents: 60,
    });
    const outcome = byUser.get(user) as ResetOutcome;
    expect(outcome.status).toBe('unconfirmed');
    expect(outcome.polls).toBe(stage.simulator.user(user)?.polls);
    expect(outcome.startAttempts).toBe(1);
    // The deadline is the user's, not each run's: it ended about 15 s after it began.
    const tookMs = Date.parse(outcome.finishedAt as string) - Date.parse(outcome.startedAt as string);
    expect(tookMs).toBeGreaterThanOrEqual(15_000);
    expect(tookMs).toBeLessThan(30_000);
    const runs = await runsOf(await userWorkflowIdOf(stage, jobId, user));
    console.log(`a user polled for 15 s at 100 ms waits: ${runs.length} runs, histories ${runs.join(', ')}`);
    expect(runs.length).toBeGreaterThan(1);
    expect(Math.max(...runs)).toBeLessThanOrEqual(60 + 12);
  });
  test('a sign-in refused for longer than --sign-in-hold ends the user failed (retryable), nothing sent', async () => {
    const user = 'ok.held@follow.test';
    const control = (action: string) =>
      fetch(`${new URL(stage.simulator.baseUrl).origin}/_sim/${action}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${stage.env.GRAPH_TOKEN}` },
      });
    await control('revoke-token');
    try {
      const { byUser } = await runUsers('held', [user], { policy: { maxSignInHoldMs: 5_000 } });
      const outcome = byUser.get(user) as ResetOutcome;
      expect(outcome).toMatchObject({ status: 'failed', retryable: true, startAttempts: 0 });
      expect(outcome.reason).toMatch(/sign-in was refused .* --sign-in-hold/);
      expect(stage.simulator.user(user)?.resetsAccepted ?? 0).toBe(0);
    } finally {
      await control('restore-token');
    }
  });

  test("a user's workflow completes with its outcome even when its job is gone", async () => {
    const user = 'pollunknown20.g@follow.test';
    const csv = await writeCheckedCsv(stage, 'gone.csv', upnCsv([user]));
    const jobId = await startStageJob(stage, csv, { policy: FAST_POLICY });
    await waitUntil('the user is polling', () =>
      Promise.resolve((stage.simulator.user(user)?.polls ?? 0) > 0),
    );
    await stage.client.workflow.getHandle(jobId).terminate('ended by hand while a user was in flight');
    const userHandle = stage.client.workflow.getHandle<() => Promise<ResetOutcome>>(
      await userWorkflowIdOf(stage, jobId, user),
    );
    const outcome = await userHandle.result();
    expect(outcome).toMatchObject({ status: 'succeeded', polls: 21 });
    expect((await userHandle.describe()).status.name).toBe('COMPLETED');
  });
});
