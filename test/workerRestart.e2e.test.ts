/**
 * A worker process killed without warning in the middle of a job, and a new one started: the job
 * finishes with the same accounting, and no user is POSTed twice unless the outcome says why.
 */
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { jobState } from '../client/jobs';
import { useStage, waitUntil } from './support/harness';
import { allSucceeded } from './support/groundTruth';
import { finishedJob, startStageJob, writeCheckedCsv } from './support/jobs';
import { oneScenarioCsv } from './support/users';
import { spawnWorkerProcess } from './support/workerProcess';

const WINDOW = 20;
const USERS = 100;

// The workers are `bulk-reset worker` processes, started and killed by the test.
const stage = useStage({ retryAfterSeconds: 0.5 }, { worker: false });

test('a worker killed mid-job is replaced and the job ends with every user reset exactly once', async () => {
  const sample = oneScenarioCsv(USERS, 'slow');
  const csv = await writeCheckedCsv(stage, 'users.csv', sample.text);
  const first = spawnWorkerProcess(stage);
  const jobId = await startStageJob(stage, csv, {
    windowSize: WINDOW,
    policy: {
      minWaitMs: 100,
      defaultWaitMs: 200,
      maxWaitMs: 2_000,
      deadlineMs: 180_000,
      requestTimeoutMs: 2_000,
    },
  });

  // Kill it once a good part of the job is done and a full window is still in flight.
  await waitUntil('a quarter of the users are done', async () => {
    const current = await jobState(stage.client, jobId);
    return current.state === 'running' && current.progress.done >= USERS / 4;
  });
  first.kill('SIGKILL');
  await once(first, 'exit');
  const atKill = stage.simulator.stats();
  expect(atKill.resetsAccepted).toBeLessThan(USERS);

  await sleep(1_000);
  const second = spawnWorkerProcess(stage);
  const { summary, report } = await finishedJob(stage, jobId, 500);
  second.kill('SIGTERM');
  await once(second, 'exit');

  // The same accounting as an uninterrupted run: every user succeeded, once.
  expect(summary.counts).toEqual(allSucceeded(USERS));
  expect(report.outcomes.map((outcome) => outcome.row)).toEqual(sample.rows.map((row) => row.row));

  // Ground truth: one POST per user, unless a request was cut off with the worker: the outcome then
  // says so in ambiguousResends (the lost request may or may not have reached Graph), and there can be
  // no more of those than users in flight.
  let resends = 0;
  for (const outcome of report.outcomes) {
    const posts = stage.simulator.user(outcome.user)?.posts ?? 0;
    const ambiguous = outcome.ambiguousResends ?? 0;
    resends += ambiguous;
    expect({ user: outcome.user, postsBeyondAccounted: Math.max(posts - 1 - ambiguous, 0) }).toEqual({
      user: outcome.user,
      postsBeyondAccounted: 0,
    });
    expect(posts).toBeGreaterThanOrEqual(1);
    expect(outcome.startAttempts).toBe(1 + ambiguous);
  }
  expect(resends).toBeLessThanOrEqual(WINDOW);
  const stats = stage.simulator.stats();
  expect(stats.resetsAccepted).toBeGreaterThanOrEqual(USERS);
  expect(stats.resetsAccepted).toBeLessThanOrEqual(USERS + resends);
  expect(stats.posts).toBeGreaterThan(atKill.posts);
  expect(stats.earlyRequests).toBe(0);
  expect(stats.peakActiveUsers).toBeLessThanOrEqual(WINDOW);
});
