/**
 * A runbook driving bulk-reset through its CLI: it captures job ids from standard output, parses the
 * `--json` answers (exactly one JSON object on standard output), lists jobs, and reads the exit codes
 * and errors for unknown and finished jobs. Against the dev server, a worker and the Graph simulator.
 */
import { randomBytes } from 'node:crypto';
import { sampleCsv } from '../simulator/sampleUsers';
import { type CliResult, type Stage, cli, openStage, waitUntil } from './support/harness';
import { jobState } from '../client/jobs';

let stage: Stage;

beforeAll(async () => {
  stage = await openStage({ retryAfterSeconds: 0.2 });
  await stage.startWorker();
});

afterAll(async () => {
  await stage?.close();
});

const FAST = ['--min-wait', '100ms', '--default-wait', '200ms'];

/** Standard output parsed as exactly one JSON object: fails the test if anything else is there. */
function onlyJson(result: CliResult): Record<string, unknown> {
  const text = result.stdout.trim();
  expect(text.startsWith('{')).toBe(true);
  const parsed = JSON.parse(text) as unknown;
  expect(typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)).toBe(true);
  return parsed as Record<string, unknown>;
}

async function csvOf(name: string, users: number, scenario?: 'ok' | 'slow' | 'denied'): Promise<string> {
  return stage.writeCsv(name, sampleCsv(users, { scenario, duplicateEvery: 0, invalidEvery: 3 }).text);
}

async function finished(jobId: string): Promise<void> {
  await waitUntil(`job ${jobId} ends`, async () => (await jobState(stage.client, jobId)).state !== 'running');
}

test('start prints the job id alone on standard output, the CSV check on standard error', async () => {
  const csvPath = await csvOf('capture.csv', 4, 'ok');
  const started = await cli(stage, 'start', csvPath, ...FAST);
  expect(started.code).toBe(0);
  // `JOB=$(bulk-reset start users.csv)` captures the id and nothing else.
  expect(started.stdout).toMatch(/^reset-[0-9]{8}-[0-9]{6}-[0-9a-f]{6}\n$/);
  expect(started.stderr).toContain('rows, 4 to reset, 1 skipped');
  expect(started.stderr).toMatch(/row \d+: /);
  await finished(started.stdout.trim());
});

test('start, pause, resume, cancel and retry --json each print one JSON object and nothing else', async () => {
  const csvPath = await csvOf('json.csv', 30, 'slow');
  const started = await cli(stage, 'start', csvPath, '--json', '--window', '2', ...FAST);
  expect(started.code).toBe(0);
  const start = onlyJson(started);
  const jobId = start.jobId as string;
  expect(jobId).toMatch(/^reset-/);
  expect(start).toMatchObject({ csv: { runnableRows: 30, problemCount: 10, totalRows: 40 } });
  expect(started.stderr).toContain('30 to reset, 10 skipped');

  const paused = await cli(stage, 'pause', jobId, '--json', '--reason', 'runbook check');
  expect(paused.code).toBe(0);
  expect(onlyJson(paused)).toMatchObject({ jobId, action: 'pause', progress: { phase: 'paused' } });

  const resumed = await cli(stage, 'resume', jobId, '--json');
  expect(resumed.code).toBe(0);
  expect(onlyJson(resumed)).toMatchObject({ jobId, action: 'resume' });

  const cancelled = await cli(stage, 'cancel', jobId, '--json');
  expect(cancelled.code).toBe(0);
  expect(onlyJson(cancelled)).toMatchObject({ jobId, action: 'cancel' });
  await finished(jobId);

  // Cancelled rows are not retryable: --all-failed takes the failed ones only, so this job has none.
  const none = await cli(stage, 'retry', jobId, '--json');
  expect(none.code).toBe(0);
  expect(onlyJson(none)).toMatchObject({ retryOf: jobId, jobId: null, rows: 0 });
});

test('retry prints the new job id alone, or with --json one object naming both jobs', async () => {
  const csvPath = await csvOf('denied.csv', 3, 'denied');
  const started = await cli(stage, 'start', csvPath, '--wait', ...FAST);
  expect(started.code).toBe(1);
  const jobId = started.stdout.split('\n')[0];
  expect(jobId).toMatch(/^reset-/);

  const retried = await cli(stage, 'retry', jobId, '--all-failed');
  expect(retried.code).toBe(0);
  expect(retried.stdout).toMatch(/^reset-[0-9]{8}-[0-9]{6}-[0-9a-f]{6}\n$/);
  expect(retried.stderr).toContain(`3 rows of ${jobId} retried as`);
  await finished(retried.stdout.trim());

  const again = await cli(stage, 'retry', jobId, '--all-failed', '--json', '--wait');
  const answer = onlyJson(again);
  expect(answer).toMatchObject({ retryOf: jobId, rows: 3, state: 'completed', summary: { total: 3 } });
  // The exit code is the retried job's, and the answer says it too.
  expect(answer.exitCode).toBe(again.code);
  expect(answer.jobId).not.toBe(retried.stdout.trim());
  // Progress went to standard error, not into the answer.
  expect(again.stderr).toMatch(/^\[[a-z-]+\] /m);
});

