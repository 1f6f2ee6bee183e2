/**
 * A worker process killed without warning in the middle of a job, and a new one started: the job
 * finishes with the same accounting, and no user is POSTed twice unless the outcome says why.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { checkCsv, jobState, startJob, waitForJob } from '../client/jobs';
import { PROJECT_ROOT } from '../temporal/devServer';
import { sampleCsv } from '../simulator/sampleUsers';
import { openStage, readJson, type ReportJson, type Stage, waitUntil } from './support/harness';

const WINDOW = 20;
const USERS = 100;

let stage: Stage;
const workers: ChildProcess[] = [];

beforeAll(async () => {
  stage = await openStage({ retryAfterSeconds: 0.5 });
});

afterAll(async () => {
  for (const worker of workers)
    if (worker.exitCode === null && worker.signalCode === null) worker.kill('SIGKILL');
  await stage?.close();
});

/** `bulk-reset worker` in its own process, as an operator runs it. */
function spawnWorker(): ChildProcess {
  const worker = spawn(process.execPath, [join(PROJECT_ROOT, 'dist', 'client', 'cli.js'), 'worker'], {
    env: stage.env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let errors = '';
  worker.stderr?.on('data', (chunk: Buffer) => {
    errors = `${errors}${chunk.toString()}`.slice(-4_000);
  });
  worker.on('exit', (code) => {
    if (code !== null && code !== 0) console.error(`worker exited with ${code}:\n${errors}`);
  });
  workers.push(worker);
  return worker;
}

test('a worker killed mid-job is replaced and the job ends with every user reset exactly once', async () => {
  const sample = sampleCsv(USERS, { scenario: 'slow', duplicateEvery: 0, invalidEvery: 0 });
  const csv = await checkCsv(await stage.writeCsv('users.csv', sample.text));
  const first = spawnWorker();
  const jobId = await startJob(stage.client, stage.settings.taskQueue, csv, {
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
  const second = spawnWorker();
  const final = await waitForJob(stage.client, jobId, () => undefined, 500);
  second.kill('SIGTERM');
  await once(second, 'exit');
  if (final.state !== 'completed') throw new Error(`job did not complete: ${JSON.stringify(final)}`);

  // The same accounting as an uninterrupted run: every user succeeded, once.
  expect(final.summary.counts).toEqual({
    succeeded: USERS,
    failed: 0,
    unconfirmed: 0,
    skipped: 0,
    cancelled: 0,
  });
  const report = await readJson<ReportJson>(final.summary.reportJsonPath);
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
