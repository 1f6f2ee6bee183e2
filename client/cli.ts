#!/usr/bin/env node
/**
 * bulk-reset: start, watch and report on bulk password resets; run a worker, the Graph simulator,
 * the operator sign-in, or the local demo.
 */
import { parseArgs } from 'node:util';
import type { Client } from '@temporalio/client';
import { login } from '../graph/credentials';
import { graphScopes } from '../graph/client';
import { type Settings, createClient, loadSettings, operatorIdentity } from '../temporal/config';
import { runPlan } from './plan';
import { EncryptionCodec, loadCodecKeys, rotateCodecKey } from '../temporal/codec';
import { startCodecServer } from '../temporal/codecServer';
import { parseDuration } from './durations';
import { JOB_FLAGS, policyFromFlags, printCsvCheck, windowFromFlags } from './jobFlags';
import { PASSWORD_FLAGS, newSecretsFilePath, passwordChoiceFromFlags, secretsCommand } from './passwordFlags';
import {
  type ControlAction,
  DEFAULT_MAX_USERS,
  checkCsv,
  controlJob,
  copyReport,
  exitCodeFor,
  failureMessage,
  formatProgress,
  formatSummary,
  jobState,
  startJob,
} from './jobs';
import { retryFailed } from './retry';
import { jobPaths } from '../jobs/jobFiles';
import { scheduleCommand } from './schedules';
import { runWatch, watchCommand } from './watch';
import { startTracing, stopTracing } from '../temporal/tracing';

const USAGE = `bulk-reset: durable bulk password resets for Microsoft Entra ID, on Temporal

Usage:
  bulk-reset start <users.csv> [--wait] [--job-id ID] [--window N] [--deadline 15m]
                               [--min-wait 1s] [--max-wait 60s] [--default-wait 2s] [--sign-in-hold 2h]
           [--revoke-sessions] [--plan plan.json] [--require-approval [--approval-timeout 24h]]
           [--allow-large] [--password graph|generated|csv] [--password-length 20]
           [--secrets-file FILE [--secrets-recipient public.pem]]
  bulk-reset secrets decrypt [--key private.pem] [--out FILE] <secrets file>
  bulk-reset plan <users.csv> [--out plan.json] [--concurrency 8]
  bulk-reset status <job> [--json]
  bulk-reset watch <job>
  bulk-reset schedule create <users.csv> --id NAME (--every 1h | --cron "0 3 * * 0") [--window N]
                             [--deadline 15m] [--min-wait 1s] [--max-wait 60s] [--default-wait 2s] [--sign-in-hold 2h]
                             [--revoke-sessions] [--allow-large]
  bulk-reset schedule list
  bulk-reset schedule delete <NAME>
  bulk-reset pause|resume|cancel <job> [--reason TEXT]
  bulk-reset approve <job>
  bulk-reset retry <job> [--all-failed] [--wait] [--secrets-file FILE] [--deadline 15m] [--window N] ...
  bulk-reset codec-server [--port 8888] [--ui-origin http://localhost:8233]
                          [--jwks FILE|URL --issuer URL --audience ID]
  bulk-reset codec-key rotate
  bulk-reset report <job> --out <file> [--format csv|json] [--force]
  bulk-reset worker [--metrics host:port]
  bulk-reset login
  bulk-reset simulate [--port 8080] [--host 127.0.0.1] [--public-url URL] [--token TOKEN] [--retry-after 1]
  bulk-reset demo [--users 300] [--exit]

Settings come from the environment (see README): TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE,
TEMPORAL_API_KEY / TEMPORAL_TLS_*, BULK_RESET_TASK_QUEUE, BULK_RESET_DATA_DIR, GRAPH_BASE_URL,
AZURE_TENANT_ID, AZURE_CLIENT_ID, GRAPH_TOKEN (simulator only), BULK_RESET_METRICS (worker's
Prometheus endpoint), OTEL_EXPORTER_OTLP_ENDPOINT (OpenTelemetry traces), BULK_RESET_LOG_VERBOSE=1
(worker logs errors in full, user names included).

Exit codes: 0 every user succeeded (or was skipped), 1 some users failed or are unconfirmed,
2 the job could not run or the command was wrong.`;

