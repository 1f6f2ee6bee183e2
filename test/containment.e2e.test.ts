/**
 * Containment (`--confirm-compromised`) end to end, on the real dev server and worker against the Graph
 * simulator: the job confirms every user whose reset succeeded, in batches, never faster than Identity
 * Protection's one request a second, answering its 429s (which name no wait) by backing off; each report
 * row says whether its user was confirmed; and a tenant without the licence gets one refusal for the job.
 */
import { readFile } from 'node:fs/promises';
import { parse } from 'csv-parse/sync';
import { checkCsv, controlJob, startJob, waitForJob } from '../client/jobs';
import type { ContainmentSummary, ResetOutcome } from '../workflows/types';
import {
  FAST_POLICY,
  type ReportJson,
  cli,
  type RunningWorker,
  type Stage,
  openStage,
  readJson,
  waitUntil,
} from './support/harness';

type ContainmentReport = ReportJson & { job: { containment?: ContainmentSummary } };

/** `count` users, every `failEvery`th one refused by Graph (403 for its reset), as CSV text. */
function usersCsv(count: number, failEvery: number, prefix: string): { text: string; failing: Set<string> } {
  const failing = new Set<string>();
  const lines = ['userPrincipalName'];
  for (let index = 1; index <= count; index++) {
    const fails = index % failEvery === 0;
    const user = `${fails ? 'denied.' : ''}${prefix}${index}@contoso.test`;
    if (fails) failing.add(user);
    lines.push(user);
  }
  return { text: `${lines.join('\n')}\n`, failing };
}

async function runJob(stage: Stage, csvText: string, options: { maxHistoryEvents?: number } = {}) {
  const csv = await checkCsv(await stage.writeCsv('users.csv', csvText));
  const jobId = await startJob(stage.client, stage.settings.taskQueue, csv, {
    windowSize: 40,
    policy: { ...FAST_POLICY, confirmCompromised: true },
    ...options,
  });
  return { jobId, done: waitForJob(stage.client, jobId, () => undefined, 500) };
}

describe('a job with containment', () => {
  let stage: Stage;
  let worker: RunningWorker;
  beforeAll(async () => {
    // Identity Protection lets one request through every 8 s here, so the job's one a second meets 429s.
    stage = await openStage({ identityProtection: { requestsPerSecond: 0.125 } });
    worker = await stage.startWorker();
  });
  afterAll(() => stage?.close());

  test('confirms exactly the users whose reset succeeded, one request a second at most, through 429s, a worker restart and continue-as-new', async () => {
    const { text, failing } = usersCsv(240, 12, 'contain');
    const { jobId, done } = await runJob(stage, text, { maxHistoryEvents: 300 });

    // The worker stops after the first batch went out; another one carries the job on.
    await waitUntil('the first batch is sent', () =>
      Promise.resolve(stage.simulator.stats().riskyUsers.requests.length > 0),
    );
    await worker.stop();
    await stage.startWorker();
    const final = await done;
    if (final.state !== 'completed') throw new Error(`job did not complete: ${JSON.stringify(final)}`);

    const report = await readJson<ContainmentReport>(final.summary.reportJsonPath);
    const succeeded = report.outcomes.filter((outcome) => outcome.status === 'succeeded');
    const failed = report.outcomes.filter((outcome) => outcome.status === 'failed');
    expect(succeeded).toHaveLength(240 - failing.size);
    expect(failed.map((outcome) => outcome.user).sort()).toEqual([...failing].sort());

    // Ground truth: Identity Protection confirmed each succeeded user's object id exactly once, no other.
    const { riskyUsers } = stage.simulator.stats();
    const idOf = (outcome: ResetOutcome): string => stage.simulator.user(outcome.user)?.id ?? 'unknown';
    const expected = Object.fromEntries(succeeded.map((outcome) => [idOf(outcome), 1]));
    expect(riskyUsers.confirmed).toEqual(expected);
    for (const outcome of failed) expect(riskyUsers.confirmed[idOf(outcome)]).toBeUndefined();

    // Never two requests within a second, 429s included; some were 429s, and they were waited out.
    const times = riskyUsers.requests.map((request) => request.at);
    const gaps = times.slice(1).map((at, index) => at - times[index]);
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(990);
    const statuses = riskyUsers.requests.map((request) => request.status);
    expect(statuses.filter((status) => status === 429).length).toBeGreaterThan(0);
    expect(statuses.filter((status) => status !== 204 && status !== 429)).toEqual([]);
    // Batches, not users: each 204 carried at most 60 ids, and far fewer requests than users were sent.
    expect(Math.max(...riskyUsers.requests.map((request) => request.userIds.length))).toBeLessThanOrEqual(60);
    expect(statuses.filter((status) => status === 204).length).toBeLessThan(succeeded.length / 4);

    // Every row says so, once, in both reports.
    expect(succeeded.every((outcome) => outcome.confirmedCompromised === true)).toBe(true);
    expect(failed.every((outcome) => outcome.confirmedCompromised === undefined)).toBe(true);
    expect(report.job.containment).toEqual({ confirmed: succeeded.length, notConfirmed: 0 });
    const csvRows = parse<Record<string, string>>(
      (await readFile(final.summary.reportCsvPath, 'utf8')).replace(/^\uFEFF/, ''),
      { columns: true },
    );
    expect(csvRows).toHaveLength(240);
    for (const row of csvRows) {
      expect(row.confirmedCompromised).toBe(row.status === 'succeeded' ? 'true' : '');
    }

    // The job continued as new on the way (its history limit is small), and nothing was lost by it.
    const runs = [];
    for await (const run of stage.client.workflow.list({ query: `WorkflowId = '${jobId}'` })) runs.push(run);
    expect(runs.length).toBeGreaterThan(1);
  });
});

