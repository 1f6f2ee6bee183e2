/**
 * A whole job on the real dev server and a real worker, against the Graph simulator: every CSV row ends
 * in exactly one outcome, and the simulator's own counters show what Graph saw.
 */
import { readFile } from 'node:fs/promises';
import { parse } from 'csv-parse/sync';
import { checkCsv } from '../client/jobs';
import { EXPECTED_POSTS, sampleCsv } from '../simulator/sampleUsers';
import { progressQuery } from '../workflows';
import { FAST_POLICY, readableText, useStage, waitUntil, userWorkflowIdOf } from './support/harness';
import { expectOneOutcomePerRow, expectedCounts } from './support/groundTruth';
import { finishedJob, startStageJob } from './support/jobs';

const WINDOW = 20;

const stage = useStage({ retryAfterSeconds: 0.3 });

test('a 300-user CSV with every scenario, duplicates and mistakes: one right outcome per row, one reset per user', async () => {
  const sample = sampleCsv(300);
  const csvPath = await stage.writeCsv('users.csv', sample.text);
  const csv = await checkCsv(csvPath);
  const skipped = sample.rows.filter((row) => row.scenario === undefined);
  expect(csv.totalRows).toBe(sample.rows.length);
  expect(skipped.length).toBeGreaterThanOrEqual(10);
  expect(csv.runnableRows).toBe(300);

  // A small history limit makes the job continue as new several times on the way.
  const jobId = await startStageJob(stage, csv, {
    windowSize: WINDOW,
    policy: FAST_POLICY,
    maxHistoryEvents: 400,
  });
  const { summary, report } = await finishedJob(stage, jobId, 500);

  // The report: one row per CSV row, each with the outcome its scenario calls for, and a reason where
  // the row did not succeed.
  expectOneOutcomePerRow(report, sample.rows);
  for (const [index, expected] of sample.rows.entries()) {
    const outcome = report.outcomes[index];
    if (expected.reasonMentions) expect(outcome.reason).toContain(expected.reasonMentions);
    if (outcome.status !== 'succeeded') expect(outcome.reason).toBeTruthy();
  }
  expect(summary.counts).toEqual(expectedCounts(sample.rows));
  expect(report.summary.total).toBe(sample.rows.length);

  // The CSV report holds the same rows.
  const csvReport = parse<Record<string, string>>(
    (await readFile(summary.reportCsvPath, 'utf8')).replace(/^\uFEFF/, ''),
    { columns: true },
  );
  expect(csvReport.map((line) => Number(line.row))).toEqual(sample.rows.map((row) => row.row));

  // Ground truth: what the simulator saw, user by user.
  for (const row of sample.rows) {
    if (!row.scenario) continue;
    const seen = stage.simulator.user(row.user);
    expect({ user: row.user, posts: seen?.posts }).toEqual({
      user: row.user,
      posts: EXPECTED_POSTS[row.scenario],
    });
    const accepts = ['badpw', 'denied', 'missing'].includes(row.scenario) ? 0 : 1;
    expect({ user: row.user, resetsAccepted: seen?.resetsAccepted }).toEqual({
      user: row.user,
      resetsAccepted: accepts,
    });
    expect(seen?.passwordSupplied).toBe(false);
  }
  // The dropped connection is the one resend, and the outcome says so.
  const dropped = report.outcomes.filter((outcome) => outcome.user.startsWith('drop.'));
  expect(dropped.length).toBeGreaterThan(0);
  for (const outcome of dropped) expect(outcome.ambiguousResends).toBe(1);
  const others = report.outcomes.filter((outcome) => !outcome.user.startsWith('drop.'));
  for (const outcome of others) expect(outcome.ambiguousResends ?? 0).toBe(0);

  const stats = stage.simulator.stats();
  expect(stats.earlyRequests).toBe(0);
  expect(stats.peakActiveUsers).toBeLessThanOrEqual(WINDOW);
  expect(stats.peakActiveUsers).toBeGreaterThan(1);
  expect(stats.unauthorized).toBe(0);

  // Graph generated a password for every accepted reset; none of it reached Temporal's history, and the
  // history holds the user's name only encrypted (test/secrecy.e2e.test.ts looks closer).
  const succeeded = report.outcomes.find(
    (outcome) => outcome.status === 'succeeded' && outcome.user.startsWith('ok.'),
  );
  const history = await stage.client.workflow
    .getHandle(await userWorkflowIdOf(stage, jobId, succeeded?.user ?? ''))
    .fetchHistory();
  const historyText = readableText(history);
  expect(history.events?.length).toBeGreaterThan(10);
  expect(historyText).not.toContain(succeeded?.user);
  expect(historyText).not.toMatch(/newPassword/i);

  // The job continued as new on the way, and still accounted for everyone.
  const progress = await stage.client.workflow.getHandle(jobId).query(progressQuery);
  expect(progress.runs).toBeGreaterThan(1);
  // Every run stopped near its limit: once due to continue as new, a run starts nobody else.
  const runs: number[] = [];
  await waitUntil('visibility lists every run', async () => {
    runs.length = 0;
    for await (const run of stage.client.workflow.list({ query: `WorkflowId = "${jobId}"` })) {
      runs.push(run.historyLength);
    }
    return runs.length === progress.runs;
  });
  expect(Math.max(...runs)).toBeLessThan(400 + WINDOW * 8);
  expect(progress.done).toBe(sample.rows.length);
});