test('list shows the jobs started here, newest first, and no user workflow', async () => {
  const first = await cli(stage, 'start', await csvOf('list-1.csv', 2, 'ok'), '--json', ...FAST);
  const second = await cli(stage, 'start', await csvOf('list-2.csv', 2, 'ok'), '--json', ...FAST);
  const ids = [onlyJson(second).jobId as string, onlyJson(first).jobId as string];
  for (const id of ids) await finished(id);

  const listed = await cli(stage, 'list', '--json', '--limit', '50');
  expect(listed.code).toBe(0);
  const { jobs } = onlyJson(listed) as {
    jobs: { jobId: string; state: string; startedBy?: string; counts?: Record<string, number> }[];
  };
  const mine = jobs.filter((job) => ids.includes(job.jobId));
  expect(mine.map((job) => job.jobId)).toEqual(ids);
  expect(mine[0]).toMatchObject({ state: 'done', counts: { succeeded: 2, skipped: 0, failed: 0 } });
  expect(mine[0].startedBy).toBeTruthy();
  // Only jobs: the users' own workflows (ids with a `/`) are not listed.
  expect(jobs.every((job) => !job.jobId.includes('/'))).toBe(true);

  const limited = await cli(stage, 'list', '--json', '--limit', '1');
  expect((onlyJson(limited).jobs as unknown[]).length).toBe(1);

  const plain = await cli(stage, 'list');
  expect(plain.code).toBe(0);
  const lines = plain.stdout.trimEnd().split('\n');
  expect(lines.findIndex((line) => line.startsWith(ids[0]))).toBeLessThan(
    lines.findIndex((line) => line.startsWith(ids[1])),
  );
  expect(plain.stdout).toMatch(new RegExp(`${ids[0]}\\s+done\\s`));
});

test('an unknown job is named as such, with what to do and exit code 2, for every job command', async () => {
  const missing = `nojob-${randomBytes(3).toString('hex')}`;
  for (const args of [
    ['status', missing],
    ['watch', missing],
    ['pause', missing],
    ['resume', missing],
    ['cancel', missing, '--json'],
    ['approve', missing],
  ]) {
    const result = await cli(stage, ...args);
    expect([args[0], result.code]).toEqual([args[0], 2]);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain(`no job ${missing}`);
    expect(result.stderr).toContain('bulk-reset list');
    expect(result.stderr).not.toMatch(/workflow not found/i);
  }
});

test('approve, pause and cancel of a finished job say it has finished, with exit code 2', async () => {
  const started = await cli(stage, 'start', await csvOf('done.csv', 2, 'ok'), '--wait', ...FAST);
  expect(started.code).toBe(0);
  const jobId = started.stdout.split('\n')[0];
  for (const action of ['approve', 'pause', 'cancel']) {
    const result = await cli(stage, action, jobId);
    expect([action, result.code]).toEqual([action, 2]);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain(`job ${jobId} has already finished`);
    expect(result.stderr).toContain(`bulk-reset status ${jobId}`);
  }
});

test('a job id already taken is refused in a sentence, and with --json nothing is on standard output', async () => {
  const jobId = `runbook-${randomBytes(3).toString('hex')}`;
  const csvPath = await csvOf('taken.csv', 2, 'ok');
  const first = await cli(stage, 'start', csvPath, '--job-id', jobId, '--json', '--wait', ...FAST);
  expect(first.code).toBe(0);
  expect(onlyJson(first)).toMatchObject({ jobId, state: 'completed', exitCode: 0 });

  const second = await cli(stage, 'start', csvPath, '--job-id', jobId, '--json');
  expect(second.code).toBe(2);
  expect(second.stdout).toBe('');
  expect(second.stderr).toContain(`job id ${jobId} is already taken`);
  expect(second.stderr).not.toMatch(/already started/i);
});

test('schedule create and delete --json print one object each', async () => {
  const scheduleId = `runbook-${randomBytes(3).toString('hex')}`;
  const csvPath = await csvOf('scheduled.csv', 2, 'ok');
  const created = await cli(
    stage,
    'schedule',
    'create',
    csvPath,
    '--id',
    scheduleId,
    '--every',
    '1h',
    '--json',
  );
  expect(created.code).toBe(0);
  const answer = onlyJson(created);
  expect(answer).toMatchObject({ scheduleId, timing: 'every 1h' });
  expect((answer.nextRuns as string[]).length).toBeGreaterThan(0);
  expect(created.stderr).toContain('2 to reset');

  const deleted = await cli(stage, 'schedule', 'delete', scheduleId, '--json');
  expect(deleted.code).toBe(0);
  expect(onlyJson(deleted)).toEqual({ scheduleId, deleted: true, stillRunning: [] });

  const again = await cli(stage, 'schedule', 'delete', scheduleId, '--json');
  expect(again.code).toBe(2);
  expect(again.stdout).toBe('');
  expect(again.stderr).toContain(`no schedule named ${scheduleId}`);
});