/** An error the operator caused and can fix: printed without a stack trace, exit code 2. */
class UsageError extends Error {}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const settings = loadSettings();
  // The worker starts its own, under its own service name.
  if (command !== 'worker') startTracing('bulk-reset-cli');
  switch (command) {
    case 'start':
      return start(settings, rest);
    case 'plan':
      return runPlan(settings, rest);
    case 'status':
      return status(settings, rest);
    case 'watch':
      return watchCommand(settings, rest);
    case 'schedule':
      return scheduleCommand(settings, rest);
    case 'report':
      return report(settings, rest);
    case 'pause':
    case 'resume':
    case 'cancel':
    case 'approve':
      return control(settings, command, rest);
    case 'retry':
      return retry(settings, rest);
    case 'codec-server':
      return codecServer(settings, rest);
    case 'codec-key':
      return codecKey(settings, rest);
    case 'secrets':
      return secretsCommand(rest);
    case 'worker': {
      // Loaded here, not at the top: @temporalio/worker is heavy and only this command needs it.
      const { runWorker } = await import('../worker/index.js');
      await runWorker(settings, parseWorkerArgs(rest));
      return 0;
    }
    case 'login':
      return signIn(settings);
    case 'simulate':
      return simulate(rest);
    case 'demo': {
      const { runDemo } = await import('./demo.js');
      return runDemo(parseDemoArgs(rest));
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      console.log(USAGE);
      return command === undefined ? 2 : 0;
    default:
      throw new UsageError(`unknown command "${command}"\n\n${USAGE}`);
  }
}

async function start(settings: Settings, args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      wait: { type: 'boolean', default: false },
      'job-id': { type: 'string' },
      ...JOB_FLAGS,
      plan: { type: 'string' },
      'require-approval': { type: 'boolean', default: false },
      'approval-timeout': { type: 'string', default: '24h' },
      ...PASSWORD_FLAGS,
    },
  });
  if (positionals.length !== 1) throw new UsageError('start takes exactly one CSV file');
  const passwords = await passwordChoiceFromFlags(values);
  for (const notice of passwords.notices) console.error(notice);
  const csv = await checkCsv(positionals[0], 20, passwords.settings.mode === 'csv' ? 'require' : 'refuse');
  printCsvCheck(csv, 'the report');
  if (csv.runnableRows === 0) throw new UsageError('no row of this CSV can be reset; nothing was started');

  const client = await createClient(settings);
  const jobId = await startJob(client, settings.taskQueue, csv, {
    jobId: values['job-id'],
    dataDir: settings.dataDir,
    startedBy: operatorIdentity(),
    planPath: values.plan,
    approvalTimeoutMs: values['require-approval'] ? parseDuration(values['approval-timeout']) : undefined,
    allowLarge: values['allow-large'],
    maxUsers: settings.maxUsers ?? DEFAULT_MAX_USERS,
    windowSize: windowFromFlags(values),
    policy: { ...policyFromFlags(values), password: passwords.settings },
    secretsRecipient: passwords.recipientPem,
  });
  console.log(jobId);
  if (values['require-approval']) {
    console.error(`job ${jobId} waits for another operator to run: bulk-reset approve ${jobId}`);
  }
  if (!values.wait) return 0;
  return watch(client, jobId);
}

async function watch(client: Client, jobId: string): Promise<number> {
  return runWatch(client, jobId, process.stderr);
}

async function status(settings: Settings, args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { json: { type: 'boolean', default: false } },
  });
  if (positionals.length !== 1) throw new UsageError('status takes one job id');
  const jobId = positionals[0];
  const client = await createClient(settings);
  const current = await jobState(client, jobId);
  if (values.json) {
    console.log(JSON.stringify({ jobId, ...current }, null, 2));
  } else if (current.state === 'running') {
    console.log(formatProgress(current.progress));
  } else if (current.state === 'completed') {
    console.log(formatSummary(current.summary));
  } else if (current.state === 'failed') {
    console.log(`job ${jobId} could not run: ${current.message}`);
  } else {
    console.log(`job ${jobId} not found in namespace ${settings.temporal.namespace}`);
  }
  if (current.state === 'completed') return exitCodeFor(current.summary);
  return current.state === 'running' ? 0 : 2;
}

async function report(settings: Settings, args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      out: { type: 'string' },
      format: { type: 'string', default: 'csv' },
      force: { type: 'boolean', default: false },
    },
  });
  if (positionals.length !== 1 || !values.out)
    throw new UsageError('report takes one job id and --out <file>');
  if (values.format !== 'csv' && values.format !== 'json') throw new UsageError('--format is csv or json');
  const written = await copyReport(settings.dataDir, positionals[0], values.out, values.format, {
    replace: values.force,
  });
  console.log(written);
  return 0;
}

