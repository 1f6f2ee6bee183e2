/**
 * Runbook controls on a running job, on the real dev server and simulator: pause, resume, cancel,
 * approval by a second operator, retry of failed rows, session revocation, plans, search attributes and
 * the blast-radius limit.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { usersSha256 } from '../jobs/jobFiles';
import { controlJob, waitForJob } from '../client/jobs';
import { retryFailed } from '../client/retry';
import type { ScenarioName } from '../simulator/graphSimulator';
import { JOB_ID_SEARCH_ATTRIBUTE, type JobProgress, userWorkflowsQuery } from '../workflows/types';
import {
  FAST_POLICY,
  openStage,
  progressOf as progressOfJob,
  readJson,
  type ReportJson,
  useStage,
  waitUntil,
} from './support/harness';
import { postsTo } from './support/groundTruth';
import { finishedJob, runJob, startAwaitingApproval, startStageJob, writeCheckedCsv } from './support/jobs';
import { oneScenarioCsv, upnCsv } from './support/users';

const stage = useStage({ retryAfterSeconds: 0.4 });

function progressOf(jobId: string): Promise<JobProgress> {
  return progressOfJob(stage, jobId);
}

function finished(jobId: string) {
  return finishedJob<ReportJson & { job: Record<string, unknown> }>(stage, jobId);
}

/** A checked CSV of `users` sample users of one scenario (under `domain`, when given). */
async function csvOf(name: string, users: number, scenario: ScenarioName = 'slow', domain?: string) {
  return writeCheckedCsv(stage, name, oneScenarioCsv(users, scenario, domain).text);
}

function postsOf(users: string[]): number {
  return postsTo(stage.simulator, users);
}

test('pause starts no new user while those in flight finish; resume carries on to the end', async () => {
  const csv = await csvOf('pause.csv', 60);
  const jobId = await startStageJob(stage, csv, {
    windowSize: 10,
    policy: FAST_POLICY,
  });
  await waitUntil('some users are done', async () => (await progressOf(jobId)).done >= 5);

  const paused = await controlJob(stage.client, jobId, 'pause', { by: 'ops-1' });
  expect(paused.phase).toBe('paused');
  await waitUntil('the users in flight have finished', async () => (await progressOf(jobId)).inFlight === 0);
  const held = await progressOf(jobId);
  const users = oneScenarioCsv(60, 'slow').rows.map((row) => row.user);
  const postsWhenHeld = postsOf(users);
  expect(held.done).toBeLessThan(60);
  expect(postsWhenHeld).toBe(held.dispatched);
  await sleep(2_000);
  expect((await progressOf(jobId)).dispatched).toBe(held.dispatched);
  expect(postsOf(users)).toBe(postsWhenHeld);

  const resumed = await controlJob(stage.client, jobId, 'resume', { by: 'ops-1' });
  expect(resumed.phase).toBe('running');
  const { summary } = await finished(jobId);
  expect(summary.counts.succeeded).toBe(60);
  expect(postsOf(users)).toBe(60);
});

test('cancel ends the job: users never started are reported as cancelled, nothing is lost', async () => {
  const csv = await csvOf('cancel.csv', 80, 'slow', 'cancel.test');
  const jobId = await startStageJob(stage, csv, {
    windowSize: 5,
    policy: FAST_POLICY,
  });
  await waitUntil('some users are done', async () => (await progressOf(jobId)).done >= 5);
  await controlJob(stage.client, jobId, 'cancel', { by: 'ops-2', reason: 'wrong list' });

  const { summary, report } = await finished(jobId);
  expect(report.outcomes).toHaveLength(80);
  expect(summary.counts.cancelled).toBeGreaterThan(60);
  expect(summary.counts.succeeded + summary.counts.cancelled).toBe(80);
  expect(report.job.cancelledBy).toBe('ops-2');
  for (const outcome of report.outcomes) {
    const posts = stage.simulator.user(outcome.user)?.posts ?? 0;
    if (outcome.status === 'succeeded') expect(posts).toBe(1);
    // Users never sent to Graph are cancelled, and the report says why: never started by the job (who and
    // why), or started but cancelled while reading the password-change time, before any reset was sent.
    if (outcome.startAttempts === 0) {
      expect({ user: outcome.user, status: outcome.status, posts }).toEqual({
        user: outcome.user,
        status: 'cancelled',
        posts: 0,
      });
      expect(outcome.reason).toMatch(
        /cancelled by ops-2 .*wrong list|the job was cancelled before Graph accepted the reset/,
      );
    }
  }
});

