/**
 * `--method password-profile` end to end: the CLI and a `bulk-reset worker` process against the Graph
 * simulator, as an operator and as an unattended app (managed identity through a local token endpoint,
 * which @azure/identity reaches as it reaches App Service's). What the simulator saw is the ground truth:
 * every PATCH with its flags, and no resetPassword at all.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { PROJECT_ROOT } from '../temporal/devServer';
import { EncryptionCodec, loadCodecKeys } from '../temporal/codec';
import { checkCsv, jobState, startJob, waitForJob } from '../client/jobs';
import { jobPaths } from '../jobs/jobFiles';
import type { PlanFile } from '../jobs/planFile';
import { readCurrentSecrets } from '../secrets/secretsFile';
import { unsignedToken } from '../graph/tokenClaims';
import {
  type CliResult,
  FAST_POLICY,
  type ReportJson,
  type Stage,
  decodedText,
  openStage,
  readJson,
  readableText,
  runCli,
  userWorkflowIdOf,
} from './support/harness';

const TIMINGS = ['--min-wait', '100ms', '--default-wait', '200ms', '--max-wait', '2s', '--deadline', '2m'];

/** A `bulk-reset worker` process with this environment; everything it prints is kept. */
function spawnWorker(env: NodeJS.ProcessEnv): { process: ChildProcess; output: () => string } {
  let output = '';
  const child = spawn(process.execPath, [join(PROJECT_ROOT, 'dist', 'client', 'cli.js'), 'worker'], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  return { process: child, output: () => output };
}

async function stopWorker(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  await once(child, 'exit');
}

function byStatus(report: ReportJson, status: string): string[] {
  return report.outcomes
    .filter((outcome) => outcome.status === status)
    .map((outcome) => outcome.user)
    .sort();
}

describe('--method password-profile with an operator', () => {
  let stage: Stage;
  let worker: ReturnType<typeof spawnWorker>;
  const cliOutput: string[] = [];

  beforeAll(async () => {
    stage = await openStage({ retryAfterSeconds: 0.2, keepPasswords: true });
    worker = spawnWorker(stage.env);
  });

  afterAll(async () => {
    await stopWorker(worker?.process);
    await stage?.close();
  });

  async function run(...args: string[]): Promise<CliResult> {
    const result = await runCli(stage.env, ...args);
    cliOutput.push(result.stdout, result.stderr);
    return result;
  }

  test('every PATCH carries forceChangePasswordNextSignIn, one write a user, and its password reaches only Graph and the secrets file', async () => {
    const succeed = ['ok.a', 'throttled.b', 'flaky.c', 'drop.d', 'dropafter.e', 'admin.f'].map(
      (name) => `${name}.profile@contoso.test`,
    );
    const refused = ['synced.g', 'badpw.h'].map((name) => `${name}.profile@contoso.test`);
    const users = [...succeed, ...refused];
    const csvPath = await stage.writeCsv('profile.csv', `userPrincipalName\n${users.join('\n')}\n`);
    const secretsPath = join(stage.dataDir, 'profile-secrets.jsonl');
    const started = await run(
      'start',
      csvPath,
      '--wait',
      '--method',
      'password-profile',
      '--force-change',
      '--revoke-sessions',
      '--secrets-file',
      secretsPath,
      ...TIMINGS,
    );
    expect(started.code).toBe(1); // the synced and the refused-password users failed
    const jobId = started.stdout.split('\n').find((line) => line.startsWith('reset-')) as string;
    const report = await readJson<ReportJson>(jobPaths(stage.dataDir, jobId).reportJson);
    expect(byStatus(report, 'succeeded')).toEqual([...succeed].sort());
    expect(byStatus(report, 'failed')).toEqual([...refused].sort());
    for (const outcome of report.outcomes.filter((row) => row.status === 'failed')) {
      expect(outcome).toMatchObject({ httpStatus: 400, retryable: false });
    }
    for (const outcome of report.outcomes.filter((row) => row.status === 'succeeded')) {
      expect(outcome.sessionsRevoked).toBe(true);
      expect(outcome.polls).toBe(0);
    }

    const allPasswords: string[] = [];
    for (const user of users) {
      const seen = stage.simulator.user(user);
      // Never a resetPassword: the method's one write is the PATCH.
      expect({ user, posts: seen?.posts }).toEqual({ user, posts: 0 });
      expect(seen?.profileWrites.length).toBeGreaterThan(0);
      for (const write of seen?.profileWrites ?? []) {
        expect({ user, ...write }).toEqual({
          user,
          forceChangePasswordNextSignIn: true,
          appOnly: false,
          status: write.status,
        });
      }
      allPasswords.push(...(stage.simulator.passwords(user)?.received ?? []));
    }
    // One write a user: a plain user was PATCHed once; one whose PATCH landed without an answer was
    // confirmed by its password-change time, not written again.
    expect(stage.simulator.user(succeed[0])?.profileWrites).toHaveLength(1);
    expect(stage.simulator.user('dropafter.e.profile@contoso.test')?.profileWrites).toHaveLength(1);
    expect(report.outcomes.find((row) => row.user.startsWith('dropafter.e'))).toMatchObject({
      status: 'succeeded',
      confirmedBy: 'passwordChange',
    });
    for (const user of succeed) expect(stage.simulator.user(user)?.revokes).toBe(1);

    // The secrets file holds the password Graph has now, for every user whose PATCH was answered (a
    // password whose PATCH landed without an answer is kept by nobody, as with resetPassword).
    expect((await stat(secretsPath)).mode & 0o777).toBe(0o600);
    const kept = await readCurrentSecrets(secretsPath);
    const answered = succeed.filter((user) => !user.startsWith('dropafter.'));
    expect(new Map(kept.map((secret) => [secret.user, secret.password]))).toEqual(
      new Map(answered.map((user) => [user, stage.simulator.passwords(user)?.accepted.at(-1)])),
    );

    // And nowhere else: worker and CLI output, the job's files, the raw and the decoded history.
    expect(allPasswords.length).toBeGreaterThan(users.length);
    const codec = new EncryptionCodec(await loadCodecKeys(stage.settings.codecKeys));
    const histories = [
      await stage.client.workflow.getHandle(jobId).fetchHistory(),
      ...(await Promise.all(
        users.map((user) =>
          userWorkflowIdOf(stage, jobId, user).then((id) =>
            stage.client.workflow.getHandle(id).fetchHistory(),
          ),
        ),
      )),
    ];
    const folder = jobPaths(stage.dataDir, jobId).dir;
    const places: [string, string][] = [
      ['worker output', worker.output()],
      ['CLI output', cliOutput.join('\n')],
      ['raw history', readableText(histories)],
      ['decoded history', await decodedText(histories, codec)],
    ];
    for (const name of await readdir(folder)) places.push([name, await readFile(join(folder, name), 'utf8')]);
    expect(readableText(histories)).toContain('setPasswordProfile');
    for (const [place, text] of places) {
      expect({ place, leaked: allPasswords.filter((password) => text.includes(password)) }).toEqual({
        place,
        leaked: [],
      });
    }
  });

  test('--password graph is refused with this method before anything starts', async () => {
    const csvPath = await stage.writeCsv('graph-mode.csv', 'userPrincipalName\nok.graphmode@contoso.test\n');
    const result = await run('start', csvPath, '--method', 'password-profile', '--password', 'graph');
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('Graph generates no password for a passwordProfile PATCH');
    expect(stage.simulator.user('ok.graphmode@contoso.test')).toBeUndefined();
  });
});

describe('--method password-profile with an app-only credential', () => {
  const appToken = unsignedToken({
    idtyp: 'app',
    roles: ['User.Read.All', 'User-PasswordProfile.ReadWrite.All'],
  });
  let stage: Stage;
  let tokenEndpoint: Server;
  let tokenRequests: { identityHeader?: string; resource?: string }[];
  let env: NodeJS.ProcessEnv;
  let worker: ReturnType<typeof spawnWorker>;

  beforeAll(async () => {
    stage = await openStage({ retryAfterSeconds: 0.2, token: appToken });
    // A managed identity's token endpoint, as App Service runs it next to the app (IDENTITY_ENDPOINT).
    tokenRequests = [];
    tokenEndpoint = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://token.invalid');
      tokenRequests.push({
        identityHeader: req.headers['x-identity-header'] as string | undefined,
        resource: url.searchParams.get('resource') ?? undefined,
      });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          access_token: appToken,
          expires_on: String(Math.floor(Date.now() / 1000) + 3600),
          resource: url.searchParams.get('resource'),
          token_type: 'Bearer',
        }),
      );
    });
    tokenEndpoint.listen(0, '127.0.0.1');
    await once(tokenEndpoint, 'listening');
    env = {
      ...stage.env,
      GRAPH_TOKEN: '',
      BULK_RESET_GRAPH_AUTH: 'managed-identity',
      IDENTITY_ENDPOINT: `http://127.0.0.1:${(tokenEndpoint.address() as AddressInfo).port}/msi/token`,
      IDENTITY_HEADER: 'identity-header-for-tests',
    };
    worker = spawnWorker(env);
  });

  afterAll(async () => {
    await stopWorker(worker?.process);
    tokenEndpoint?.close();
    await stage?.close();
  });

  test('start and schedule create refuse resetPassword with it, saying why and what to use', async () => {
    const csvPath = await stage.writeCsv('app-reset.csv', 'userPrincipalName\nok.appreset@contoso.test\n');
    for (const args of [
      ['start', csvPath],
      ['start', csvPath, '--method', 'reset-password'],
      ['schedule', 'create', csvPath, '--id', 'app-reset', '--every', '1h'],
    ]) {
      const result = await runCli(env, ...args);
      expect({ args, code: result.code }).toEqual({ args, code: 2 });
      expect(result.stderr).toContain('Graph does not allow resetPassword');
      expect(result.stderr).toContain('--method password-profile');
    }
    expect(stage.simulator.user('ok.appreset@contoso.test')).toBeUndefined();
  });

  test('the worker refuses resetPassword at the write for a job started without the CLI', async () => {
    const users = ['ok.direct1@contoso.test', 'ok.direct2@contoso.test'];
    const csvPath = await stage.writeCsv('app-direct.csv', `userPrincipalName\n${users.join('\n')}\n`);
    // No method: resetPassword, as a job started by other code (or before the CLI checked) asks.
    const jobId = await startJob(stage.client, stage.settings.taskQueue, await checkCsv(csvPath), {
      dataDir: stage.dataDir,
      policy: FAST_POLICY,
    });
    const final = await waitForJob(stage.client, jobId, () => undefined, 200);
    if (final.state !== 'completed') throw new Error(`job did not complete: ${JSON.stringify(final)}`);
    const report = await readJson<ReportJson>(final.summary.reportJsonPath);
    for (const outcome of report.outcomes) {
      expect(outcome).toMatchObject({
        status: 'failed',
        graphCode: 'AppOnlyResetRefused',
        retryable: false,
        // The report's reason is the short form; the recorded text, advice included, is its detail.
        reason: expect.stringMatching(
          /^Graph does not allow resetPassword with an application .*nothing was sent: start the job with --method password-profile/,
        ) as unknown,
        detail: expect.stringMatching(
          /Graph does not allow resetPassword with an application .*nothing was sent: start the job with --method password-profile.*; an app-only credential can only run --method password-profile$/,
        ) as unknown,
      });
    }
    for (const user of users) expect(stage.simulator.user(user)?.posts ?? 0).toBe(0);
    expect(stage.simulator.stats().posts).toBe(0);
  });

  test('a scheduled rotation runs with the managed identity alone, no one signed in', async () => {
    const users = ['ok.rot1@contoso.test', 'ok.rot2@contoso.test', 'ok.rot3@contoso.test'];
    const csvPath = await stage.writeCsv('rotation.csv', `userPrincipalName\n${users.join('\n')}\n`);
    const scheduleId = 'app-rotation';
    const created = await runCli(
      env,
      'schedule',
      'create',
      csvPath,
      '--id',
      scheduleId,
      '--every',
      '3s',
      '--method',
      'password-profile',
      '--force-change-with-mfa',
      ...TIMINGS,
    );
    expect(created.stderr).toBe('');
    expect(created.code).toBe(0);
    const handle = stage.client.schedule.getHandle(scheduleId);
    let runs: string[] = [];
    for (const until = Date.now() + 90_000; Date.now() < until; await sleep(500)) {
      const { info } = await handle.describe();
      runs = info.recentActions.map(({ action }) => action.workflow.workflowId);
      const states = await Promise.all(runs.map((jobId) => jobState(stage.client, jobId)));
      if (states.some(({ state }) => state === 'completed')) break;
    }
    await handle.delete();
    expect(runs.length).toBeGreaterThan(0);
    let completed = 0;
    for (const jobId of runs) {
      const final = await waitForJob(stage.client, jobId, () => undefined, 200);
      if (final.state !== 'completed') continue;
      completed += 1;
      const report = await readJson<ReportJson>(final.summary.reportJsonPath);
      expect(byStatus(report, 'succeeded')).toEqual([...users].sort());
    }
    expect(completed).toBeGreaterThan(0);
    for (const user of users) {
      const seen = stage.simulator.user(user);
      expect(seen?.posts).toBe(0);
      expect(seen?.profileWrites.length).toBe(completed);
      for (const write of seen?.profileWrites ?? []) {
        expect(write).toEqual({
          forceChangePasswordNextSignIn: true,
          forceChangePasswordNextSignInWithMfa: true,
          appOnly: true,
          status: 204,
        });
      }
    }
    // The token came from the managed identity's endpoint, for the Graph host in use.
    expect(tokenRequests.length).toBeGreaterThan(0);
    expect(tokenRequests[0]).toEqual({
      identityHeader: 'identity-header-for-tests',
      resource: new URL(stage.simulator.baseUrl).origin,
    });
  });
});

