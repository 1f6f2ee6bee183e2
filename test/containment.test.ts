/**
 * Containment's parts, each on its own: the job's batching rules, the backoff with jitter that answers
 * Identity Protection's 429s (which name no wait), the Graph client's confirmCompromised against the
 * simulator, and the activity that resolves a batch's users and sends it.
 */
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { StaticTokenCredential } from '../graph/credentials';
import { GraphClient } from '../graph/client';
import { GraphError } from '../graph/errors';
import { createActivities } from '../activities/index';
import { type GraphSimulator, startGraphSimulator } from '../simulator/graphSimulator';
import {
  CONFIRM_BATCH_SIZE,
  CONFIRM_PARTIAL_AFTER_MS,
  batchDue,
  confirmedOutcomes,
  emptyContainment,
  giveUpPending,
  nextBatch,
  settleBatch,
} from '../workflows/containment';
import { CONFIRM_BACKOFF, jitteredBackoffMs } from '../workflows/waits';
import {
  CONTAINMENT_REFUSED,
  type ConfirmCompromisedResult,
  type ContainmentState,
  type ResetOutcome,
} from '../workflows/types';

const TOKEN = 'containment-test-token';

function succeeded(row: number): ResetOutcome {
  return { row, user: `user${row}@contoso.test`, status: 'succeeded', polls: 1, startAttempts: 1 };
}

function pendingOf(count: number, sinceMs = 0): ContainmentState {
  const state = emptyContainment();
  state.pending = Array.from({ length: count }, (_, index) => succeeded(index + 2));
  state.pendingSinceMs = count > 0 ? sinceMs : undefined;
  return state;
}

describe('the job batches containment', () => {
  it('sends a full batch at once and never more than CONFIRM_BATCH_SIZE users in one', () => {
    const state = pendingOf(CONFIRM_BATCH_SIZE * 2 + 5, 1_000);
    expect(batchDue(state, 1_000, false)).toBe(true);
    expect(nextBatch(state)).toHaveLength(CONFIRM_BATCH_SIZE);
    expect(nextBatch(state).map((outcome) => outcome.row)).toEqual(
      state.pending.slice(0, CONFIRM_BATCH_SIZE).map((outcome) => outcome.row),
    );
  });

  it('holds a partial batch until its oldest user has waited long enough, or until no more users can come', () => {
    const state = pendingOf(3, 10_000);
    expect(batchDue(state, 10_000 + CONFIRM_PARTIAL_AFTER_MS - 1, false)).toBe(false);
    expect(batchDue(state, 10_000 + CONFIRM_PARTIAL_AFTER_MS, false)).toBe(true);
    expect(batchDue(state, 10_001, true)).toBe(true);
    expect(batchDue(emptyContainment(), 10_000_000, true)).toBe(false);
  });

  it('sends nothing more once Graph refused containment for the whole job', () => {
    const state = pendingOf(CONFIRM_BATCH_SIZE);
    state.refused = 'not licensed';
    expect(batchDue(state, 0, true)).toBe(false);
  });

  it("records each row of a batch as Graph's answer left it, and counts them", () => {
    const state = pendingOf(4, 0);
    const batch = nextBatch(state);
    const outcomes = confirmedOutcomes(batch, {
      confirmed: [2, 4],
      notConfirmed: [{ row: 3, reason: 'protected: on the list' }],
    });
    expect(
      outcomes.map(({ row, confirmedCompromised, confirmedCompromisedReason }) => ({
        row,
        confirmedCompromised,
        confirmedCompromisedReason,
      })),
    ).toEqual([
      { row: 2, confirmedCompromised: true, confirmedCompromisedReason: undefined },
      { row: 3, confirmedCompromised: false, confirmedCompromisedReason: 'protected: on the list' },
      { row: 4, confirmedCompromised: true, confirmedCompromisedReason: undefined },
      {
        row: 5,
        confirmedCompromised: false,
        confirmedCompromisedReason: expect.stringContaining('no answer') as unknown,
      },
    ]);
    settleBatch(state, outcomes, 7_000);
    expect(state).toMatchObject({ pending: [], confirmed: 2, notConfirmed: 2, pendingSinceMs: undefined });
  });

  it('gives every waiting user the one reason when the job gives up, and keeps the rest of the outcome', () => {
    const state = pendingOf(70, 0);
    const outcomes = giveUpPending(state, 'Identity Protection refused: not licensed', 1);
    expect(outcomes).toHaveLength(70);
    expect(
      outcomes.every((outcome) => outcome.status === 'succeeded' && outcome.confirmedCompromised === false),
    ).toBe(true);
    expect(new Set(outcomes.map((outcome) => outcome.confirmedCompromisedReason))).toEqual(
      new Set(['Identity Protection refused: not licensed']),
    );
    expect(state).toMatchObject({ pending: [], confirmed: 0, notConfirmed: 70 });
  });
});