test('a job that needs approval waits; its starter cannot approve it, another operator can', async () => {
  const jobId = await startAwaitingApproval(stage, await csvOf('approval.csv', 5, 'ok', 'approval.test'));
  await expect(controlJob(stage.client, jobId, 'approve', { by: 'ALICE@ops' })).rejects.toThrow(
    /cannot also approve/,
  );
  await sleep(1_000);
  expect(stage.simulator.users().filter((user) => user.user.endsWith('approval.test'))).toEqual([]);

  const approved = await controlJob(stage.client, jobId, 'approve', { by: 'bob@ops' });
  expect(approved.approvedBy).toBe('bob@ops');
  const { summary, report } = await finished(jobId);
  expect(summary.counts.succeeded).toBe(5);
  expect(report.job).toMatchObject({ startedBy: 'alice@ops', approvedBy: 'bob@ops' });
});

test('a job nobody approves in time ends with every row cancelled and nothing sent', async () => {
  const csv = await csvOf('unapproved.csv', 4, 'ok', 'unapproved.test');
  const jobId = await startStageJob(stage, csv, {
    startedBy: 'alice@ops',
    approvalTimeoutMs: 1_500,
  });
  const { summary, report } = await finished(jobId);
  expect(summary.counts.cancelled).toBe(4);
  expect(report.job.cancelledBy).toBe('approval timeout');
  expect(stage.simulator.users().filter((user) => user.user.endsWith('unapproved.test'))).toEqual([]);
});

test('retry starts a new job with exactly the rows that failed for a passing reason, linked both ways', async () => {
  // Throttled users meet a deadline shorter than the simulator's Retry-After: failed, retryable.
  // Denied users are refused by Graph: failed, not retryable.
  const text =
    'userPrincipalName\nthrottled.r1@retry.test\nthrottled.r2@retry.test\ndenied.r3@retry.test\nok.r4@retry.test\n';
  const csv = await writeCheckedCsv(stage, 'retry.csv', text);
  const policy = { ...FAST_POLICY, minWaitMs: 400, deadlineMs: 300, revokeSessions: true };
  const jobId = await startStageJob(stage, csv, { windowSize: 3, policy });
  const first = await finished(jobId);
  expect(first.report.outcomes.map((outcome) => [outcome.user, outcome.status, outcome.retryable])).toEqual([
    ['throttled.r1@retry.test', 'failed', true],
    ['throttled.r2@retry.test', 'failed', true],
    ['denied.r3@retry.test', 'failed', false],
    ['ok.r4@retry.test', 'succeeded', undefined],
  ]);

  // The retry repeats how the job ran (here: the window and --revoke-sessions), but for the deadline
  // given on top, which the throttling outlasted.
  const retried = await retryFailed(stage.client, stage.settings, jobId, {
    allFailed: false,
    policy: { deadlineMs: FAST_POLICY.deadlineMs },
  });
  expect(retried?.rows).toBe(2);
  const second = await finished(retried?.jobId as string);
  expect(
    second.report.outcomes.map((outcome) => [outcome.user, outcome.status, outcome.sessionsRevoked]),
  ).toEqual([
    ['throttled.r1@retry.test', 'succeeded', true],
    ['throttled.r2@retry.test', 'succeeded', true],
  ]);
  expect(second.summary.counts.succeeded).toBe(2);
  expect(second.report.job.settings).toEqual({
    windowSize: 3,
    policy: { ...policy, deadlineMs: FAST_POLICY.deadlineMs },
  });
  // Ground truth: Graph saw the retried users' sessions revoked, once each.
  for (const user of ['throttled.r1@retry.test', 'throttled.r2@retry.test'])
    expect(stage.simulator.user(user)?.revokes).toBe(1);
  expect(second.report.job.retryOf).toBe(jobId);
  const original = await readJson<ReportJson & { job: { retriedBy?: string[] } }>(
    first.summary.reportJsonPath,
  );
  expect(original.job.retriedBy).toEqual([retried?.jobId]);
  expect(stage.simulator.user('denied.r3@retry.test')?.posts).toBe(1);
});

test('with --revoke-sessions each reset user has their sign-in sessions revoked once', async () => {
  const csv = await csvOf('revoke.csv', 6, 'ok', 'revoke.test');
  const jobId = await startStageJob(stage, csv, {
    policy: { ...FAST_POLICY, revokeSessions: true },
  });
  const { report } = await finished(jobId);
  for (const outcome of report.outcomes) {
    expect(outcome).toMatchObject({ status: 'succeeded', sessionsRevoked: true });
    expect(stage.simulator.user(outcome.user)?.revokes).toBe(1);
  }
});

