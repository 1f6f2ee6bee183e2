/**
 * Who may steer a job, and what an approval approves, on the real dev server, worker and simulator:
 * - only payloads sealed with the deployment's key reach the workflows: a job started, approved or
 *   signalled in plain JSON (or with another key) is refused, and the job is not harmed;
 * - operators are compared as people read their names, not byte for byte;
 * - the rows that run are the rows that were prepared and approved;
 * - user workflow ids do not confirm a guessed name.
 */
import { createHash, randomBytes } from 'node:crypto';
import { appendFile } from 'node:fs/promises';
import { Client, WorkflowNotFoundError } from '@temporalio/client';
import { dataConverterFor, loadCodecKeys } from '../temporal/codec';
import { controlJob, waitForJob } from '../client/jobs';
import { jobPaths } from '../jobs/jobFiles';
import { approveUpdate } from '../workflows';
import { DEFAULT_RESET_POLICY, type JobProgress } from '../workflows/types';
import {
  FAST_POLICY,
  type ReportJson,
  useStage,
  userWorkflowIds,
  waitUntil,
  progressOf as progressOfJob,
} from './support/harness';
import { finishedJob, startAwaitingApproval, startStageJob, writeCheckedCsv } from './support/jobs';
import { numberedUsers, upnCsv } from './support/users';

const stage = useStage({ retryAfterSeconds: 0.2 });
/** A client of the same namespace without the payload codec: what anyone with network access can send. */
let plain: Client;

beforeAll(() => {
  plain = new Client({ connection: stage.client.connection, namespace: stage.settings.temporal.namespace });
});

function progressOf(jobId: string): Promise<JobProgress> {
  return progressOfJob(stage, jobId);
}

/** A job of `users` users under `domain`, started by alice@ops, waiting for approval. */
async function awaitingApproval(domain: string, users = 2): Promise<string> {
  return startAwaitingApproval(
    stage,
    await writeCheckedCsv(stage, `${domain}.csv`, upnCsv(numberedUsers('ok', users, domain))),
  );
}

async function reportOf(jobId: string): Promise<ReportJson> {
  return (await finishedJob(stage, jobId)).report;
}

function writesToDomain(domain: string): number {
  return stage.simulator
    .users()
    .filter((user) => user.user.endsWith(`@${domain}`))
    .reduce((sum, user) => sum + user.posts + user.revokes, 0);
}

test('an approval sent without the payload codec is refused, and a real one afterwards still runs the job', async () => {
  const jobId = await awaitingApproval('unsealed-approve.test');
  await expect(
    plain.workflow.getHandle(jobId).executeUpdate(approveUpdate, { args: [{ by: 'anyone' }] }),
  ).rejects.toThrow();
  expect((await progressOf(jobId)).phase).toBe('awaiting-approval');
  expect(writesToDomain('unsealed-approve.test')).toBe(0);

  await controlJob(stage.client, jobId, 'approve', { by: 'bob@ops' });
  const report = await reportOf(jobId);
  expect(report.outcomes.map((outcome) => outcome.status)).toEqual(['succeeded', 'succeeded']);
  expect(writesToDomain('unsealed-approve.test')).toBe(2);
});

test('an approval sealed with a key the workers do not hold is refused without stalling the job', async () => {
  const jobId = await awaitingApproval('forged-key.test');
  const [realKey] = await loadCodecKeys(stage.settings.codecKeys);
  for (const forged of [
    { id: 'k-forged', key: randomBytes(32) },
    { id: realKey.id, key: randomBytes(32) },
  ]) {
    const forger = new Client({
      connection: stage.client.connection,
      namespace: stage.settings.temporal.namespace,
      dataConverter: dataConverterFor([forged]),
    });
    await expect(
      forger.workflow.getHandle(jobId).executeUpdate(approveUpdate, { args: [{ by: 'mallory@ops' }] }),
    ).rejects.toThrow();
  }
  expect((await progressOf(jobId)).phase).toBe('awaiting-approval');
  await controlJob(stage.client, jobId, 'approve', { by: 'bob@ops' });
  expect((await reportOf(jobId)).outcomes.every((outcome) => outcome.status === 'succeeded')).toBe(true);
});

test('the starter cannot approve their own job under a look-alike name', async () => {
  const jobId = await awaitingApproval('lookalike.test');
  for (const lookalike of ['alice\u200b@ops', 'ＡＬＩＣＥ@ops', ' Alice@ops\u2060']) {
    await expect(controlJob(stage.client, jobId, 'approve', { by: lookalike })).rejects.toThrow(
      /started this job and cannot also approve it/,
    );
  }
  expect((await progressOf(jobId)).phase).toBe('awaiting-approval');
  expect(writesToDomain('lookalike.test')).toBe(0);
  await controlJob(stage.client, jobId, 'cancel', { by: 'alice@ops' });
  await reportOf(jobId);
});

