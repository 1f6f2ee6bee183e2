/**
 * The chaos run: a job of 300 users while its worker is killed with SIGKILL at seeded random moments
 * and restarted, its Temporal dev server (state on disk) is stopped and restarted, and Graph throttles,
 * fails, drops connections and fails operations at random. Nothing may be lost and nothing done twice
 * without the report saying so: bench/chaos.ts runs it and holds the report against the simulator.
 */
import { auditChaos, runChaos } from '../bench/chaos';

const USERS = 300;

test('300 users through worker kills, a dev server restart and Graph faults: every row one true outcome', async () => {
  const result = await runChaos({
    users: USERS,
    windowSize: 60,
    kills: 3,
    serverRestarts: 1,
    faults: { throttle: 0.1, unavailable: 0.05, drop: 0.02, opFail: 0.05 },
    seed: process.env.BULK_RESET_CHAOS_SEED ?? 'chaos-suite',
    policy: {
      minWaitMs: 100,
      defaultWaitMs: 200,
      maxWaitMs: 2_000,
      // Long enough that no user ends on its deadline however the kills fall: that is the outage test's part.
      deadlineMs: 600_000,
      requestTimeoutMs: 3_000,
    },
    retryAfterSeconds: 0.3,
    operationSeconds: 0.2,
    timeoutMs: 400_000,
    // The kills, the restart and, if the job does not finish, its last progress and where its logs are.
    log: (line) => console.log(`chaos run: ${line}`),
  });
  const audit = auditChaos(result);
  console.log(
    `chaos: ${JSON.stringify({ ...audit, problems: audit.problems.length, events: result.events, wallMs: result.wallMs, faults: result.simulatorStats.faults })}`,
  );

  // The chaos really happened.
  expect(result.events.filter((event) => event.kind === 'worker-killed')).toHaveLength(3);
  expect(result.events.filter((event) => event.kind === 'server-restarted')).toHaveLength(1);
  for (const event of result.events) expect(event.done).toBeLessThan(USERS);
  const { faults } = result.simulatorStats;
  expect(faults.throttle).toBeGreaterThan(0);
  expect(faults.unavailable).toBeGreaterThan(0);
  expect(faults.drop).toBeGreaterThan(0);
  expect(faults.opFail).toBeGreaterThan(0);

  // And nothing was lost or done twice unaccounted (each problem names its row).
  expect(audit.problems).toEqual([]);
  expect(audit.missingOutcomes).toBe(0);
  expect(audit.outcomes).toBe(USERS);
  expect(audit.earlyRequests).toBe(0);
  expect(audit.counts.succeeded + audit.counts.failed).toBe(USERS);
  expect(audit.counts.failed).toBeGreaterThan(0);
  expect(audit.resetsApplied).toBe(audit.counts.succeeded);
  // Every reset Graph accepted beyond one per user is a re-send the report owns up to.
  expect(audit.resetsAccepted - USERS).toBeLessThanOrEqual(audit.ambiguousResends);
}, 900_000);
