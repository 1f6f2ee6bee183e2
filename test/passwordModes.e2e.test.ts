/**
 * The three password modes end to end, with a `bulk-reset worker` process and the CLI as an operator
 * runs them: each new password reaches Graph (the simulator) and the secrets file, and nothing else. All
 * output of the worker and the CLI, the report, the job's files and the raw Temporal history are searched
 * for every password the simulator received or generated, and for the bearer token.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { once } from 'node:events';
import { chmod, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../temporal/devServer';
import { EncryptionCodec, loadCodecKeys } from '../temporal/codec';
import { hasEveryClass } from '../secrets/passwords';
import { readCurrentSecrets } from '../secrets/secretsFile';
import {
  type CliResult,
  type ReportJson,
  type Stage,
  cli,
  decodedText,
  openStage,
  readJson,
  readableText,
  waitUntil,
  userWorkflowIdOf,
} from './support/harness';
import { finishedJob } from './support/jobs';
import { upnCsv } from './support/users';

let stage: Stage;
let worker: ChildProcess;
let workerOutput = '';
const cliOutput: string[] = [];
const jobIds: string[] = [];
/** Every password the simulator saw, in any mode: the needles searched for at the end. */
const allPasswords = new Set<string>();

const recipient = generateKeyPairSync('rsa', { modulusLength: 2048 });
let publicKeyPath: string;
let privateKeyPath: string;

const TIMINGS = ['--min-wait', '100ms', '--default-wait', '200ms', '--max-wait', '2s', '--deadline', '2m'];

