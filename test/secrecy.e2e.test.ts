/**
 * What Temporal stores is unreadable without the key: after a job, the raw histories of the job and its
 * users hold no user principal name, no password, no token; with the codec they open.
 */
import { checkCsv, startJob, waitForJob } from '../client/jobs';
import { EncryptionCodec, loadCodecKeys } from '../client/codec';
import { type Stage, decodedText, openStage, readableText, userWorkflowIdOf } from './support/harness';

let stage: Stage;

beforeAll(async () => {
  stage = await openStage({ retryAfterSeconds: 0.2 });
  await stage.startWorker();
});

afterAll(async () => {
  await stage?.close();
});

test('histories hold only ciphertext: no user, password, token or Graph message in plain text', async () => {
  const users = [
    'ok.alice.secret@contoso.test',
    'denied.bob.secret@contoso.test',
    'slow.carol.secret@contoso.test',
  ];
  const csv = await checkCsv(await stage.writeCsv('secret.csv', `userPrincipalName\n${users.join('\n')}\n`));
  const jobId = await startJob(stage.client, stage.settings.taskQueue, csv, {
    policy: { minWaitMs: 100, defaultWaitMs: 200, maxWaitMs: 1_000 },
  });
  const final = await waitForJob(stage.client, jobId, () => undefined, 200);
  if (final.state !== 'completed') throw new Error(`job did not complete: ${JSON.stringify(final)}`);
  expect(final.summary.counts).toMatchObject({ succeeded: 2, failed: 1 });

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
