/**
 * Prometheus metrics, scraped from two `bulk-reset worker` processes that share one job: the project's
 * counters move while the job runs, and at the end they add up to what the report says and to what the
 * simulator saw; the SDK's own metrics come out of the same endpoints; the write budget holds across
 * both workers.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { checkCsv, jobState, startJob, waitForJob } from '../client/jobs';
import { PROJECT_ROOT } from '../temporal/devServer';
import { sampleCsv } from '../simulator/sampleUsers';
import { FAST_POLICY, type ReportJson, type Stage, openStage, readJson, waitUntil } from './support/harness';
import { type Sample, freePort, scrape, sumOf, sumsBy } from './support/prometheus';
import { graphShapedWriteBudget } from './support/simulators';

const USERS = 48;
const WRITES_PER_SECOND = 4;
const OUTCOMES = ['succeeded', 'failed', 'unconfirmed', 'skipped', 'cancelled'] as const;
/** The only labels bulk-reset's metrics may carry: nothing that names a user, a job or a request. */
const ALLOWED_LABELS = [
  'outcome',
  'call',
  'status',
  'before',
  'source',
  'le',
  // Added by the SDK's meters.
  'namespace',
  'taskQueue',
  'workflowType',
  'activityType',
  'service_name',
];

let stage: Stage;
const workers: ChildProcess[] = [];

beforeAll(async () => {
  stage = await openStage(
    { retryAfterSeconds: 0.3, writeBudget: graphShapedWriteBudget(WRITES_PER_SECOND) },
    { writesPerSecond: WRITES_PER_SECOND },
  );
});

afterAll(async () => {
  for (const worker of workers)
    if (worker.exitCode === null && worker.signalCode === null) worker.kill('SIGKILL');
  await stage?.close();
});

