/**
 * SIGTERM to a worker process (what Docker, Kubernetes and systemd send) drains it: it takes no new
 * tasks, lets the Graph requests in flight finish and report, then exits 0. A worker started later
 * finishes the job with no request cut off, none sent twice, and no activity left to time out.
 *
 * The worker reaches the simulator through a small HTTP relay that sees every exchange from the
 * worker's side: a request whose connection the worker closed before the whole answer arrived is
 * counted as cut off. That is the ground truth the test asserts on.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { type IncomingMessage, type Server, type ServerResponse, createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { checkCsv, startJob, waitForJob } from '../client/jobs';
import { PROJECT_ROOT } from '../temporal/devServer';
import { sampleCsv } from '../simulator/sampleUsers';
import { SHUTDOWN_GRACE_MS } from '../worker';
import { userWorkflowsQuery } from '../workflows/types';
import { FAST_POLICY, openStage, readJson, type ReportJson, type Stage, waitUntil } from './support/harness';

/** Every Graph answer takes this long, so requests are surely in flight when SIGTERM comes. */
const LATENCY_MS = 2_500;
const USERS = 6;

interface Relay {
  url: string;
  /** Requests the worker sent. */
  received: number;
  /** Answers delivered in full to the worker. */
  answered: number;
  /** Exchanges the worker's side closed before the answer was complete. */
  cutOff: number;
  inFlight: { method: string; path: string }[];
  target?: string;
  close(): Promise<void>;
}

/** An HTTP relay in front of the simulator (set `target` once the simulator listens). */
async function startRelay(): Promise<Relay> {
  const relay: Relay = {
    url: '',
    received: 0,
    answered: 0,
    cutOff: 0,
    inFlight: [],
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const entry = { method: req.method ?? '', path: req.url ?? '' };
    relay.received += 1;
    relay.inFlight.push(entry);
    let settled = false;
    const settle = (answered: boolean) => {
      if (settled) return;
      settled = true;
      relay.inFlight.splice(relay.inFlight.indexOf(entry), 1);
      if (answered) relay.answered += 1;
      else relay.cutOff += 1;
    };
    res.on('finish', () => settle(true));
    res.on('close', () => settle(res.writableFinished));
    const target = new URL(req.url ?? '/', relay.target);
    const upstream = request(target, { method: req.method, headers: req.headers }, (answer) => {
      const { location } = answer.headers;
      // Operation URLs point back through the relay, so polls are seen too.
      if (location && relay.target) answer.headers.location = location.replace(relay.target, relay.url);
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  relay.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return relay;
}

let relay: Relay;
let stage: Stage;
const processes: ChildProcess[] = [];

beforeAll(async () => {
  relay = await startRelay();
  stage = await openStage({ latencyMs: LATENCY_MS }, { env: { GRAPH_BASE_URL: `${relay.url}/v1.0` } });
  relay.target = new URL(stage.simulator.baseUrl).origin;
});

afterAll(async () => {
  for (const child of processes)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await stage?.close();
  await relay?.close();
});

test('SIGTERM drains a worker: requests in flight finish, it exits 0, and a new worker completes the job', async () => {
  const worker = spawn(process.execPath, [join(PROJECT_ROOT, 'dist', 'client', 'cli.js'), 'worker'], {
    env: stage.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  processes.push(worker);
  let output = '';
  const keep = (chunk: Buffer) => {
    output = `${output}${chunk.toString()}`.slice(-20_000);
  };
  worker.stdout.on('data', keep);
  worker.stderr.on('data', keep);
  const exited = once(worker, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;

  const sample = sampleCsv(USERS, { scenario: 'ok', duplicateEvery: 0, invalidEvery: 0 });
  const csv = await checkCsv(await stage.writeCsv('users.csv', sample.text));
  const jobId = await startJob(stage.client, stage.settings.taskQueue, csv, {
    windowSize: USERS,
    policy: { ...FAST_POLICY, requestTimeoutMs: 30_000 },
  });
  await waitUntil('resetPassword POSTs are in flight', () =>
    Promise.resolve(relay.inFlight.filter((entry) => entry.method === 'POST').length >= 3),
  );

  const inFlightAtSignal = relay.inFlight.length;
  const answeredAtSignal = relay.answered;
  const signalledAt = Date.now();
  worker.kill('SIGTERM');
  const [code, signal] = await exited;
  const stoppedAfterMs = Date.now() - signalledAt;

  expect({ code, signal }).toEqual({ code: 0, signal: null });
  expect(stoppedAfterMs).toBeLessThan(SHUTDOWN_GRACE_MS);
  expect(output).toMatch(/SIGTERM received, draining/);
  // Ground truth from the worker's side of the wire: what was in flight was answered, nothing cut off.
  expect(inFlightAtSignal).toBeGreaterThanOrEqual(3);
  expect(relay.inFlight).toEqual([]);
  expect(relay.cutOff).toBe(0);
  expect(relay.answered).toBe(relay.received);
  expect(relay.answered).toBeGreaterThanOrEqual(answeredAtSignal + inFlightAtSignal);

  await stage.startWorker();
  const final = await waitForJob(stage.client, jobId, () => undefined, 200);
  if (final.state !== 'completed') throw new Error(`job ${jobId} did not complete: ${JSON.stringify(final)}`);
  const report = await readJson<ReportJson>(final.summary.reportJsonPath);
  expect(report.outcomes).toHaveLength(USERS);
  for (const outcome of report.outcomes) {
    // One POST each, as Graph saw it: a drained request was never abandoned, timed out and sent again.
    expect({
      user: outcome.user,
      status: outcome.status,
      startAttempts: outcome.startAttempts,
      ambiguousResends: outcome.ambiguousResends ?? 0,
      posts: stage.simulator.user(outcome.user)?.posts,
    }).toEqual({ user: outcome.user, status: 'succeeded', startAttempts: 1, ambiguousResends: 0, posts: 1 });
  }
  expect(relay.cutOff).toBe(0);
  // Temporal's side: no activity of the job or its users failed or timed out (an abandoned one would).
  const query = `WorkflowId = "${jobId}" OR ${userWorkflowsQuery(jobId)}`;
  const lost: string[] = [];
  let workflows = 0;
  for await (const execution of stage.client.workflow.list({ query })) {
    workflows += 1;
    const history = await stage.client.workflow
      .getHandle(execution.workflowId, execution.runId)
      .fetchHistory();
    for (const event of history.events ?? []) {
      if (event.activityTaskTimedOutEventAttributes || event.activityTaskFailedEventAttributes) {
        lost.push(`${execution.workflowId} event ${String(event.eventId)}`);
      }
    }
  }
  expect(workflows).toBe(USERS + 1);
  expect(lost).toEqual([]);
  const graph = stage.simulator.stats();
  const answeredByGraph = Object.values(graph.responsesByStatus).reduce((sum, count) => sum + count, 0);
  expect(answeredByGraph).toBe(graph.requests);
  expect(relay.received).toBe(graph.requests);
});
