/**
 * OpenTelemetry traces: with OTEL_EXPORTER_OTLP_ENDPOINT set, a `bulk-reset start` and a
 * `bulk-reset worker` process send OTLP/HTTP spans for the job, its users and their activities, in one
 * trace, to a receiver played here by a small HTTP server; and no user name reaches it, not even from
 * the failures Graph gave.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { PROJECT_ROOT } from '../temporal/devServer';
import { waitForJob } from '../client/jobs';
import { redactSpan } from '../temporal/tracing';
import { type Stage, cli, openStage, waitUntil } from './support/harness';

const USERS = ['ok.trace1@contoso.test', 'slow.trace2@contoso.test', 'denied.trace3@contoso.test'];

interface OtlpSpan {
  traceId: string;
  name: string;
  status?: { code?: number; message?: string };
  events?: { name: string; attributes?: { key: string }[] }[];
}

interface OtlpRequest {
  resourceSpans?: { scopeSpans?: { spans?: OtlpSpan[] }[] }[];
}

let stage: Stage;
let receiver: Server;
const received: Buffer[] = [];
let worker: ChildProcess | undefined;

beforeAll(async () => {
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      if (req.method === 'POST' && req.url === '/v1/traces') received.push(Buffer.concat(chunks));
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((listening) => receiver.listen(0, '127.0.0.1', listening));
  const endpoint = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
  stage = await openStage(
    { retryAfterSeconds: 0.2 },
    {
      env: {
        OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
        // The OTLP/HTTP exporter sends JSON, which the test reads; this makes it send promptly.
        OTEL_BSP_SCHEDULE_DELAY: '200',
      },
    },
  );
});

afterAll(async () => {
  if (worker && worker.exitCode === null && worker.signalCode === null) worker.kill('SIGKILL');
  await stage?.close();
  await new Promise((closed) => receiver?.close(closed));
});

function spansReceived(): OtlpSpan[] {
  return received.flatMap((body) =>
    ((JSON.parse(body.toString('utf8')) as OtlpRequest).resourceSpans ?? []).flatMap((resource) =>
      (resource.scopeSpans ?? []).flatMap((scope) => scope.spans ?? []),
    ),
  );
}

test('a job sends spans for the job, its users and their Graph activities, in one trace, naming no user', async () => {
  worker = spawn(process.execPath, [join(PROJECT_ROOT, 'dist', 'client', 'cli.js'), 'worker'], {
    env: stage.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  worker.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  worker.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  await waitUntil('the worker says where traces go', () => {
    if (worker?.exitCode !== null) throw new Error(`the worker exited:\n${output}`);
    return Promise.resolve(output.includes('OpenTelemetry traces to http://127.0.0.1:'));
  });

  const csv = await stage.writeCsv('users.csv', `userPrincipalName\n${USERS.join('\n')}\n`);
  // Started from the CLI, so its span begins the trace; followed here.
  const jobId = `trace-${randomBytes(4).toString('hex')}`;
  const started = await cli(
    stage,
    'start',
    csv,
    '--job-id',
    jobId,
    '--min-wait',
    '100ms',
    '--default-wait',
    '200ms',
    '--max-wait',
    '1s',
  );
  if (started.code !== 0) throw new Error(`start ended with ${started.code}:\n${started.stderr}`);
  const final = await waitForJob(stage.client, jobId, () => undefined, 250);
  if (final.state !== 'completed') throw new Error(`job did not complete: ${JSON.stringify(final)}`);
  expect(final.summary.counts).toMatchObject({ succeeded: 2, failed: 1 });

  // The worker sends what it still holds when it stops.
  worker.kill('SIGTERM');
  await once(worker, 'exit');
  await waitUntil('the worker spans arrive', () =>
    Promise.resolve(spansReceived().some((span) => span.name === 'RunActivity:writeReport')),
  );

  const spans = spansReceived();
  const names = new Set(spans.map((span) => span.name));
  for (const name of [
    'StartWorkflow:bulkReset',
    'RunWorkflow:bulkReset',
    // Users are started in batches by an activity, through the worker's client.
    'RunActivity:startUsers',
    'StartWorkflow:resetUser',
    'RunWorkflow:resetUser',
    'StartActivity:startReset',
    'RunActivity:startReset',
    'RunActivity:pollOperation',
    'RunActivity:writeReport',
  ]) {
    expect(names).toContain(name);
  }
  // The CLI's start and the worker's work are one trace, carried through Temporal's headers.
  const start = spans.find((span) => span.name === 'StartWorkflow:bulkReset');
  const job = spans.find((span) => span.name === 'RunWorkflow:bulkReset');
  expect(job?.traceId).toBe(start?.traceId);
  expect(spans.filter((span) => span.name === 'RunWorkflow:resetUser')).toHaveLength(USERS.length);

  // Graph's 403 was recorded on its span as an exception, with its type but without its message.
  const refused = spans.filter(
    (span) =>
      span.name === 'RunActivity:startReset' && (span.events ?? []).some((e) => e.name === 'exception'),
  );
  expect(refused.length).toBeGreaterThan(0);
  for (const span of refused) {
    expect(span.status?.message ?? '').toBe('');
    const keys = (span.events ?? []).flatMap((event) => (event.attributes ?? []).map((a) => a.key));
    expect(keys).toContain('exception.type');
    expect(keys).not.toContain('exception.message');
  }

  const everything = Buffer.concat(received).toString('utf8');
  for (const user of USERS) {
    expect(everything).not.toContain(user.split('@')[0]);
  }
  expect(everything).not.toContain('contoso.test');
  expect(everything).not.toContain(stage.env.GRAPH_TOKEN as string);
});

test('redaction keeps the span and its exception type, and drops every message', () => {
  const span = {
    name: 'RunActivity:startReset',
    spanContext: () => ({ traceId: 't', spanId: 's', traceFlags: 1 }),
    status: { code: 2, message: 'user alice@contoso.com: Graph answered 403' },
    events: [
      {
        name: 'exception',
        time: [0, 0] as [number, number],
        attributes: {
          'exception.type': 'GraphPermanentError',
          'exception.message': 'user alice@contoso.com: Graph answered 403',
          'exception.stacktrace': 'ApplicationFailure: user alice@contoso.com …',
        },
      },
      { name: 'other', time: [0, 0] as [number, number], attributes: { kept: 'yes' } },
    ],
  } as unknown as Parameters<typeof redactSpan>[0];
  const redacted = redactSpan(span);
  expect(redacted.name).toBe('RunActivity:startReset');
  expect(redacted.spanContext().traceId).toBe('t');
  expect(redacted.status).toEqual({ code: 2 });
  expect(redacted.events.map((event) => event.attributes)).toEqual([
    { 'exception.type': 'GraphPermanentError' },
    { kept: 'yes' },
  ]);
  expect(JSON.stringify(redacted)).not.toContain('alice');
});
