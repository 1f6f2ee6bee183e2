/**
 * The soak: a large job (20,000 users by default) under the chaos test's faults, worker kills and a dev
 * server restart, then the same audit. Outside the test suite: it takes most of an hour.
 *
 *   npm run soak -- [--users N] [--window N] [--kills N] [--seed S] [--max-minutes M]
 *
 * Prints progress on stderr and a JSON summary on stdout (also written to bench/results/), with the
 * figures the issue asks for: users, kills, restarts, faults injected by kind, resets re-sent, outcomes
 * missing (must be 0) and wall time. Exits 1 when the audit found a problem or the job did not finish.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { PROJECT_ROOT } from '../temporal/devServer';
import { auditChaos, runChaos } from './chaos';

function whole(value: string | undefined, fallback: number, flag: string): number {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 0)
    throw new Error(`${flag} must be a whole number, got ${value}`);
  return parsed;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      users: { type: 'string' },
      window: { type: 'string' },
      kills: { type: 'string' },
      seed: { type: 'string' },
      'max-minutes': { type: 'string' },
    },
  });
  const users = whole(values.users, 20_000, '--users');
  const windowSize = whole(values.window, 200, '--window');
  const kills = whole(values.kills, Math.max(3, Math.round(users / 4_000)), '--kills');
  const seed = values.seed ?? `soak-${new Date().toISOString()}`;
  const maxMinutes = whole(values['max-minutes'], 120, '--max-minutes');
  const log = (line: string): void => {
    process.stderr.write(`${new Date().toISOString()} ${line}\n`);
  };

  // Ctrl-C or a SIGTERM stops the run and its dev server, worker and simulator, rather than leaving them.
  const interrupt = new AbortController();
  for (const name of ['SIGINT', 'SIGTERM'] as const) {
    process.once(name, () => {
      log(`${name} received: stopping the soak`);
      interrupt.abort();
    });
  }
  const result = await runChaos({
    signal: interrupt.signal,
    users,
    windowSize,
    kills,
    serverRestarts: 1,
    faults: { throttle: 0.1, unavailable: 0.05, drop: 0.02, opFail: 0.05 },
    seed,
    policy: {
      minWaitMs: 500,
      defaultWaitMs: 1_000,
      maxWaitMs: 10_000,
      deadlineMs: (maxMinutes + 30) * 60_000,
      requestTimeoutMs: 10_000,
    },
    retryAfterSeconds: 1,
    operationSeconds: 0.5,
    timeoutMs: maxMinutes * 60_000,
    log,
  });
  const audit = auditChaos(result);
  const figures = {
    users,
    windowSize,
    seed,
    finished: result.finished,
    usersDone: result.finished ? audit.outcomes : (result.progress?.done ?? 0),
    kills: result.events.filter((event) => event.kind === 'worker-killed').length,
    serverRestarts: result.events.filter((event) => event.kind === 'server-restarted').length,
    unexpectedWorkerExits: result.unexpectedWorkerExits,
    faultsInjected: result.simulatorStats.faults,
    graph: {
      requests: result.simulatorStats.requests,
      posts: result.simulatorStats.posts,
      resetsAccepted: result.simulatorStats.resetsAccepted,
      resetsApplied: result.simulatorStats.resetsApplied,
      earlyRequests: result.simulatorStats.earlyRequests,
      // Which requests came early, how early, and after which answer (atMs as the events' atMs, roughly).
      earlyDetails: result.simulatorStats.earlyDetails,
    },
    counts: result.finished ? audit.counts : result.progress?.counts,
    resetsResent: audit.ambiguousResends,
    confirmedByPasswordChange: audit.confirmedByPasswordChange,
    outcomesMissing: result.finished ? audit.missingOutcomes : users - (result.progress?.done ?? 0),
    problems: audit.problems.length,
    firstProblems: audit.problems.slice(0, 20),
    events: result.events,
    wallSeconds: Math.round(result.wallMs / 1000),
  };
  const text = JSON.stringify(figures, null, 2);
  process.stdout.write(`${text}\n`);
  const dir = join(PROJECT_ROOT, 'bench', 'results');
  await mkdir(dir, { recursive: true });
  const path = join(dir, `${new Date().toISOString().replace(/[:.]/g, '-')}-soak.json`);
  await writeFile(path, `${text}\n`);
  log(`wrote ${path}`);
  return audit.problems.length === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error instanceof Error ? (error.stack ?? error.message) : error);
    process.exit(2);
  },
);
