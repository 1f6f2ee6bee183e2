/**
 * The report an operator acts on after a job, on the real dev server and worker against the Graph
 * simulator: who failed, why in a few words, what to do, and where each user's workflow is; a retry that
 * keeps the original row numbers and links both ways; the final view across a job and its retries; rows
 * of one outcome only; the failures by cause at the end of the CLI's summary.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { checkCsv, startJob, waitForJob } from '../client/jobs';
import { FAST_POLICY, cli, openStage, readJson, type Stage, userWorkflowIdOf } from './support/harness';

const WEB_UI = 'http://ui.example.test:8233/';

/** The JSON report's rows and summary, with the fields an operator acts on. */
interface Row {
  row: number;
  user: string;
  status: string;
  reason?: string;
  detail?: string;
  hint?: string;
  retryable?: boolean;
  workflowId?: string;
  webUiLink?: string;
  httpStatus?: number;
  graphCode?: string;
  requestId?: string;
  csvRow?: number;
  job?: string;
}
interface Cause {
  cause: string;
  kind: string;
  count: number;
  retryable: number;
  whatToDo: string;
  rows: number[];
}
interface Report {
  job: { jobId: string; retryOf?: string; retriedBy?: string[] };
  summary: { total: number; counts: Record<string, number>; failuresByCause: Cause[] };
  outcomes: Row[];
}

let stage: Stage;

beforeAll(async () => {
  stage = await openStage({ retryAfterSeconds: RETRY_AFTER_SECONDS }, { env: { BULK_RESET_WEB_UI: WEB_UI } });
  await stage.startWorker();
});

afterAll(async () => {
  await stage?.close();
});

/**
 * Throttled users are told to wait longer than the deadline leaves them: they fail at once, retryable (a
 * 429's Retry-After is never shortened). `noretry` users get no Retry-After, wait the default 200 ms
 * between polls and succeed well within it.
 */
const RETRY_AFTER_SECONDS = 4;
const SHORT_DEADLINE = { ...FAST_POLICY, deadlineMs: 2_500 };

async function runJob(name: string, text: string): Promise<{ jobId: string; report: Report }> {
  const csv = await checkCsv(await stage.writeCsv(name, text));
  const jobId = await startJob(stage.client, stage.settings.taskQueue, csv, {
    windowSize: 5,
    policy: SHORT_DEADLINE,
  });
  const final = await waitForJob(stage.client, jobId, () => undefined, 200);
  if (final.state !== 'completed') throw new Error(`job ${jobId} did not complete: ${JSON.stringify(final)}`);
  return { jobId, report: await readJson<Report>(final.summary.reportJsonPath) };
}

function csvRows(text: string): Record<string, string>[] {
  return parse<Record<string, string>>(text.replace(/^\uFEFF/, ''), { columns: true });
}

const mean = (values: number[]): number => values.reduce((sum, value) => sum + value, 0) / values.length;

