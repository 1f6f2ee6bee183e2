/**
 * What Temporal stores is unreadable without the key: after a job, the raw histories of the job and its
 * users hold no user principal name, no password, no token; with the codec they open. And what the
 * worker and the CLI print by default names no user either.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { EncryptionCodec, loadCodecKeys } from '../temporal/codec';
import { PROJECT_ROOT } from '../temporal/devServer';
import {
  type ReportJson,
  cli,
  decodedText,
  openStage,
  readJson,
  readableText,
  useStage,
  userWorkflowIdOf,
} from './support/harness';
import { finishedJob, startStageJob, writeCheckedCsv } from './support/jobs';
import { upnCsv } from './support/users';

const stage = useStage({ retryAfterSeconds: 0.2 });

test('histories hold only ciphertext: no user, password, token or Graph message in plain text', async () => {
  const users = [
    'ok.alice.secret@contoso.test',
    'denied.bob.secret@contoso.test',
    'slow.carol.secret@contoso.test',
  ];
  const csv = await writeCheckedCsv(stage, 'secret.csv', upnCsv(users));
  const jobId = await startStageJob(stage, csv, {
    policy: { minWaitMs: 100, defaultWaitMs: 200, maxWaitMs: 1_000 },
  });
  const { summary } = await finishedJob(stage, jobId);
  expect(summary.counts).toMatchObject({ succeeded: 2, failed: 1 });

  const histories = [
    await stage.client.workflow.getHandle(jobId).fetchHistory(),
    ...(await Promise.all(
      users.map((user) =>
        userWorkflowIdOf(stage, jobId, user).then((id) => stage.client.workflow.getHandle(id).fetchHistory()),
      ),
    )),
  ];
  const raw = readableText(histories);
  for (const user of users) expect(raw).not.toContain(user.split('@')[0]);
  expect(raw).not.toContain(stage.env.GRAPH_TOKEN as string);
  expect(raw).not.toMatch(/newPassword/i);
  expect(raw).not.toContain('Insufficient privileges');
  expect(raw).not.toContain(csv.path);

  // With the key, an operator (or the Web UI through the codec server) reads it all.
  const codec = new EncryptionCodec(await loadCodecKeys(stage.settings.codecKeys));
  const opened = await decodedText(histories, codec);
  for (const user of users) expect(opened).toContain(user);
  expect(opened).toContain('Insufficient privileges');
  expect(opened).toContain('resetPassword for row');
  expect(opened).not.toContain(stage.env.GRAPH_TOKEN as string);
  expect(opened).not.toMatch(/newPassword/i);
});

test('worker and CLI logs name no user and hold no Graph message or request-id; a refusal is one line, no stack', async () => {
  // A stage of its own: this worker is a `bulk-reset worker` process, the only one on its task queue.
  const logStage = await openStage({ retryAfterSeconds: 0.2 });
  const worker = spawn(process.execPath, [join(PROJECT_ROOT, 'dist', 'client', 'cli.js'), 'worker'], {
    env: logStage.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let workerOutput = '';
  worker.stdout.on('data', (chunk: Buffer) => (workerOutput += chunk.toString()));
  worker.stderr.on('data', (chunk: Buffer) => (workerOutput += chunk.toString()));
  const refused = [
    'denied.logs.alice@contoso.test',
    'missing.logs.bob@contoso.test',
    'badpw.logs.carol@contoso.test',
  ];
  const users = [...refused, 'ok.logs.dave@contoso.test'];
  let report: ReportJson;
  let cliOutput: string;
  let refusalsSent: number;
  try {
    const csvPath = await logStage.writeCsv('logs.csv', upnCsv(users));
    const started = await cli(
      logStage,
      ...['start', csvPath, '--wait', '--min-wait', '100ms', '--default-wait', '200ms', '--max-wait', '2s'],
    );
    cliOutput = `${started.stdout}\n${started.stderr}`;
    expect(started.code).toBe(1);
    const jobId = started.stdout.split('\n').find((line) => line.startsWith('reset-')) as string;
    report = await readJson<ReportJson>(join(logStage.dataDir, 'jobs', jobId, 'report.json'));
    const { responsesByStatus } = logStage.simulator.stats();
    refusalsSent = ['400', '403', '404'].reduce((sum, status) => sum + (responsesByStatus[status] ?? 0), 0);
  } finally {
    worker.kill('SIGTERM');
    await once(worker, 'exit');
    await logStage.close();
  }

  // Ground truth from the report: Graph refused three users, each with its message and request-id.
  const failed = report.outcomes.filter((outcome) => outcome.status === 'failed');
  expect(failed.map((outcome) => [outcome.user, outcome.httpStatus])).toEqual([
    [refused[0], 403],
    [refused[1], 404],
    [refused[2], 400],
  ]);
  const requestIds = failed.map((outcome) => outcome.requestId);
  expect(requestIds.every((id) => typeof id === 'string' && id.length > 8)).toBe(true);
  const graphMessages = ['Insufficient privileges', 'does not exist', 'password complexity'];
  for (const message of graphMessages) expect(JSON.stringify(failed)).toContain(message);

  // None of it in what the worker or the CLI printed, and no stack trace either.
  const needles = [...users.map((user) => user.split('@')[0]), ...graphMessages, ...(requestIds as string[])];
  const leaks = (output: string) => needles.filter((needle) => output.includes(needle));
  const stacks = (output: string) => output.match(/^\s+at .*$/gm) ?? [];
  expect({ worker: leaks(workerOutput), cli: leaks(cliOutput) }).toEqual({ worker: [], cli: [] });
  expect({ worker: stacks(workerOutput), cli: stacks(cliOutput) }).toEqual({ worker: [], cli: [] });

  // The worker still tells the operator that Graph refused: one line per refusal it sent, with the
  // activity, the workflow id (the job and an opaque hash of the user), the HTTP status and Graph's code.
  const refusalLines = workerOutput.split('\n').filter((line) => line.includes('GraphPermanentError'));
  expect(refusalLines.length).toBeGreaterThanOrEqual(refused.length);
  expect(refusalLines.length).toBeLessThanOrEqual(refusalsSent);
  for (const line of refusalLines) {
    expect(line).toMatch(
      /\[WARN\] Activity failed .*workflowId: 'reset-[^']+\/user-[0-9a-f]+'.*httpStatus: 4\d\d, graphCode: '\w+'/,
    );
  }
});