async function control(settings: Settings, action: ControlAction, args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { reason: { type: 'string' } },
  });
  if (positionals.length !== 1) throw new UsageError(`${action} takes one job id`);
  const jobId = positionals[0];
  const client = await createClient(settings);
  // An approval approves exactly the rows shown here: the job refuses it if its rows are not these.
  const shown = action === 'approve' ? await approvalFacts(client, settings, jobId) : undefined;
  const progress = await controlJob(client, jobId, action, {
    by: operatorIdentity(),
    reason: values.reason,
    rowsSha256: shown,
  });
  console.log(formatProgress(progress));
  return 0;
}

/**
 * Shows the approver what they approve (who started the job, how many users, the prepared rows' SHA-256
 * and where to read them) and returns that SHA-256 to pin the approval to.
 */
async function approvalFacts(client: Client, settings: Settings, jobId: string): Promise<string | undefined> {
  const current = await jobState(client, jobId);
  if (current.state !== 'running') return undefined; // controlJob says why it cannot be approved
  const { progress } = current;
  if (progress.rowsSha256 === undefined) return undefined;
  console.error(
    [
      `approving job ${jobId}, started by ${progress.startedBy ?? 'unknown'}:`,
      `  ${progress.runnable ?? '?'} users to reset (${progress.counts.skipped} rows skipped) of ${progress.total ?? '?'} rows`,
      `  prepared rows SHA-256 ${progress.rowsSha256}`,
      `  the rows, one JSON line per user: ${jobPaths(settings.dataDir, jobId).rows}`,
    ].join('\n'),
  );
  return progress.rowsSha256;
}

async function retry(settings: Settings, args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      'all-failed': { type: 'boolean', default: false },
      wait: { type: 'boolean', default: false },
      'secrets-file': { type: 'string' },
      ...JOB_FLAGS,
    },
  });
  if (positionals.length !== 1) throw new UsageError('retry takes one job id');
  const client = await createClient(settings);
  // The original job's settings, with these flags on top (retrySettings).
  const retried = await retryFailed(client, settings, positionals[0], {
    allFailed: values['all-failed'],
    windowSize: windowFromFlags(values),
    policy: policyFromFlags(values),
    secretsFile:
      values['secrets-file'] === undefined ? undefined : await newSecretsFilePath(values['secrets-file']),
  });
  if (!retried) {
    console.log(
      `job ${positionals[0]} has no ${values['all-failed'] ? 'failed' : 'retryable failed'} rows: nothing to retry`,
    );
    return 0;
  }
  console.log(`${retried.rows} rows of ${positionals[0]} retried as:`);
  console.log(retried.jobId);
  return values.wait ? watch(client, retried.jobId) : 0;
}

async function codecServer(settings: Settings, args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      port: { type: 'string', default: '8888' },
      host: { type: 'string', default: '127.0.0.1' },
      'ui-origin': { type: 'string', multiple: true, default: ['http://localhost:8233'] },
      jwks: { type: 'string', default: settings.codecServerJwt.jwks },
      issuer: { type: 'string', default: settings.codecServerJwt.issuer },
      audience: { type: 'string', default: settings.codecServerJwt.audience },
    },
  });
  const { jwks, issuer, audience } = values;
  if ((issuer !== undefined || audience !== undefined) && jwks === undefined)
    throw new UsageError(
      '--issuer and --audience go with --jwks (the sign-in tokens are checked against its keys)',
    );
  if (jwks !== undefined && (issuer === undefined || audience === undefined))
    throw new UsageError(
      '--jwks needs --issuer and --audience: without them a token the identity provider issued for any other application would be accepted',
    );
  const server = await startCodecServer({
    codec: new EncryptionCodec(await loadCodecKeys(settings.codecKeys)),
    allowedOrigins: values['ui-origin'],
    token: settings.codecServerToken,
    jwt: jwks === undefined ? undefined : { jwks, issuer: issuer as string, audience: audience as string },
    port: Number(values.port),
    host: values.host,
  });
  const gate =
    jwks !== undefined
      ? `requests with a sign-in token from ${issuer}${settings.codecServerToken ? ' or the codec server token' : ''}`
      : settings.codecServerToken
        ? 'requests with the codec server token'
        : 'browser requests from the Web UI (no token: /encode is off)';
  console.log(`codec server at ${server.url}, answering ${values['ui-origin'].join(', ')}: ${gate}`);
  console.log(
    `start the Web UI with its codec endpoint set to ${server.url} (temporal server start-dev --ui-codec-endpoint ${server.url})`,
  );
  await new Promise<void>((done) => {
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
  });
  await server.close();
  return 0;
}