test("each row carries its user's workflow id and Web UI link, retryable, a short reason and a hint for the job's password mode", async () => {
  const users = {
    ok: 'noretry.a1@report.test',
    denied: 'denied.a2@report.test',
    missing: 'missing.a3@report.test',
    badpw: 'badpw.a4@report.test',
    throttled: 'throttled.a5@report.test',
  };
  const text = `userPrincipalName\n${Object.values(users).join('\n')}\n${users.ok}\nnot-a-user\n`;
  const { jobId, report } = await runJob('columns.csv', text);
  const byUser = new Map(report.outcomes.filter((row) => row.row <= 6).map((row) => [row.user, row]));

  // Every user Graph saw has the workflow id the job gave it, and Temporal knows that workflow.
  for (const user of Object.values(users)) {
    expect(stage.simulator.user(user)?.posts).toBeGreaterThanOrEqual(1);
    const row = byUser.get(user) as Row;
    const workflowId = await userWorkflowIdOf(stage, jobId, user);
    expect({ user, workflowId: row.workflowId }).toEqual({ user, workflowId });
    expect(row.webUiLink).toBe(
      `http://ui.example.test:8233/namespaces/default/workflows/${encodeURIComponent(workflowId)}`,
    );
    const { workflowId: described } = await stage.client.workflow.getHandle(workflowId).describe();
    expect(described).toBe(workflowId);
  }
  // The duplicate and the invalid row never started a workflow: no id, no link.
  const notStarted = report.outcomes.filter((row) => row.row > 6);
  expect(notStarted.map((row) => [row.status, row.workflowId, row.webUiLink])).toEqual([
    ['skipped', undefined, undefined],
    ['skipped', undefined, undefined],
  ]);

  // The short reason repeats no other column; the reason as recorded is kept as the detail.
  const failed = report.outcomes.filter((row) => row.status === 'failed');
  expect(failed.map((row) => row.user).sort()).toEqual(
    [users.badpw, users.denied, users.missing, users.throttled].sort(),
  );
  for (const row of failed) {
    expect(row.requestId).toBeTruthy();
    // (Graph's own message may name the user: "Resource '...' does not exist".)
    for (const repeated of [`user ${row.user}`, row.requestId, row.graphCode, `${row.httpStatus} `])
      expect(row.reason).not.toContain(repeated);
    expect(row.detail).toContain(row.requestId);
    expect(row.hint).toBeTruthy();
  }
  const before = mean(failed.map((row) => (row.detail ?? row.reason ?? '').length));
  const after = mean(failed.map((row) => (row.reason ?? '').length));
  console.log(
    `failed rows' reason: ${before.toFixed(0)} characters on average as recorded, ${after.toFixed(0)} short`,
  );
  expect(after).toBeLessThan(before / 2);

  // The job let Graph generate the passwords (Graph saw none supplied): the policy hint does not say to.
  expect(stage.simulator.user(users.badpw)?.passwordSupplied).toBe(false);
  expect(byUser.get(users.badpw)?.hint).not.toContain('let Graph generate');
  expect(byUser.get(users.badpw)?.hint).toContain('--password generated');

  // The CSV has the retryable column: the throttled user may pass later, the refusals not.
  const csv = csvRows(await readFile(join(stage.dataDir, 'jobs', jobId, 'report.csv'), 'utf8'));
  expect(Object.fromEntries(csv.map((row) => [row.user, row.retryable]))).toMatchObject({
    [users.ok]: '',
    [users.denied]: 'false',
    [users.missing]: 'false',
    [users.badpw]: 'false',
    [users.throttled]: 'true',
  });
  expect(csv.find((row) => row.user === users.denied)?.workflowId).toBe(byUser.get(users.denied)?.workflowId);

  // Failures by cause: one group per Graph code, counted from the rows, each with what to do.
  const expected = new Map<string, number>();
  for (const row of failed)
    expected.set(row.graphCode as string, (expected.get(row.graphCode as string) ?? 0) + 1);
  expect(
    Object.fromEntries(report.summary.failuresByCause.map((cause) => [cause.cause, cause.count])),
  ).toEqual(Object.fromEntries(expected));
  const throttledCause = report.summary.failuresByCause.find((cause) => cause.retryable > 0);
  expect(throttledCause?.rows).toEqual([byUser.get(users.throttled)?.row]);

  // `status` ends with the duration and the failures by cause, naming no user and no Graph message.
  const status = await cli(stage, 'status', jobId);
  expect(status.code).toBe(1);
  expect(status.stdout).toMatch(new RegExp(`^job ${jobId}: 7 rows in \\d+:\\d\\d$`, 'm'));
  expect(status.stdout).toContain('failures by cause:');
  for (const cause of report.summary.failuresByCause)
    expect(status.stdout).toMatch(new RegExp(`^ +${cause.count} ${cause.cause}\\b.*: `, 'm'));
  for (const user of Object.values(users)) expect(status.stdout).not.toContain(user);
});

