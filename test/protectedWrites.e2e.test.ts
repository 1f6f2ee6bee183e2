/**
 * The protected-accounts list holds at the write, on Graph's identity of the user: whatever name the CSV
 * uses, with no plan, and for an entry added after the job was prepared. Ground truth is what the
 * simulator received: no resetPassword and no revokeSignInSessions for a protected account.
 */
import { appendFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkCsv, controlJob, jobState, startJob, waitForJob } from '../client/jobs';
import { FAST_POLICY, openStage, readJson, type ReportJson, type Stage, waitUntil } from './support/harness';

let stage: Stage;
let listDir: string;
let listPath: string;

beforeAll(async () => {
  listDir = await mkdtemp(join(tmpdir(), 'protected-writes-'));
  listPath = join(listDir, 'protected.txt');
  await writeFile(listPath, '# break-glass accounts\n');
  stage = await openStage({ retryAfterSeconds: 0.2 }, { env: { BULK_RESET_PROTECTED_USERS: listPath } });
  await stage.startWorker();
});

afterAll(async () => {
  await stage?.close();
  await rm(listDir, { recursive: true, force: true });
});

/** Graph's object id for a user, as the simulator gives it (asked the way any Graph client would). */
async function objectIdOf(upn: string): Promise<string> {
  const response = await fetch(`${stage.simulator.baseUrl}/users/${encodeURIComponent(upn)}`, {
    headers: { authorization: `Bearer ${stage.env.GRAPH_TOKEN}` },
  });
  const body = (await response.json()) as { id: string };
  return body.id;
}

/** Every write the simulator received for the user, however it was addressed. */
function writesTo(upn: string): number {
  const seen = stage.simulator.user(upn);
  return (seen?.posts ?? 0) + (seen?.revokes ?? 0);
}

async function runToReport(jobId: string): Promise<ReportJson> {
  const final = await waitForJob(stage.client, jobId, () => undefined, 200);
  if (final.state !== 'completed') throw new Error(`job ${jobId} did not complete: ${JSON.stringify(final)}`);
  return readJson<ReportJson>(final.summary.reportJsonPath);
}

test('an account listed by object id is not reset when the CSV names it by userPrincipalName', async () => {
  const guarded = 'breakglass.byid@protected.test';
  await appendFile(listPath, `${await objectIdOf(guarded)}   # listed by object id only\n`);
  const csv = await checkCsv(
    await stage.writeCsv('by-upn.csv', `userPrincipalName\nok.one@protected.test\n${guarded}\n`),
  );
  const jobId = await startJob(stage.client, stage.settings.taskQueue, csv, {
    policy: { ...FAST_POLICY, revokeSessions: true },
  });
  const report = await runToReport(jobId);

  expect(report.outcomes.map(({ user, status }) => [user, status])).toEqual([
    ['ok.one@protected.test', 'succeeded'],
    [guarded, 'skipped'],
  ]);
  expect(report.outcomes[1].reason).toMatch(/^protected: Graph's identity of this user/);
  expect(report.outcomes[1].startAttempts).toBe(0);
  expect(writesTo(guarded)).toBe(0);
  expect(stage.simulator.user(guarded)?.resetsApplied ?? 0).toBe(0);
  expect(writesTo('ok.one@protected.test')).toBe(2); // the reset and the revoke: the list blocks no one else
});

test('an account listed by userPrincipalName is not reset when the CSV names it by object id', async () => {
  const guarded = 'breakglass.byupn@protected.test';
  const other = 'ok.two@protected.test';
  const [guardedId, otherId] = [await objectIdOf(guarded), await objectIdOf(other)];
  await appendFile(listPath, `${guarded.toUpperCase()}\n`);
  const csv = await checkCsv(await stage.writeCsv('by-id.csv', `id\n${otherId}\n${guardedId}\n`));
  const jobId = await startJob(stage.client, stage.settings.taskQueue, csv, { policy: FAST_POLICY });
  const report = await runToReport(jobId);

  expect(report.outcomes.map(({ user, status }) => [user, status])).toEqual([
    [otherId, 'succeeded'],
    [guardedId, 'skipped'],
  ]);
  expect(report.outcomes[1].reason).toContain(guarded);
  expect(writesTo(guarded)).toBe(0);
  expect(writesTo(other)).toBe(1);
});

test('an account added to the list after the job was prepared is not reset', async () => {
  const guarded = 'late.breakglass@protected.test';
  const csv = await checkCsv(
    await stage.writeCsv('late.csv', `userPrincipalName\nok.three@protected.test\n${guarded}\n`),
  );
  const jobId = await startJob(stage.client, stage.settings.taskQueue, csv, {
    policy: FAST_POLICY,
    startedBy: 'alice@ops',
    approvalTimeoutMs: 120_000,
  });
  await waitUntil('the job waits for approval', async () => {
    const current = await jobState(stage.client, jobId);
    return current.state === 'running' && current.progress.phase === 'awaiting-approval';
  });
  await appendFile(listPath, `${guarded}\n`);
  await controlJob(stage.client, jobId, 'approve', { by: 'bob@ops' });
  const report = await runToReport(jobId);

  expect(report.outcomes.map(({ user, status }) => [user, status])).toEqual([
    ['ok.three@protected.test', 'succeeded'],
    [guarded, 'skipped'],
  ]);
  expect(writesTo(guarded)).toBe(0);
});