describe('the wait after a 429 without Retry-After', () => {
  it('grows exponentially, with a random share of up to half, within its bounds', () => {
    for (let tries = 1; tries <= 8; tries++) {
      const full = Math.min(CONFIRM_BACKOFF.firstMs * 2 ** (tries - 1), CONFIRM_BACKOFF.maxMs);
      expect(jitteredBackoffMs(tries, CONFIRM_BACKOFF, 0)).toBe(Math.max(full / 2, CONFIRM_BACKOFF.minMs));
      expect(jitteredBackoffMs(tries, CONFIRM_BACKOFF, 0.999_999)).toBe(full);
      const drawn = jitteredBackoffMs(tries, CONFIRM_BACKOFF, Math.random());
      expect(drawn).toBeGreaterThanOrEqual(Math.max(full / 2, CONFIRM_BACKOFF.minMs));
      expect(drawn).toBeLessThanOrEqual(full);
    }
    expect(jitteredBackoffMs(30, CONFIRM_BACKOFF, 1)).toBe(CONFIRM_BACKOFF.maxMs);
  });

  it('is never shorter than Identity Protection allows between two requests', () => {
    expect(jitteredBackoffMs(1, { firstMs: 100, minMs: 1_000, maxMs: 60_000 }, 0)).toBe(1_000);
  });

  it('spreads two callers throttled together', () => {
    expect(jitteredBackoffMs(4, CONFIRM_BACKOFF, 0.1)).not.toBe(jitteredBackoffMs(4, CONFIRM_BACKOFF, 0.9));
  });
});

describe('GraphClient.confirmCompromised', () => {
  let sim: GraphSimulator;
  let graph: GraphClient;
  beforeEach(async () => {
    sim = await startGraphSimulator({ token: TOKEN });
    graph = new GraphClient({ baseUrl: sim.baseUrl, credential: new StaticTokenCredential(TOKEN) });
  });
  afterEach(() => sim.close());

  const ids = ['29f270bb-4d23-4f68-8a57-dc73dc0d4caf', '20f91ec9-d140-4d90-9cd9-f618587a1471'];

  it('posts the object ids, which Graph answers 204', async () => {
    const answer = await graph.confirmCompromised(ids);
    expect(answer.requestId).toBeDefined();
    const { riskyUsers } = sim.stats();
    expect(riskyUsers.requests.map(({ status, userIds }) => ({ status, userIds }))).toEqual([
      { status: 204, userIds: ids },
    ]);
    expect(riskyUsers.confirmed).toEqual({ [ids[0]]: 1, [ids[1]]: 1 });
  });

  it('fails as passing trouble, with no Retry-After, when a second request comes within the second', async () => {
    await graph.confirmCompromised(ids);
    const error = await graph.confirmCompromised(ids).then(
      () => undefined,
      (failure: unknown) => failure,
    );
    expect(error).toBeInstanceOf(GraphError);
    expect(error).toMatchObject({
      status: 429,
      kind: 'transient',
      retryAfterMs: undefined,
      tenantWide: false,
    });
    expect(sim.stats().riskyUsers.requests.map((request) => request.status)).toEqual([204, 429]);
    expect(sim.stats().riskyUsers.confirmed).toEqual({ [ids[0]]: 1, [ids[1]]: 1 });
  });

  it('is refused for the whole tenant when the tenant has no Entra ID P2 licence', async () => {
    await sim.close();
    sim = await startGraphSimulator({ token: TOKEN, identityProtection: { licensed: false } });
    graph = new GraphClient({ baseUrl: sim.baseUrl, credential: new StaticTokenCredential(TOKEN) });
    const error = await graph.confirmCompromised(ids).then(
      () => undefined,
      (failure: unknown) => failure,
    );
    expect(error).toMatchObject({ status: 403, kind: 'permanent', tenantWide: true, code: 'Forbidden' });
    expect((error as GraphError).message).toContain('licensed');
    expect(sim.stats().riskyUsers.confirmed).toEqual({});
  });
});