beforeAll(async () => {
  stage = await openStage({ retryAfterSeconds: 0.2, keepPasswords: true });
  publicKeyPath = join(stage.dataDir, 'recipient.pub.pem');
  privateKeyPath = join(stage.dataDir, 'recipient.key.pem');
  await writeFile(publicKeyPath, recipient.publicKey.export({ type: 'spki', format: 'pem' }));
  await writeFile(privateKeyPath, recipient.privateKey.export({ type: 'pkcs8', format: 'pem' }), {
    mode: 0o600,
  });
  // The only worker: every activity, the POSTs included, runs in this process, and all it prints is kept.
  worker = spawn(process.execPath, [join(PROJECT_ROOT, 'dist', 'client', 'cli.js'), 'worker'], {
    env: stage.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  worker.stdout?.on('data', (chunk: Buffer) => (workerOutput += chunk.toString()));
  worker.stderr?.on('data', (chunk: Buffer) => (workerOutput += chunk.toString()));
});

afterAll(async () => {
  if (worker && worker.exitCode === null && worker.signalCode === null) worker.kill('SIGKILL');
  await stage?.close();
});

async function run(...args: string[]): Promise<CliResult> {
  const result = await cli(stage, ...args);
  cliOutput.push(result.stdout, result.stderr);
  return result;
}

function jobIdOf(result: CliResult): string {
  const jobId = result.stdout.split('\n').find((line) => line.startsWith('reset-'));
  if (!jobId) throw new Error(`no job id in: ${result.stdout}\n${result.stderr}`);
  jobIds.push(jobId);
  return jobId;
}

/** Users for one mode: plain, throttled, failing then accepted, a dropped POST resent, and one denied. */
function usersFor(mode: string): { succeed: string[]; denied: string } {
  return {
    succeed: ['ok.a', 'ok.b', 'throttled.c', 'flaky.d', 'drop.e', 'slow.f'].map(
      (name) => `${name}.${mode}@contoso.test`,
    ),
    denied: `denied.g.${mode}@contoso.test`,
  };
}

/** What the simulator says each user's current password is; remembers every password it saw. */
function simulatorPasswords(users: string[]): Map<string, string> {
  const current = new Map<string, string>();
  for (const user of users) {
    const seen = stage.simulator.passwords(user);
    if (!seen) throw new Error(`the simulator never saw ${user}`);
    for (const password of [...seen.received, ...seen.accepted]) allPasswords.add(password);
    const last = seen.accepted.at(-1);
    if (last !== undefined) current.set(user, last);
  }
  return current;
}

async function expectReport(jobId: string, succeeded: string[], failed: string[]): Promise<ReportJson> {
  const report = await readJson<ReportJson>(join(stage.dataDir, 'jobs', jobId, 'report.json'));
  const byStatus = (status: string) =>
    report.outcomes.filter((outcome) => outcome.status === status).map((outcome) => outcome.user);
  expect(byStatus('succeeded').sort()).toEqual([...succeeded].sort());
  expect(byStatus('failed')).toEqual(failed);
  return report;
}

test('graph mode: Graph generates each password; the secrets file keeps the one Graph applied last', async () => {
  const { succeed, denied } = usersFor('graph');
  const csvPath = await stage.writeCsv('graph.csv', upnCsv([...succeed, denied]));
  const secretsPath = join(stage.dataDir, 'graph-secrets.jsonl');
  const started = await run('start', csvPath, '--wait', '--secrets-file', secretsPath, ...TIMINGS);
  expect(started.code).toBe(1); // the denied user failed
  const jobId = jobIdOf(started);
  await expectReport(jobId, succeed, [denied]);

  for (const user of [...succeed, denied]) expect(stage.simulator.user(user)?.passwordSupplied).toBe(false);
  const truth = simulatorPasswords([...succeed, denied]);
  expect((await stat(secretsPath)).mode & 0o777).toBe(0o600);
  const kept = await readCurrentSecrets(secretsPath);
  expect(new Map(kept.map((secret) => [secret.user, secret.password]))).toEqual(truth);
  expect(kept.map((secret) => secret.user).sort()).toEqual([...succeed].sort());
});

test('generated mode: a unique CSPRNG password per user is sent, sealed to the recipient in the secrets file', async () => {
  const { succeed, denied } = usersFor('generated');
  const csvPath = await stage.writeCsv('generated.csv', upnCsv([...succeed, denied]));
  const secretsPath = join(stage.dataDir, 'generated-secrets.jsonl');
  const started = await run(
    'start',
    csvPath,
    '--wait',
    '--password',
    'generated',
    '--password-length',
    '24',
    '--secrets-file',
    secretsPath,
    '--secrets-recipient',
    publicKeyPath,
    ...TIMINGS,
  );
  expect(started.code).toBe(1);
  const jobId = jobIdOf(started);
  await expectReport(jobId, succeed, [denied]);

  for (const user of [...succeed, denied]) expect(stage.simulator.user(user)?.passwordSupplied).toBe(true);
  const truth = simulatorPasswords([...succeed, denied]);
  const received = [...succeed, denied].flatMap((user) => stage.simulator.passwords(user)?.received ?? []);
  // A new password for every request, resends included (throttled, flaky and dropped users sent several).
  expect(received.length).toBeGreaterThan(succeed.length + 1);
  expect(new Set(received).size).toBe(received.length);
  for (const password of received) {
    expect(password).toHaveLength(24);
    expect(hasEveryClass(password)).toBe(true);
  }

  expect((await stat(secretsPath)).mode & 0o777).toBe(0o600);
  const raw = await readFile(secretsPath, 'utf8');
  for (const password of received) expect(raw).not.toContain(password);
  await expect(readCurrentSecrets(secretsPath)).rejects.toThrow(/encrypted to the key/);
  const refused = await run('secrets', 'decrypt', secretsPath);
  expect(refused.code).toBe(2);
  expect(refused.stderr).toContain('--key');

  // The recipient opens it; this output holds passwords by design, so it is not searched below.
  const opened = await cli(stage, 'secrets', 'decrypt', '--key', privateKeyPath, secretsPath);
  expect(opened.code).toBe(0);
  const lines = opened.stdout.trim().split('\n');
  expect(lines[0]).toBe('row,user,password');
  const decrypted = new Map(
    lines.slice(1).map((line) => {
      const [, user, cell] = JSON.parse(`[${line}]`) as [string, string, string];
      // The README: a generated password's cell that starts with ' had it added (the password starts
      // like a spreadsheet formula); the password is the rest.
      return [user, cell.startsWith("'") ? cell.slice(1) : cell];
    }),
  );
  expect(decrypted).toEqual(truth);
  expect([...decrypted.keys()].sort()).toEqual([...succeed].sort());
});

test("csv mode: each row's password is sent as written, an empty cell is an error, the CLI warns", async () => {
  const { succeed, denied } = usersFor('csv');
  const written = new Map(
    [...succeed, denied].map((user, index) => [
      user,
      `Csv-Pass-${index}-${createHash('sha256').update(user).digest('hex').slice(0, 8)}!`,
    ]),
  );
  const empty = 'ok.empty.csv@contoso.test';
  const csvPath = await stage.writeCsv(
    'csv.csv',
    `userPrincipalName,newPassword\n${[...written].map(([user, password]) => `${user},${password}`).join('\n')}\n${empty},\n`,
  );
  for (const password of written.values()) allPasswords.add(password);
  const secretsPath = join(stage.dataDir, 'csv-secrets.jsonl');
  const started = await run(
    'start',
    csvPath,
    '--wait',
    '--password',
    'csv',
    '--secrets-file',
    secretsPath,
    '--secrets-recipient',
    publicKeyPath,
    ...TIMINGS,
  );
  expect(started.stderr).toContain('WARNING: the new passwords come from the CSV');
  expect(started.stdout).toMatch(/row 9: no newPassword value/);
  expect(started.code).toBe(1);
  const jobId = jobIdOf(started);
  const report = await expectReport(jobId, succeed, [denied]);
  expect(report.outcomes.find((outcome) => outcome.user === empty)).toMatchObject({
    row: 9,
    status: 'skipped',
    reason: expect.stringContaining('no newPassword value') as unknown,
  });
  expect(stage.simulator.user(empty)).toBeUndefined();

  const truth = simulatorPasswords([...succeed, denied]);
  for (const user of succeed) {
    expect(stage.simulator.user(user)?.passwordSupplied).toBe(true);
    expect(truth.get(user)).toBe(written.get(user));
    expect(new Set(stage.simulator.passwords(user)?.received)).toEqual(new Set([written.get(user)]));
  }
  expect((await stat(secretsPath)).mode & 0o777).toBe(0o600);
  const opened = await cli(stage, 'secrets', 'decrypt', '--key', privateKeyPath, secretsPath);
  expect(opened.code).toBe(0);
  for (const user of succeed) expect(opened.stdout).toContain(`"${user}","${written.get(user)}"`);
  expect(opened.stdout).not.toContain(denied);
});

test('a newPassword column outside csv mode is refused before anything starts', async () => {
  const csvPath = await stage.writeCsv(
    'stray.csv',
    'userPrincipalName,newPassword\nok.stray@contoso.test,Stray-Pass-1!\n',
  );
  const result = await run('start', csvPath);
  expect(result.code).toBe(2);
  expect(result.stderr).toContain('--password csv');
  expect(stage.simulator.user('ok.stray@contoso.test')).toBeUndefined();
});

test('a secrets file others can read stops every reset before it is sent', async () => {
  const users = ['ok.h.open@contoso.test', 'ok.i.open@contoso.test'];
  const csvPath = await stage.writeCsv('open.csv', upnCsv(users));
  const secretsPath = join(stage.dataDir, 'open-secrets.jsonl');
  // Approval holds the job after it prepared (and created the secrets file), before any reset.
  const started = await run(
    'start',
    csvPath,
    '--password',
    'generated',
    '--secrets-file',
    secretsPath,
    '--require-approval',
    ...TIMINGS,
  );
  expect(started.code).toBe(0);
  const jobId = jobIdOf(started);
  await waitUntil('the job created its secrets file', () =>
    stat(secretsPath).then(
      () => true,
      () => false,
    ),
  );
  expect((await stat(secretsPath)).mode & 0o777).toBe(0o600);
  await chmod(secretsPath, 0o644);
  const approver = { ...stage, env: { ...stage.env, BULK_RESET_OPERATOR: 'second-operator@contoso.test' } };
  const approved = await cli(approver, 'approve', jobId);
  cliOutput.push(approved.stdout, approved.stderr);
  expect(approved.code).toBe(0);

  const { summary, report } = await finishedJob(stage, jobId);
  expect(summary.counts).toMatchObject({ succeeded: 0, failed: 2 });
  for (const outcome of report.outcomes) {
    expect(outcome.reason).toMatch(/has mode 0644.*nothing was sent/);
    expect(outcome.startAttempts).toBe(1);
  }
  // Nothing was sent: at most the read of when the password last changed (a GET), never a reset.
  for (const user of users) {
    const seen = stage.simulator.user(user);
    expect(seen?.posts ?? 0).toBe(0);
    expect(seen?.passwordSupplied ?? false).toBe(false);
    expect(stage.simulator.passwords(user)?.received ?? []).toEqual([]);
  }
  expect((await readFile(secretsPath, 'utf8')).trim().split('\n')).toHaveLength(1);
});

test('no password and no token anywhere: worker and CLI output, reports, job files, raw history', async () => {
  expect(jobIds).toHaveLength(4);
  expect(allPasswords.size).toBeGreaterThan(20);
  worker.kill('SIGTERM');
  await once(worker, 'exit');

  const token = stage.env.GRAPH_TOKEN as string;
  const codec = new EncryptionCodec(await loadCodecKeys(stage.settings.codecKeys));
  const places: [string, string][] = [
    ['worker output', workerOutput],
    ['CLI output', cliOutput.join('\n')],
  ];
  for (const jobId of jobIds) {
    const folder = join(stage.dataDir, 'jobs', jobId);
    for (const name of await readdir(folder))
      places.push([`${jobId}/${name}`, await readFile(join(folder, name), 'utf8')]);
    const report = await readJson<ReportJson>(join(folder, 'report.json'));
    const histories = [
      await stage.client.workflow.getHandle(jobId).fetchHistory(),
      ...(await Promise.all(
        report.outcomes
          .filter((outcome) => outcome.status !== 'skipped')
          .map((outcome) =>
            userWorkflowIdOf(stage, jobId, outcome.user).then((id) =>
              stage.client.workflow.getHandle(id).fetchHistory(),
            ),
          ),
      )),
    ];
    places.push([`${jobId} raw history`, readableText(histories)]);
    // Even an operator holding the codec key finds no password there.
    places.push([`${jobId} decoded history`, await decodedText(histories, codec)]);
  }
  // The capture did capture: the worker logged the denied users' failed POSTs (by type, status and
  // Graph code: Graph's message stays out of the log, see secrecy.e2e), the CLI its summaries.
  expect(workerOutput).toContain("graphCode: 'Authorization_RequestDenied'");
  expect(workerOutput).toContain("activityType: 'startReset'");
  expect(cliOutput.join('\n')).toContain('succeeded');
  for (const [place, text] of places) {
    const leaked = [...allPasswords].filter((password) => text.includes(password));
    expect({ place, leaked, token: text.includes(token) }).toEqual({ place, leaked: [], token: false });
  }
});