describe('a job with containment in a tenant without the licence', () => {
  let stage: Stage;
  beforeAll(async () => {
    stage = await openStage({ identityProtection: { licensed: false } });
    await stage.startWorker();
  });
  afterAll(() => stage?.close());

  test('gets one refusal for the whole job, recorded in the report header and on every succeeded row', async () => {
    const { text, failing } = usersCsv(90, 10, 'unlicensed');
    const csvPath = await stage.writeCsv('users.csv', text);
    // As an operator runs it: the flag on `start`, waiting for the end.
    const started = await cli(
      stage,
      'start',
      csvPath,
      '--confirm-compromised',
      '--wait',
      '--window',
      '40',
      '--min-wait',
      '100ms',
      '--default-wait',
      '200ms',
      '--max-wait',
      '2s',
    );
    // Users were left unconfirmed, so the job ends with exit code 1 and its summary says why.
    expect(started.code).toBe(1);
    expect(started.stdout).toContain(`confirmed compromised 0, not confirmed ${90 - failing.size}`);
    expect(started.stdout).toMatch(/containment refused for the job: .*403 Forbidden/);
    const jobId = started.stdout.split('\n').find((line) => line.startsWith('reset-')) as string;
    const status = JSON.parse((await cli(stage, 'status', jobId, '--json')).stdout) as {
      summary: { reportJsonPath: string };
    };
    const final = { summary: status.summary };

    // One request was refused, and no other was sent: not one per user, not one per batch.
    const { riskyUsers } = stage.simulator.stats();
    expect(riskyUsers.requests.map((request) => request.status)).toEqual([403]);
    expect(riskyUsers.confirmed).toEqual({});

    const report = await readJson<ContainmentReport>(final.summary.reportJsonPath);
    const succeeded = report.outcomes.filter((outcome) => outcome.status === 'succeeded');
    expect(succeeded).toHaveLength(90 - failing.size);
    const refusal = report.job.containment?.refused ?? '';
    expect(refusal).toMatch(/403 Forbidden.*licensed.*IdentityRiskyUser\.ReadWrite\.All/);
    expect(report.job.containment).toEqual({
      confirmed: 0,
      notConfirmed: succeeded.length,
      refused: refusal,
    });
    for (const outcome of succeeded) {
      expect(outcome).toMatchObject({ confirmedCompromised: false, confirmedCompromisedReason: refusal });
    }
    for (const outcome of report.outcomes.filter((row) => row.status !== 'succeeded')) {
      expect(outcome.confirmedCompromised).toBeUndefined();
    }
  });
});

describe('a cancelled job with containment', () => {
  let stage: Stage;
  beforeAll(async () => {
    stage = await openStage();
    await stage.startWorker();
  });
  afterAll(() => stage?.close());

  test('confirms no one after the cancel, and every reset user says whether it was confirmed, as Graph saw it', async () => {
    const { text } = usersCsv(150, 1_000, 'cancelled');
    const { jobId, done } = await runJob(stage, text);
    await waitUntil('a first batch is confirmed', () =>
      Promise.resolve(stage.simulator.stats().riskyUsers.requests.some((request) => request.status === 204)),
    );
    await controlJob(stage.client, jobId, 'cancel', { by: 'ops-9', reason: 'wrong list' });
    const sentAtCancel = stage.simulator.stats().riskyUsers.requests.length;
    const final = await done;
    if (final.state !== 'completed') throw new Error(`job did not complete: ${JSON.stringify(final)}`);

    const report = await readJson<ContainmentReport>(final.summary.reportJsonPath);
    const { riskyUsers } = stage.simulator.stats();
    // At most the batch already on its way when the cancel came was sent after it.
    expect(riskyUsers.requests.length - sentAtCancel).toBeLessThanOrEqual(1);
    const succeeded = report.outcomes.filter((outcome) => outcome.status === 'succeeded');
    const confirmed = succeeded.filter((outcome) => outcome.confirmedCompromised === true);
    const notConfirmed = succeeded.filter((outcome) => outcome.confirmedCompromised === false);
    expect(confirmed.length).toBeGreaterThan(0);
    expect(confirmed.length + notConfirmed.length).toBe(succeeded.length);
    expect(report.outcomes.some((outcome) => outcome.status === 'cancelled')).toBe(true);
    // The report is exact: confirmed rows are the ids Identity Protection confirmed, once each.
    const idOf = (outcome: ResetOutcome): string => stage.simulator.user(outcome.user)?.id ?? 'unknown';
    expect(riskyUsers.confirmed).toEqual(Object.fromEntries(confirmed.map((outcome) => [idOf(outcome), 1])));
    for (const outcome of notConfirmed) {
      expect(outcome.confirmedCompromisedReason).toBe(
        'the job was cancelled by ops-9 before this user was confirmed compromised',
      );
    }
    for (const outcome of report.outcomes.filter((row) => row.status !== 'succeeded')) {
      expect(outcome.confirmedCompromised).toBeUndefined();
    }
    expect(report.job.containment).toEqual({
      confirmed: confirmed.length,
      notConfirmed: notConfirmed.length,
    });
  });
});
