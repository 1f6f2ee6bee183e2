/**
 * What a worker process (`bulk-reset worker`) writes to its log over a job with every kind of trouble
 * Graph gives: one line per record, no stack trace for the expected refusals, no user name; and with
 * BULK_RESET_LOG_FORMAT=json, one JSON object per line that a log pipeline reads as it is.
 *
 * BULK_RESET_TEST_LOG_USERS sets the job's size (default 40) to measure lines per user on a larger job.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { checkCsv, startJob, waitForJob } from '../client/jobs';
import { sampleCsv } from '../simulator/sampleUsers';
import { PROJECT_ROOT } from '../temporal/devServer';
import { FAST_POLICY, type Stage, openStage, waitUntil } from './support/harness';

const USERS = Number(process.env.BULK_RESET_TEST_LOG_USERS ?? 40);

let stage: Stage;
/** Worker processes started here, stopped at the end whatever happened (a test that timed out). */
const workers: ChildProcess[] = [];

beforeAll(async () => {
  stage = await openStage({ retryAfterSeconds: 0.2 });
});

afterAll(async () => {
  for (const worker of workers)
    if (worker.exitCode === null && worker.signalCode === null) worker.kill('SIGKILL');
  await stage?.close();
});

/**
 * Runs a job of USERS sample users on a worker process with this environment; answers every line the
 * worker wrote to standard error while it ran, and the users' names.
 */
async function logOfJob(env: Record<string, string>): Promise<{ lines: string[]; users: string[] }> {
  const worker: ChildProcess = spawn(
    process.execPath,
    [join(PROJECT_ROOT, 'dist', 'client', 'cli.js'), 'worker'],
    {
      env: { ...stage.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  workers.push(worker);
  let stderr = '';
  worker.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  try {
    const sample = sampleCsv(USERS, { duplicateEvery: 0, invalidEvery: 0 });
    const csv = await checkCsv(await stage.writeCsv(`log-${Object.keys(env).join('-')}.csv`, sample.text));
    const jobId = await startJob(stage.client, stage.settings.taskQueue, csv, {
      windowSize: 50,
      policy: FAST_POLICY,
    });
    const final = await waitForJob(stage.client, jobId, () => undefined, 250);
    expect(final.state).toBe('completed');
    worker.kill('SIGTERM');
    await waitUntil('the worker has stopped', () => Promise.resolve(worker.exitCode !== null), 60_000);
    const lines = stderr.split('\n').filter((line) => line !== '');
    console.log(`${lines.length} log lines for ${USERS} users (${JSON.stringify(env)})`);
    const dump = process.env.BULK_RESET_TEST_LOG_DUMP;
    if (dump) await writeFile(`${dump}-${env.BULK_RESET_LOG_FORMAT ?? 'text'}.log`, stderr);
    return { lines, users: sample.rows.map((row) => row.user) };
  } finally {
    if (worker.exitCode === null) worker.kill('SIGKILL');
  }
}

/** Fails naming the first line that names a user. */
function expectNoUserIn(lines: string[], users: string[]): void {
  const local = users.map((user) => user.split('@')[0].toLowerCase());
  const naming = lines.find((line) => local.some((name) => line.toLowerCase().includes(name)));
  expect(naming).toBeUndefined();
}

test('by default each record is one line, with no stack trace and no user name', async () => {
  const { lines, users } = await logOfJob({});
  expect(lines.filter((line) => /^\s+at /.test(line))).toEqual([]);
  const record = /^\d{4}-\d\d-\d\dT[\d:.]+Z \[[A-Z]+\] /;
  expect(lines.filter((line) => !record.test(line) && !line.startsWith('bulk-reset worker:'))).toEqual([]);
  expectNoUserIn(lines, users);
});

test('BULK_RESET_LOG_FORMAT=json writes one JSON object per line: time, level, message and the ids, no user name', async () => {
  const { lines, users } = await logOfJob({ BULK_RESET_LOG_FORMAT: 'json' });
  const records = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
  for (const record of records) {
    expect(typeof record.time).toBe('string');
    expect(Number.isNaN(Date.parse(record.time as string))).toBe(false);
    expect(['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR']).toContain(record.level);
    expect(typeof record.message).toBe('string');
  }
  // The Graph refusals of the sample (denied, missing, bad password) are there, with the job and user ids.
  const statusOf = (record: Record<string, unknown>) =>
    (record.error as { httpStatus?: number } | undefined)?.httpStatus;
  const refusals = records.filter((record) => statusOf(record) === 403 || statusOf(record) === 404);
  expect(refusals.length).toBeGreaterThan(0);
  for (const record of refusals) {
    expect(record.workflowId).toMatch(/^reset-[^/]+\/.+/);
    expect(record.jobId).toBe((record.workflowId as string).split('/')[0]);
  }
  expectNoUserIn(lines, users);
  expect(lines.join('\n')).not.toMatch(/simulator-token|Bearer|password":/i);
});