describe('the confirmCompromised activity', () => {
  let sim: GraphSimulator;
  let activities: ReturnType<typeof createActivities>;
  const open = async (options: Parameters<typeof startGraphSimulator>[0]) => {
    sim = await startGraphSimulator(options);
    const graph = new GraphClient({ baseUrl: sim.baseUrl, credential: new StaticTokenCredential(TOKEN) });
    activities = createActivities({
      graph,
      dataDir: '/nonexistent/bulk-reset-test',
      userKeySecret: Buffer.alloc(32),
    });
  };
  afterEach(() => sim.close());

  /** The failure an activity attempt ended with. */
  async function attemptFailure(
    attempt: number,
    users: { row: number; user: string }[],
  ): Promise<ApplicationFailure> {
    try {
      await new MockActivityEnvironment({ attempt }).run(activities.confirmCompromised, { users });
    } catch (error) {
      expect(error).toBeInstanceOf(ApplicationFailure);
      return error as ApplicationFailure;
    }
    throw new Error('expected the activity to fail');
  }

  it("sends one request with Graph's object ids of the batch's users, leaving out one Graph cannot find", async () => {
    await open({ token: TOKEN });
    const users = [
      { row: 2, user: 'amy@contoso.test' },
      { row: 3, user: 'missing.bob@contoso.test' },
      { row: 4, user: 'cy@contoso.test' },
    ];
    const result: ConfirmCompromisedResult = await new MockActivityEnvironment({ attempt: 1 }).run(
      activities.confirmCompromised,
      { users },
    );
    expect(result.confirmed.sort()).toEqual([2, 4]);
    expect(result.notConfirmed).toEqual([
      { row: 3, reason: expect.stringMatching(/404.*not confirmed/) as unknown },
    ]);
    const { riskyUsers } = sim.stats();
    expect(riskyUsers.requests).toHaveLength(1);
    expect(riskyUsers.requests[0].userIds.sort()).toEqual(
      [sim.user('amy@contoso.test')?.id, sim.user('cy@contoso.test')?.id].sort(),
    );
  });

  it('answers a 429 without Retry-After with an exponentially growing, jittered wait before Temporal tries again', async () => {
    // Nothing is ever let through at this rate after the first request: every later one is a 429.
    await open({ token: TOKEN, identityProtection: { requestsPerSecond: 0.001 } });
    const users = [{ row: 2, user: 'dee@contoso.test' }];
    await new MockActivityEnvironment({ attempt: 1 }).run(activities.confirmCompromised, { users });
    for (const attempt of [1, 3, 5]) {
      const failure = await attemptFailure(attempt, users);
      expect(failure.nonRetryable).toBe(false);
      const full = Math.min(CONFIRM_BACKOFF.firstMs * 2 ** (attempt - 1), CONFIRM_BACKOFF.maxMs);
      expect(failure.nextRetryDelay).toBeGreaterThanOrEqual(full / 2);
      expect(failure.nextRetryDelay).toBeLessThanOrEqual(full);
    }
    expect(sim.stats().riskyUsers.requests.map((request) => request.status)).toEqual([204, 429, 429, 429]);
  });

  it('is refused once, not retried, for a tenant without the licence, and says what to do', async () => {
    await open({ token: TOKEN, identityProtection: { licensed: false } });
    const failure = await attemptFailure(1, [{ row: 2, user: 'eve@contoso.test' }]);
    expect(failure.type).toBe(CONTAINMENT_REFUSED);
    expect(failure.nonRetryable).toBe(true);
    expect(failure.message).toMatch(/403 Forbidden.*licensed.*IdentityRiskyUser\.ReadWrite\.All/);
  });
});