test('a job from a plan runs exactly the planned users, and refuses a plan that does not match the CSV', async () => {
  const csvText = 'userPrincipalName\nok.p1@plan.test\nok.p2@plan.test\nok.p3@plan.test\n';
  const csv = await writeCheckedCsv(stage, 'plan.csv', csvText);
  const planFile = async (name: string, users: string[]) => {
    const path = `${stage.dataDir}/${name}`;
    const plan = {
      csv: { path: csv.path, sha256: csv.sha256 },
      users: [
        ...users.map((user) => ({ user, decision: 'reset' })),
        { user: 'ok.p3@plan.test', decision: 'skip', reason: 'missing' },
      ],
      usersSha256: usersSha256(users),
    };
    await writeFile(path, JSON.stringify(plan), { mode: 0o600 });
    return path;
  };

  const good = await planFile('good-plan.json', ['ok.p1@plan.test', 'OK.P2@plan.test']);
  const planned = await finished(await startStageJob(stage, csv, { policy: FAST_POLICY, planPath: good }));
  expect(planned.report.outcomes.map((outcome) => [outcome.user, outcome.status])).toEqual([
    ['ok.p1@plan.test', 'succeeded'],
    ['ok.p2@plan.test', 'succeeded'],
    ['ok.p3@plan.test', 'skipped'],
  ]);
  expect(planned.report.outcomes[2].reason).toContain('not in the approved plan');
  expect(stage.simulator.user('ok.p3@plan.test')).toBeUndefined();

  const stale = await planFile('stale-plan.json', ['ok.p1@plan.test', 'ok.gone@plan.test']);
  const jobId = await startStageJob(stage, csv, {
    policy: FAST_POLICY,
    planPath: stale,
  });
  const final = await waitForJob(stage.client, jobId, () => undefined, 200);
  expect(final.state).toBe('failed');
  expect(final.state === 'failed' && final.message).toContain('does not hold exactly the users of the plan');
  expect(stage.simulator.user('ok.p1@plan.test')?.posts).toBe(1);
});

test('a job is found by the BulkResetJobId search attribute, its users by their workflow ids alone', async () => {
  const csv = await csvOf('search.csv', 7, 'ok', 'search.test');
  const jobId = await startStageJob(stage, csv, { policy: FAST_POLICY });
  await finished(jobId);
  const list = async (query: string) => {
    const found: { id: string; jobIdAttribute: unknown }[] = [];
    for await (const execution of stage.client.workflow.list({ query })) {
      found.push({
        id: execution.workflowId,
        jobIdAttribute: execution.typedSearchAttributes.get(JOB_ID_SEARCH_ATTRIBUTE),
      });
    }
    return found;
  };
  await waitUntil(
    'visibility has caught up',
    async () => (await list(userWorkflowsQuery(jobId))).length >= 7,
    30_000,
  );
  expect(await list(`BulkResetJobId = "${jobId}"`)).toEqual([{ id: jobId, jobIdAttribute: jobId }]);
  const users = await list(userWorkflowsQuery(jobId));
  expect(users).toHaveLength(7);
  // The users carry no search attribute: their ids say which job they belong to.
  for (const user of users) {
    expect(user.id.startsWith(`${jobId}/user-`)).toBe(true);
    expect(user.jobIdAttribute).toBeUndefined();
  }
  expect(await list(userWorkflowsQuery(jobId, 'Completed'))).toHaveLength(7);
});

test('a job larger than the blast-radius limit is refused unless asked for', async () => {
  const csv = await csvOf('large.csv', 12, 'ok');
  await expect(startStageJob(stage, csv, { maxUsers: 10 })).rejects.toThrow(
    /12 users, more than the limit of 10.*--allow-large/,
  );
  const jobId = await startStageJob(stage, csv, {
    maxUsers: 10,
    allowLarge: true,
    policy: FAST_POLICY,
  });
  expect((await finished(jobId)).summary.total).toBe(12);
});

test('accounts on the protected list are never reset, even when the CSV names them', async () => {
  const listDir = await mkdtemp(join(tmpdir(), 'protected-'));
  const listPath = join(listDir, 'protected.txt');
  await writeFile(listPath, '# break-glass accounts\nok.breakglass@protected.test\n');
  const guarded = await openStage(
    { retryAfterSeconds: 0.2 },
    { env: { BULK_RESET_PROTECTED_USERS: listPath } },
  );
  try {
    await guarded.startWorker();
    const { report } = await runJob(
      guarded,
      'guarded.csv',
      upnCsv(['ok.one@protected.test', 'OK.BreakGlass@protected.test']),
      { policy: FAST_POLICY },
    );
    expect(report.outcomes.map((outcome) => [outcome.user, outcome.status])).toEqual([
      ['ok.one@protected.test', 'succeeded'],
      ['OK.BreakGlass@protected.test', 'skipped'],
    ]);
    expect(report.outcomes[1].reason).toMatch(/^protected/);
    expect(guarded.simulator.user('ok.breakglass@protected.test')).toBeUndefined();
  } finally {
    await guarded.close();
    await rm(listDir, { recursive: true, force: true });
  }
});
