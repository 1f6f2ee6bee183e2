/**
 * The bulk-reset CLI as an operator uses it, in its own process, against the dev server and a worker.
 */
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { checkCsv, startJob, waitForJob } from '../client/jobs';
import { sampleCsv } from '../simulator/sampleUsers';
import { FAST_CLI_WAITS, type ReportJson, openStage, readJson, useStage } from './support/harness';
import { cli } from './support/harness';

describe('with a worker', () => {
  const stage = useStage({ retryAfterSeconds: 0.2 });

  test('start --wait prints the job id and the summary, status repeats it, report --out copies it', async () => {
    const sample = sampleCsv(30, { duplicateEvery: 10, invalidEvery: 15 });
    const csvPath = await stage.writeCsv('users.csv', sample.text);
    const started = await cli(stage, 'start', csvPath, '--wait', '--window', '5', ...FAST_CLI_WAITS);
    // Some users fail on purpose (denied, missing, ...): exit code 1 says "look at the report".
    expect(started.stderr).not.toContain('bulk-reset:');
    expect(started.code).toBe(1);
    const jobId = started.stdout.split('\n').find((line) => line.startsWith('reset-'));
    expect(jobId).toBeDefined();
    expect(started.stdout).toContain(`${sample.rows.length} rows, 30 to reset, 5 skipped`);
    expect(started.stdout).toMatch(/row \d+: duplicate of row 2/);
    const succeeded = sample.rows.filter((row) => row.expected === 'succeeded').length;
    expect(started.stdout).toMatch(new RegExp(`succeeded\\s+${succeeded}\\n`));

    const status = await cli(stage, 'status', jobId as string, '--json');
    expect(status.code).toBe(1);
    const parsed = JSON.parse(status.stdout) as { state: string; summary: { total: number } };
    expect(parsed.state).toBe('completed');
    expect(parsed.summary.total).toBe(sample.rows.length);

    const out = join(stage.dataDir, 'copy.json');
    const copied = await cli(stage, 'report', jobId as string, '--out', out, '--format', 'json');
    expect(copied.code).toBe(0);
    expect((await stat(out)).mode & 0o777).toBe(0o600);
    const report = await readJson<ReportJson>(out);
    expect(report.outcomes.map((outcome) => outcome.user)).toEqual(sample.rows.map((row) => row.user));
  });

  test('a CSV without a user column is refused before anything starts, naming the line', async () => {
    const csvPath = await stage.writeCsv('wrong.csv', 'email,name\nalice@contoso.test,Alice\n');
    const result = await cli(stage, 'start', csvPath);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('line 1');
    expect(result.stderr).toContain('userPrincipalName');
    expect(stage.simulator.user('alice@contoso.test')).toBeUndefined();
  });

  test('status and report of an unknown job say so', async () => {
    const status = await cli(stage, 'status', 'reset-no-such-job');
    expect(status.code).toBe(2);
    expect(status.stdout).toContain('not found');
    const report = await cli(stage, 'report', 'reset-no-such-job', '--out', join(stage.dataDir, 'x.csv'));
    expect(report.code).toBe(2);
    expect(report.stderr).toContain('no report for job reset-no-such-job');
  });
});

test('a CSV changed after the job started stops the job before any reset', async () => {
  const stage = await openStage();
  try {
    const csvPath = await stage.writeCsv('users.csv', sampleCsv(5).text);
    const csv = await checkCsv(csvPath);
    // No worker yet: the job waits, and the file changes under it.
    const jobId = await startJob(stage.client, stage.settings.taskQueue, csv);
    await writeFile(csvPath, `${await readFile(csvPath, 'utf8')}ok.extra@contoso.test,Extra\n`);
    await stage.startWorker();
    const final = await waitForJob(stage.client, jobId, () => undefined, 200);
    expect(final.state).toBe('failed');
    expect(final.state === 'failed' && final.message).toContain('changed after the job was started');
    expect(stage.simulator.stats().posts).toBe(0);
  } finally {
    await stage.close();
  }
});