test('a row added to the prepared rows before approval is never reset: the job stops', async () => {
  const jobId = await awaitingApproval('pinned.test');
  const shown = (await progressOf(jobId)).rowsSha256;
  expect(shown).toMatch(/^[0-9a-f]{64}$/);
  const intruder = 'breakglass@pinned.test';
  await appendFile(
    jobPaths(stage.dataDir, jobId).rows,
    `${JSON.stringify({ row: 99, user: intruder, idKind: 'userPrincipalName', key: 'f'.repeat(32) })}\n`,
  );
  // The approver was shown the rows before the change: the job refuses to run what was not approved.
  await controlJob(stage.client, jobId, 'approve', { by: 'bob@ops', rowsSha256: shown });
  const final = await waitForJob(stage.client, jobId, () => undefined, 200);
  expect(final.state === 'failed' && final.message).toMatch(/prepared rows .* changed/);
  expect(writesToDomain('pinned.test')).toBe(0);
});

test('an approval is refused when the rows are not the ones the approver was shown', async () => {
  const jobId = await awaitingApproval('shown.test');
  await expect(
    controlJob(stage.client, jobId, 'approve', { by: 'bob@ops', rowsSha256: 'a'.repeat(64) }),
  ).rejects.toThrow(/not the ones you were shown/);
  expect((await progressOf(jobId)).phase).toBe('awaiting-approval');
  await controlJob(stage.client, jobId, 'cancel', { by: 'bob@ops' });
  await reportOf(jobId);
});

test('a job started without the payload codec fails before it reads anything, and resets nobody', async () => {
  const csv = await writeCheckedCsv(stage, 'unsealed-start.csv', upnCsv(['ok.one@unsealed-start.test']));
  const jobId = `unsealed-${randomBytes(3).toString('hex')}`;
  await plain.workflow.start('bulkReset', {
    workflowId: jobId,
    taskQueue: stage.settings.taskQueue,
    args: [
      { jobId, csv: { path: csv.path, sha256: csv.sha256 }, windowSize: 10, policy: DEFAULT_RESET_POLICY },
    ],
  });
  const final = await waitForJob(stage.client, jobId, () => undefined, 200);
  expect(final.state === 'failed' && final.message).toMatch(/input is refused/);
  expect(writesToDomain('unsealed-start.test')).toBe(0);
});

test('an outcome signalled without the payload codec is ignored: the report holds what really happened', async () => {
  const csv = await writeCheckedCsv(
    stage,
    'forged-outcome.csv',
    upnCsv(['slow.one@forged-outcome.test', 'slow.two@forged-outcome.test']),
  );
  const jobId = await startStageJob(stage, csv, { policy: FAST_POLICY });
  await waitUntil('both users are in flight', async () => (await progressOf(jobId)).inFlight === 2);
  await plain.workflow.getHandle(jobId).signal('userFinished', {
    row: 2,
    user: 'slow.one@forged-outcome.test',
    status: 'succeeded',
    reason: 'forged',
    polls: 0,
    startAttempts: 0,
  });
  const report = await reportOf(jobId);
  expect(report.outcomes.map((outcome) => outcome.status)).toEqual(['succeeded', 'succeeded']);
  expect(report.outcomes.every((outcome) => outcome.polls >= 1 && outcome.reason !== 'forged')).toBe(true);
});

test("user workflow ids are keyed: a job id and a guessed name do not find the user's workflow", async () => {
  const user = 'ok.guessed@keyed.test';
  const csv = await writeCheckedCsv(stage, 'keyed.csv', upnCsv([user]));
  const jobId = await startStageJob(stage, csv, { policy: FAST_POLICY });
  await reportOf(jobId);
  const guessedKey = createHash('sha256').update(`${jobId}\n${user}`).digest('hex').slice(0, 24);
  await expect(stage.client.workflow.getHandle(`${jobId}/user-${guessedKey}`).describe()).rejects.toThrow(
    WorkflowNotFoundError,
  );
  const actual = (await userWorkflowIds(stage, jobId)).get(user) as string;
  expect((await stage.client.workflow.getHandle(actual).describe()).status.name).toBe('COMPLETED');
  expect(actual).not.toContain(guessedKey);
});
