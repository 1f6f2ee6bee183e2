/**
 * The write budget: against a simulator that enforces a Graph-like token bucket, the workers keep to
 * the budget on their own, so Graph hardly ever has to say 429 and no user's outcome suffers for it.
 */
import { checkCsv, startJob, waitForJob } from '../client/jobs';
import { sampleCsv } from '../simulator/sampleUsers';
import { FAST_POLICY, type ReportJson, type Stage, openStage, readJson } from './support/harness';
import { graphShapedWriteBudget } from './support/simulators';

const WRITES_PER_SECOND = 5;
const USERS = 60;

let stage: Stage;

beforeAll(async () => {
  stage = await openStage(
    { retryAfterSeconds: 0.2, writeBudget: graphShapedWriteBudget(WRITES_PER_SECOND) },
    { writesPerSecond: WRITES_PER_SECOND },
  );
  // Two workers share the budget: the limit is the task queue's, not each worker's.
  await stage.startWorker();
  await stage.startWorker();
});

afterAll(async () => {
  await stage?.close();
});

test('resets go out no faster than the write budget, across two workers, and every user succeeds', async () => {
  const sample = sampleCsv(USERS, { scenario: 'ok', duplicateEvery: 0, invalidEvery: 0 });
  const csv = await checkCsv(await stage.writeCsv('users.csv', sample.text));
  const startedMs = Date.now();
  const jobId = await startJob(stage.client, stage.settings.taskQueue, csv, {
    // A window as large as the job: only the budget holds the resets back.
    windowSize: USERS,
    policy: FAST_POLICY,
  });
  const final = await waitForJob(stage.client, jobId, () => undefined, 250);
  const elapsedSeconds = (Date.now() - startedMs) / 1000;
  if (final.state !== 'completed') throw new Error(`job did not complete: ${JSON.stringify(final)}`);

  expect(final.summary.counts.succeeded).toBe(USERS);
  const stats = stage.simulator.stats();
  // The workers' shared limit lets about a second's worth through at once at first; then it is the ceiling.
  expect(elapsedSeconds).toBeGreaterThanOrEqual((USERS - 2 * WRITES_PER_SECOND) / WRITES_PER_SECOND);
  // Pacing, not 429s, holds the rate: at most a stray one at the edge of a second.
  expect(stats.throttled).toBeLessThanOrEqual(Math.ceil(USERS * 0.05));
  const report = await readJson<ReportJson>(final.summary.reportJsonPath);
  for (const outcome of report.outcomes) {
    expect({ user: outcome.user, status: outcome.status, httpStatus: outcome.httpStatus }).toEqual({
      user: outcome.user,
      status: 'succeeded',
      httpStatus: undefined,
    });
  }
  expect(stats.resetsAccepted).toBe(USERS);
});

test('without a write budget the same job runs into Graph throttling (the control for the test above)', async () => {
  const unpaced = await openStage({
    retryAfterSeconds: 0.2,
    writeBudget: graphShapedWriteBudget(WRITES_PER_SECOND),
  });
  try {
    await unpaced.startWorker();
    const sample = sampleCsv(USERS, { scenario: 'ok', duplicateEvery: 0, invalidEvery: 0 });
    const csv = await checkCsv(await unpaced.writeCsv('users.csv', sample.text));
    const jobId = await startJob(unpaced.client, unpaced.settings.taskQueue, csv, {
      windowSize: USERS,
      policy: FAST_POLICY,
    });
    const final = await waitForJob(unpaced.client, jobId, () => undefined, 250);
    if (final.state !== 'completed') throw new Error(`job did not complete: ${JSON.stringify(final)}`);
    // Honoured 429s still end in success, but Graph had to push back many times.
    expect(final.summary.counts.succeeded).toBe(USERS);
    expect(unpaced.simulator.stats().throttled).toBeGreaterThan(USERS / 2);
  } finally {
    await unpaced.close();
  }
});
