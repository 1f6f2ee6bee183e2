/**
 * The operator's sign-in stops working in the middle of a job (token expired or revoked): the job holds
 * instead of failing users, says it needs a sign-in, and carries on by itself once the token works again.
 * Real dev server, real worker, real HTTP; the simulator refuses every call with 401 while revoked.
 */
import type { AccessToken, TokenCredential } from '@azure/identity';
import { StaticTokenCredential } from '../graph/credentials';
import { startJob } from '../client/jobs';
import { createWorker } from '../worker';
import { progressQuery } from '../workflows';
import { JOB_PHASE_SEARCH_ATTRIBUTE, type JobProgress } from '../workflows/types';
import { FAST_POLICY, useStage, waitUntil, workflowBundle } from './support/harness';
import { allSucceeded } from './support/groundTruth';
import { finishedJob, startStageJob, writeCheckedCsv } from './support/jobs';
import { upnCsv } from './support/users';

const USERS = 40;
const WINDOW = 10;
/** Shorter than the time the token stays revoked: a user must not fail because of the wait. */
const DEADLINE_MS = 15_000;
const REVOKED_FOR_MS = 20_000;

// Each reset takes a few seconds at Graph, so users are caught both sending and polling.
const stage = useStage({ retryAfterSeconds: 0.5, operationSeconds: 2 });

async function control(action: 'revoke-token' | 'restore-token'): Promise<void> {
  const response = await fetch(`${new URL(stage.simulator.baseUrl).origin}/_sim/${action}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${stage.env.GRAPH_TOKEN}` },
  });
  expect(response.status).toBe(204);
}

test('a token that stops working mid-job holds the job (needs-sign-in), fails nobody, and the job finishes once it works again', async () => {
  const users = Array.from({ length: USERS }, (_, index) => `signin${index}@contoso.com`);
  const csv = await writeCheckedCsv(stage, 'users.csv', upnCsv(users));
  const jobId = await startStageJob(stage, csv, {
    windowSize: WINDOW,
    policy: { ...FAST_POLICY, deadlineMs: DEADLINE_MS },
  });
  const handle = stage.client.workflow.getHandle(jobId);
  const progress = () => handle.query<JobProgress>(progressQuery);

  await waitUntil('some users are done', async () => (await progress()).done >= 5);
  await control('revoke-token');
  const unauthorizedBefore = stage.simulator.stats().unauthorized;

  await waitUntil(
    'the job says it needs a sign-in',
    async () => (await progress()).phase === 'needs-sign-in',
  );
  const held = await progress();
  expect(held.needSignIn).toBeGreaterThan(0);
  expect(held.done).toBeLessThan(USERS);
  const acceptedWhenHeld = stage.simulator.stats().resetsAccepted;
  await waitUntil('the search attribute shows it', async () => {
    const { typedSearchAttributes } = await handle.describe();
    return typedSearchAttributes.get(JOB_PHASE_SEARCH_ATTRIBUTE) === 'needs-sign-in';
  });

  // Held for longer than a user's deadline: nothing accepted, nobody started, nobody failed.
  await new Promise((resolve) => setTimeout(resolve, REVOKED_FOR_MS));
  const stillHeld = await progress();
  expect(stillHeld.phase).toBe('needs-sign-in');
  expect(stillHeld.dispatched).toBe(held.dispatched);
  expect(stillHeld.counts.failed).toBe(0);
  expect(stillHeld.counts.unconfirmed).toBe(0);
  expect(stage.simulator.stats().resetsAccepted).toBe(acceptedWhenHeld);
  // The held users kept trying, slowly: refused requests, not a flood.
  const refused = stage.simulator.stats().unauthorized - unauthorizedBefore;
  expect(refused).toBeGreaterThan(0);
  expect(refused).toBeLessThan(WINDOW * (REVOKED_FOR_MS / FAST_POLICY.maxWaitMs + 5));

  // What `bulk-reset login` does for a real tenant: the token works again. No other command.
  await control('restore-token');
  const { summary, report } = await finishedJob(stage, jobId, 500);
  expect(summary.counts).toEqual(allSucceeded(USERS));

  expect(report.outcomes.map((outcome) => outcome.status)).toEqual(users.map(() => 'succeeded'));
  // Requests refused with 401 were never applied and are not counted as attempts.
  expect(report.outcomes.every((outcome) => outcome.startAttempts === 1)).toBe(true);
  // Ground truth: Graph accepted exactly one reset per user.
  for (const user of users) expect(stage.simulator.user(user)?.resetsAccepted).toBe(1);
  expect(stage.simulator.stats().resetsAccepted).toBe(USERS);
});

/**
 * The token source itself fails, as the operator's credential does when the refresh token has expired:
 * Azure's sign-in service cannot run here, so this stands in for it, over the simulator's real token.
 */
class ExpiringCredential implements TokenCredential {
  signedIn = true;
  refusals = 0;
  private readonly real: StaticTokenCredential;
  constructor(token: string) {
    this.real = new StaticTokenCredential(token);
  }
  async getToken(): Promise<AccessToken> {
    if (!this.signedIn) {
      this.refusals += 1;
      throw Object.assign(new Error('AADSTS700082: The refresh token has expired; interaction required'), {
        name: 'AuthenticationRequiredError',
      });
    }
    return this.real.getToken();
  }
}

test('a token source that says sign-in required holds the job the same way, and it resumes once a sign-in works', async () => {
  const credential = new ExpiringCredential(stage.env.GRAPH_TOKEN as string);
  // A worker of its own on a queue of its own, whose credential can expire.
  const settings = { ...stage.settings, taskQueue: `${stage.settings.taskQueue}-cred` };
  const worker = await createWorker(settings, { workflowBundle: await workflowBundle() }, credential);
  const running = worker.run();
  try {
    const users = Array.from({ length: 20 }, (_, index) => `expiring${index}@contoso.com`);
    const csv = await writeCheckedCsv(stage, 'expiring.csv', upnCsv(users, 'upn'));
    const acceptedBefore = stage.simulator.stats().resetsAccepted;
    const jobId = await startJob(stage.client, settings.taskQueue, csv, {
      windowSize: 5,
      policy: { ...FAST_POLICY, deadlineMs: DEADLINE_MS },
    });
    const handle = stage.client.workflow.getHandle(jobId);
    const progress = () => handle.query<JobProgress>(progressQuery);

    await waitUntil('some users are done', async () => (await progress()).done >= 3);
    credential.signedIn = false;
    await waitUntil(
      'the job says it needs a sign-in',
      async () => (await progress()).phase === 'needs-sign-in',
    );
    const held = await progress();
    const acceptedWhenHeld = stage.simulator.stats().resetsAccepted;
    await new Promise((resolve) => setTimeout(resolve, DEADLINE_MS + 3_000));
    const stillHeld = await progress();
    expect(stillHeld.phase).toBe('needs-sign-in');
    expect(stillHeld.dispatched).toBe(held.dispatched);
    expect(stillHeld.counts.failed + stillHeld.counts.unconfirmed).toBe(0);
    expect(stage.simulator.stats().resetsAccepted).toBe(acceptedWhenHeld);
    expect(credential.refusals).toBeGreaterThan(0);

    credential.signedIn = true;
    const { summary } = await finishedJob(stage, jobId, 500);
    expect(summary.counts.succeeded).toBe(users.length);
    for (const user of users) expect(stage.simulator.user(user)?.resetsAccepted).toBe(1);
    expect(stage.simulator.stats().resetsAccepted - acceptedBefore).toBe(users.length);
  } finally {
    worker.shutdown();
    await running;
  }
});