async function codecKey(settings: Settings, args: string[]): Promise<number> {
  if (args[0] !== 'rotate' || args.length !== 1) throw new UsageError('codec-key takes one action: rotate');
  if (settings.codecKeys.inline) {
    throw new UsageError(
      'the keys come from BULK_RESET_CODEC_KEYS: rotate there (put the new id:key first, keep the old ones)',
    );
  }
  const id = await rotateCodecKey(settings.codecKeys.file);
  console.log(
    `new payloads are sealed with key ${id}; older keys stay in ${settings.codecKeys.file} to open older payloads`,
  );
  console.log('restart the workers, codec servers and clients that share this key file so they pick it up');
  return 0;
}

async function signIn(settings: Settings): Promise<number> {
  const { username, tenantId } = await login(
    settings.credential,
    graphScopes(settings.graphBaseUrl),
    (message) => console.log(message),
  );
  console.log(
    `signed in as ${username} (tenant ${tenantId}); workers using ${settings.credential.authDir} can now refresh tokens on their own`,
  );
  return 0;
}

function simulateHelp(scenarios: readonly string[], counted: readonly string[]): string {
  return `bulk-reset simulate [--port 8080] [--host 127.0.0.1] [--public-url URL] [--token TOKEN] [--retry-after 1]

A Graph stand-in for rehearsals. Locations name the host the caller used (or --public-url).
A user's scenario is the first label of its name: <scenario>.<anything>@domain, e.g. slow.alice@contoso.test.
Scenarios: ${scenarios.join(', ')}.
${counted.join(', ')} take a count of polls or "all": pollmissing3.bob@contoso.test.
Each is described in README.md (The Graph simulator).`;
}

async function simulate(args: string[]): Promise<number> {
  // Loaded here, not at the top: only `simulate` runs the simulator, so `help` does not load it.
  const { COUNTED_SCENARIOS, SCENARIOS, startGraphSimulator } =
    await import('../simulator/graphSimulator.js');
  const { values } = parseArgs({
    args,
    options: {
      port: { type: 'string', default: '8080' },
      host: { type: 'string', default: '127.0.0.1' },
      'public-url': { type: 'string' },
      token: { type: 'string', default: process.env.GRAPH_TOKEN ?? 'simulator-token' },
      'retry-after': { type: 'string', default: '1' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(simulateHelp(SCENARIOS, COUNTED_SCENARIOS));
    return 0;
  }
  const simulator = await startGraphSimulator({
    port: Number(values.port),
    host: values.host,
    publicBaseUrl: values['public-url'],
    token: values.token,
    retryAfterSeconds: Number(values['retry-after']),
  });
  console.log(`Graph simulator at ${simulator.baseUrl}`);
  console.log(
    `point workers at it with GRAPH_BASE_URL=${simulator.baseUrl} and GRAPH_TOKEN set to the token you chose`,
  );
  console.log(
    'scenario by name: <scenario>.<anything>@domain, e.g. slow.alice@contoso.test; Ctrl-C stops it',
  );
  await new Promise<void>((done) => {
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
  });
  await simulator.close();
  return 0;
}

function parseWorkerArgs(args: string[]): { metrics?: string } {
  const { values } = parseArgs({ args, options: { metrics: { type: 'string' } } });
  return { metrics: values.metrics };
}

function parseDemoArgs(args: string[]): { users: number; exitWhenDone: boolean } {
  const { values } = parseArgs({
    args,
    options: { users: { type: 'string', default: '300' }, exit: { type: 'boolean', default: false } },
  });
  const users = Number(values.users);
  if (!Number.isInteger(users) || users < 1) throw new UsageError('--users must be a positive whole number');
  return { users, exitWhenDone: values.exit };
}

main(process.argv.slice(2))
  .then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      console.error(`bulk-reset: ${error instanceof UsageError ? error.message : failureMessage(error)}`);
      process.exitCode = 2;
    },
  )
  .finally(stopTracing);