describe('bulk-reset plan checks the token for the method', () => {
  test('says which permission is missing, and which users the method cannot reset', async () => {
    // An app granted only the reads: no User-PasswordProfile.ReadWrite.All.
    const stage = await openStage({ token: unsignedToken({ idtyp: 'app', roles: ['User.Read.All'] }) });
    try {
      const csvPath = await stage.writeCsv(
        'plan.csv',
        'userPrincipalName\nok.p1@contoso.test\nsynced.p2@contoso.test\n',
      );
      const outPath = join(stage.dataDir, 'plan.json');
      const profile = await runCli(
        stage.env,
        'plan',
        csvPath,
        '--method',
        'password-profile',
        '--out',
        outPath,
      );
      expect(profile.code).toBe(1);
      expect(profile.stderr).toContain(
        'MISSING: --method password-profile needs User-PasswordProfile.ReadWrite.All (application)',
      );
      const plan = await readJson<PlanFile>(outPath);
      expect(plan.permissions).toEqual({
        identity: 'app',
        missing: ['User-PasswordProfile.ReadWrite.All (application)'],
      });
      expect(plan.users.map((user) => [user.user, user.decision, user.reason])).toEqual([
        ['ok.p1@contoso.test', 'reset', undefined],
        ['synced.p2@contoso.test', 'skip', 'unsupported'],
      ]);

      const reset = await runCli(stage.env, 'plan', csvPath, '--out', outPath);
      expect(reset.code).toBe(1);
      expect(reset.stderr).toContain('Graph does not allow resetPassword app-only');
      // A plan writes nothing to Graph.
      expect(stage.simulator.stats().posts).toBe(0);
      for (const user of stage.simulator.users()) expect(user.profileWrites).toEqual([]);
    } finally {
      await stage.close();
    }
  });
});