/** `bulk-reset worker --metrics <address>` in its own process; resolves once its endpoint answers. */
async function spawnWorker(address: string): Promise<ChildProcess> {
  const worker = spawn(
    process.execPath,
    [join(PROJECT_ROOT, 'dist', 'client', 'cli.js'), 'worker', '--metrics', address],
    { env: stage.env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  const keep = (chunk: Buffer) => {
    output = `${output}${chunk.toString()}`.slice(-4_000);
  };
  worker.stdout?.on('data', keep);
  worker.stderr?.on('data', keep);
  worker.on('exit', (code) => {
    if (code !== null && code !== 0) console.error(`worker exited with ${code}:\n${output}`);
  });
  workers.push(worker);
  // The worker prints the address to scrape, and the endpoint answers there.
  await waitUntil(`the worker announces and serves its metrics at ${address}`, async () => {
    if (worker.exitCode !== null) throw new Error(`the worker exited with ${worker.exitCode}:\n${output}`);
    if (!output.includes(`Prometheus metrics at http://${address}/metrics`)) return false;
    return scrape(address).then(
      () => true,
      () => false,
    );
  });
  return worker;
}

test('two workers expose metrics that move during a job and add up to the report and to what Graph saw', async () => {
  const addresses = [`127.0.0.1:${await freePort()}`, `127.0.0.1:${await freePort()}`];
  const processes = [await spawnWorker(addresses[0]), await spawnWorker(addresses[1])];

  const sample = sampleCsv(USERS, { duplicateEvery: 20, invalidEvery: 25 });
  const csv = await checkCsv(await stage.writeCsv('users.csv', sample.text));
  const startedMs = Date.now();
  const jobId = await startJob(stage.client, stage.settings.taskQueue, csv, {
    // A window as large as the job: the write budget, not the window, holds the resets back.
    windowSize: USERS,
    policy: FAST_POLICY,
  });

  // During the job: outcomes and Graph answers are already counted while rows are still to do.
  let during: Sample[] = [];
  await waitUntil('the metrics show outcomes and Graph answers while the job runs', async () => {
    const current = await jobState(stage.client, jobId);
    if (current.state !== 'running')
      throw new Error(`the job ended before the metrics moved: ${current.state}`);
    during = await scrape(...addresses);
    return (
      sumOf(during, 'bulk_reset_resets_total', { outcome: 'succeeded' }) > 0 &&
      sumOf(during, 'bulk_reset_graph_responses_total') > 0
    );
  });
  expect(sumOf(during, 'bulk_reset_resets_total')).toBeLessThan(sample.rows.length);

  const final = await waitForJob(stage.client, jobId, () => undefined, 250);
  if (final.state !== 'completed') throw new Error(`job did not complete: ${JSON.stringify(final)}`);
  const elapsedSeconds = (Date.now() - startedMs) / 1000;
  const report = await readJson<ReportJson>(final.summary.reportJsonPath);
  const stats = stage.simulator.stats();

  // Outcomes: the metric equals the report's counts, and both what the CSV's scenarios must give.
  const expectedCounts = Object.fromEntries(
    OUTCOMES.map((outcome) => [outcome, sample.rows.filter((row) => row.expected === outcome).length]),
  );
  expect(final.summary.counts).toEqual(expectedCounts);
  const byOutcome = async () => {
    const after = await scrape(...addresses);
    return Object.fromEntries(
      OUTCOMES.map((outcome) => [outcome, sumOf(after, 'bulk_reset_resets_total', { outcome })]),
    );
  };
  // The last outcomes are emitted with the workflow task that completes the job: allow a scrape or two.
  let counted: Record<string, number> = {};
  await waitUntil(
    'the outcome counters reach the report',
    async () => {
      counted = await byOutcome();
      return JSON.stringify(counted) === JSON.stringify(expectedCounts);
    },
    15_000,
  ).catch(() => undefined);
  expect(counted).toEqual(expectedCounts);

  const after = await scrape(...addresses);
  const perWorker = await Promise.all(addresses.map((address) => scrape(address)));

  // Graph answers by status: exactly what the simulator sent (a dropped connection is "network").
  const simulatorStatuses = Object.fromEntries(
    Object.entries(stats.responsesByStatus).map(([status, count]) => [
      status === 'dropped' ? 'network' : status,
      count,
    ]),
  );
  expect(sumsBy(after, 'bulk_reset_graph_responses_total', 'status')).toEqual(simulatorStatuses);
  expect(sumOf(after, 'bulk_reset_graph_responses_total', { call: 'resetPassword' })).toBe(stats.posts);
  expect(sumOf(after, 'bulk_reset_graph_responses_total', { call: 'poll' })).toBe(stats.polls);
  expect(sumOf(after, 'bulk_reset_graph_throttled_total')).toBe(stats.throttled);
  expect(sumOf(after, 'bulk_reset_graph_throttled_total')).toBe(stats.responsesByStatus['429']);
  // Every 429 and 503 the simulator sent carried a Retry-After, and the histogram saw each one.
  expect(
    sumOf(after, 'bulk_reset_graph_retry_after_seconds_count', { status: '429' }) +
      sumOf(after, 'bulk_reset_graph_retry_after_seconds_count', { status: '503' }),
  ).toBe((stats.responsesByStatus['429'] ?? 0) + (stats.responsesByStatus['503'] ?? 0));

  // Waits and resends: one durable wait per re-sent POST and per poll, as the report counts them.
  const resends = report.outcomes.reduce((sum, outcome) => sum + Math.max(outcome.startAttempts - 1, 0), 0);
  const polls = report.outcomes.reduce((sum, outcome) => sum + outcome.polls, 0);
  const ambiguous = report.outcomes.reduce((sum, outcome) => sum + (outcome.ambiguousResends ?? 0), 0);
  expect(resends).toBeGreaterThan(0);
  expect(sumOf(after, 'bulk_reset_wait_seconds_count', { before: 'resend' })).toBe(resends);
  expect(sumOf(after, 'bulk_reset_wait_seconds_count', { before: 'poll' })).toBe(polls);
  expect(sumOf(after, 'bulk_reset_wait_seconds_sum', { source: 'retry-after' })).toBeGreaterThan(0);
  expect(ambiguous).toBeGreaterThan(0);
  expect(sumOf(after, 'bulk_reset_ambiguous_resends_total')).toBe(ambiguous);

  // Both workers did Graph work for the one job, and the budget held across them: the 429s are the
  // scenarios' own (two per throttled user, one per throttled poll) but for a few at a second's edge.
  for (const samples of perWorker) {
    expect(sumOf(samples, 'bulk_reset_graph_responses_total')).toBeGreaterThan(0);
  }
  const scenario429s =
    2 * sample.rows.filter((row) => row.scenario === 'throttled').length +
    sample.rows.filter((row) => row.scenario === 'pollthrottle').length;
  expect(stats.throttled).toBeGreaterThanOrEqual(scenario429s);
  expect(stats.throttled - scenario429s).toBeLessThanOrEqual(3);
  // The workers' shared limit lets about a second's worth through at once at first; then it is the ceiling.
  expect(elapsedSeconds).toBeGreaterThanOrEqual((stats.posts - 2 * WRITES_PER_SECOND) / WRITES_PER_SECOND);

  // The SDK's own metrics come out of the same endpoints.
  // A failed user's workflow ends Failed (so the Web UI shows it); every other started user completes.
  const started = report.outcomes.filter((outcome) => outcome.startAttempts > 0);
  const startedFailed = started.filter((outcome) => outcome.status === 'failed').length;
  expect(startedFailed).toBeGreaterThan(0);
  expect(sumOf(after, 'temporal_workflow_failed_total', { workflow_type: 'resetUser' })).toBe(startedFailed);
  expect(sumOf(after, 'temporal_workflow_completed_total', { workflow_type: 'resetUser' })).toBe(
    started.length - startedFailed,
  );
  expect(sumOf(after, 'temporal_activity_execution_latency_count')).toBeGreaterThan(0);

  // Least privilege: no user, job or request id in any label.
  for (const series of after.filter((sample) => sample.name.startsWith('bulk_reset_'))) {
    expect({
      [series.name]: Object.keys(series.labels).filter((label) => !ALLOWED_LABELS.includes(label)),
    }).toEqual({
      [series.name]: [],
    });
  }
  const text = JSON.stringify(after);
  expect(text).not.toContain('contoso.test');
  expect(text).not.toContain(jobId);

  for (const worker of processes) worker.kill('SIGTERM');
  await Promise.all(processes.map((worker) => once(worker, 'exit')));
});