test('a retry keeps the original row numbers, the reports link both ways, and --final and --status show each user once', async () => {
  const users = [
    'noretry.b1@retry.test',
    'throttled.b2@retry.test',
    'denied.b3@retry.test',
    'throttled.b4@retry.test',
  ];
  const { jobId, report: first } = await runJob('retry.csv', `userPrincipalName\n${users.join('\n')}\n`);
  expect(first.outcomes.map((row) => [row.row, row.status, row.retryable])).toEqual([
    [2, 'succeeded', undefined],
    [3, 'failed', true],
    [4, 'failed', false],
    [5, 'failed', true],
  ]);

  // `report --status failed` writes exactly the failed rows.
  const failedOut = join(stage.dataDir, 'failed.csv');
  const failedOnly = await cli(stage, 'report', jobId, '--status', 'failed', '--out', failedOut);
  expect(failedOnly.code).toBe(0);
  const failedRows = csvRows(await readFile(failedOut, 'utf8'));
  expect(failedRows.length).toBe(first.summary.counts.failed);
  expect(failedRows.map((row) => [row.row, row.status])).toEqual([
    ['3', 'failed'],
    ['4', 'failed'],
    ['5', 'failed'],
  ]);

  // The retry, with a deadline the throttling does not outlast (and short waits between polls).
  const retried = await cli(stage, 'retry', jobId, '--deadline', '60s', '--max-wait', '1s', '--wait');
  const retryId = retried.stdout.split('\n').find((line) => line.startsWith('reset-')) as string;
  expect(retryId).toBeTruthy();
  expect(retried.code).toBe(0);
  for (const user of [users[1], users[3]]) expect(stage.simulator.user(user)?.resetsAccepted).toBe(1);

  // Its report numbers rows as the original job did (its own CSV's rows 2 and 3 kept as csvRow).
  const second = await readJson<Report>(join(stage.dataDir, 'jobs', retryId, 'report.json'));
  expect(second.outcomes.map((row) => [row.row, row.csvRow, row.user, row.status])).toEqual([
    [3, 2, users[1], 'succeeded'],
    [5, 3, users[3], 'succeeded'],
  ]);
  const secondCsv = csvRows(await readFile(join(stage.dataDir, 'jobs', retryId, 'report.csv'), 'utf8'));
  expect(secondCsv.map((row) => row.row)).toEqual(['3', '5']);
  // Linked both ways.
  expect(second.job.retryOf).toBe(jobId);
  const original = await readJson<Report>(join(stage.dataDir, 'jobs', jobId, 'report.json'));
  expect(original.job.retriedBy).toEqual([retryId]);

  // --final: one row per original row, the last outcome of each user, and which job gave it.
  const finalOut = join(stage.dataDir, 'final.json');
  expect((await cli(stage, 'report', jobId, '--final', '--format', 'json', '--out', finalOut)).code).toBe(0);
  const final = await readJson<Report>(finalOut);
  expect(final.outcomes.map((row) => [row.row, row.user, row.status, row.job])).toEqual([
    [2, users[0], 'succeeded', jobId],
    [3, users[1], 'succeeded', retryId],
    [4, users[2], 'failed', jobId],
    [5, users[3], 'succeeded', retryId],
  ]);
  expect(final.summary.counts).toMatchObject({ succeeded: 3, failed: 1 });

  // --final with --status failed, as a CSV: just the user still failed.
  const stillFailedOut = join(stage.dataDir, 'still-failed.csv');
  const stillFailed = await cli(
    stage,
    'report',
    jobId,
    '--final',
    '--status',
    'failed',
    '--out',
    stillFailedOut,
  );
  expect(stillFailed.code).toBe(0);
  const stillFailedRows = csvRows(await readFile(stillFailedOut, 'utf8'));
  expect(stillFailedRows.length).toBe(final.summary.counts.failed);
  expect(stillFailedRows.map((row) => [row.row, row.user])).toEqual([['4', users[2]]]);
});
