/**
 * What each bulk-reset command does, once ./commands has read and checked its flags. Loaded only when a
 * command runs (not for `--help`, `--version` or a mistyped flag); the worker, the simulator and the demo
 * are loaded only by the commands that use them.
 */
import type { Client } from '@temporalio/client';
import { login } from '../graph/credentials';
import { graphScopes } from '../graph/client';
import { type Settings, createClient, loadSettings, operatorIdentity } from '../temporal/config';
import { runPlan } from './plan';
import { EncryptionCodec, loadCodecKeys, rotateCodecKey } from '../temporal/codec';
import { startCodecServer } from '../temporal/codecServer';
import {
  type Actions,
  type CodecServerOptions,
  type ControlAction,
  type ControlOptions,
  DEFAULT_APPROVAL_TIMEOUT,
  type DemoOptions,
  type ListOptions,
  type ReportOptions,
  type RetryOptions,
  type ScheduleCreateOptions,
  type ScheduleDeleteOptions,
  type SimulateOptions,
  type StartOptions,
  type StatusOptions,
  UsageError,
  type WorkerOptions,
} from './commands';
import { parseDuration } from './durations';
import { policyFromFlags, printCsvCheck, refuseAppOnlyResetPassword } from './jobFlags';
import { decryptSecrets, newSecretsFilePath, passwordChoiceFromFlags } from './passwordFlags';
import {
  DEFAULT_MAX_USERS,
  UnknownJobError,
  checkCsv,
  controlJob,
  copyReport,
  exitCodeFor,
  failureMessage,
  formatProgress,
  formatSummary,
  jobState,
  startJob,
  writeReportFile,
} from './jobs';
import { readJobReport, renderReportView, reportView } from './reports';
import { renderHtmlReport } from '../jobs/htmlReport';
import { retryFailed } from './retry';
import { jobPaths } from '../jobs/jobFiles';
import { scheduleCreateCommand, scheduleDeleteCommand, scheduleListCommand } from './schedules';
import { type WatchResult, followJob, runWatch, watchCommand } from './watch';
import { listCommand } from './list';
import { startTracing, stopTracing } from '../temporal/tracing';

/**
 * Runs one command and answers its exit code: a failure is printed as what went wrong (no stack trace)
 * and answers 2. Traced, but for the worker, which traces under its own service name.
 */
export async function run(command: string, act: (actions: Actions) => Promise<number>): Promise<number> {
  if (command !== 'worker') startTracing('bulk-reset-cli');
  try {
    return await act(actions);
  } catch (error) {
    console.error(`bulk-reset: ${error instanceof UsageError ? error.message : failureMessage(error)}`);
    return 2;
  } finally {
    await stopTracing();
  }
}

/**
 * A `--json` answer: one JSON object, on one line of standard output, and nothing else there. Every
 * message of a command run with --json goes to standard error.
 */
function printJson(value: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

/** How a followed job ended, for a --json answer: its state, its summary or why it could not run, its exit code. */
function endedJson(result: WatchResult): Record<string, unknown> {
  return result.state === 'completed'
    ? { state: result.state, summary: result.summary, exitCode: result.exitCode }
    : { ...result };
}

async function start(csvPath: string, options: StartOptions): Promise<number> {
  if (options.approvalTimeout !== undefined && !options.requireApproval) {
    throw new UsageError('--approval-timeout goes with --require-approval');
  }
  const settings = loadSettings();
  const policy = policyFromFlags(options);
  refuseAppOnlyResetPassword(settings.credential, policy.method);
  const passwords = await passwordChoiceFromFlags(options, policy.method);
  for (const notice of passwords.notices) console.error(notice);
  const csv = await checkCsv(csvPath, 20, passwords.settings.mode === 'csv' ? 'require' : 'refuse');
  // On standard error: standard output holds the job id alone (or the --json answer), for a script.
  printCsvCheck(csv, 'the report', process.stderr);
  if (csv.runnableRows === 0) throw new UsageError('no row of this CSV can be reset; nothing was started');

  const client = await createClient(settings);
  const jobId = await startJob(client, settings.taskQueue, csv, {
    jobId: options.jobId,
    dataDir: settings.dataDir,
    startedBy: operatorIdentity(),
    planPath: options.plan,
    approvalTimeoutMs: options.requireApproval
      ? (options.approvalTimeout ?? parseDuration(DEFAULT_APPROVAL_TIMEOUT))
      : undefined,
    allowLarge: options.allowLarge,
    maxUsers: settings.maxUsers ?? DEFAULT_MAX_USERS,
    windowSize: options.window,
    policy: { ...policy, password: passwords.settings },
    secretsRecipient: passwords.recipientPem,
  });
  if (options.requireApproval) {
    console.error(`job ${jobId} waits for another operator to run: bulk-reset approve ${jobId}`);
  }
  if (options.json) {
    const started = {
      jobId,
      csv: {
        path: csv.path,
        sha256: csv.sha256,
        totalRows: csv.totalRows,
        runnableRows: csv.runnableRows,
        problemCount: csv.problemCount,
      },
      requiresApproval: options.requireApproval === true,
    };
    if (!options.wait) {
      printJson(started);
      return 0;
    }
    const result = await followJob(client, jobId, process.stderr);
    printJson({ ...started, ...endedJson(result) });
    return result.exitCode;
  }
  console.log(jobId);
  if (!options.wait) return 0;
  return watch(client, jobId);
}

async function watch(client: Client, jobId: string): Promise<number> {
  return runWatch(client, jobId, process.stderr);
}

async function status(jobId: string, options: StatusOptions): Promise<number> {
  const settings = loadSettings();
  const client = await createClient(settings);
  const current = await jobState(client, jobId);
  if (current.state === 'not-found') throw new UnknownJobError(jobId, settings.temporal.namespace);
  if (options.json) {
    console.log(JSON.stringify({ jobId, ...current }, null, 2));
  } else if (current.state === 'running') {
    console.log(formatProgress(current.progress));
  } else if (current.state === 'completed') {
    console.log(formatSummary(current.summary));
  } else {
    console.log(`job ${jobId} could not run: ${current.message}`);
  }
  if (current.state === 'completed') return exitCodeFor(current.summary);
  return current.state === 'running' ? 0 : 2;
}

async function report(jobId: string, options: ReportOptions): Promise<number> {
  const settings = loadSettings();
  const replace = options.force === true;
  const webUiUrl = options.webUi ?? settings.webUi;
  const statuses = options.status ?? [];
  if (options.format === 'html') {
    if (options.final || statuses.length > 0) {
      throw new UsageError(
        '--format html summarises the job itself; --final and --status go with --format csv or json',
      );
    }
    const page = renderHtmlReport(await readJobReport(settings.dataDir, jobId));
    console.log(await writeReportFile(options.out, page, { replace }));
    return 0;
  }
  if (!options.final && statuses.length === 0 && webUiUrl === undefined) {
    console.log(await copyReport(settings.dataDir, jobId, options.out, options.format, { replace }));
    return 0;
  }
  // A view: the final outcomes, some statuses, or links to the Web UI, built from the JSON reports.
  const view = await reportView(settings.dataDir, jobId, {
    final: options.final === true,
    statuses,
    webUi: webUiUrl === undefined ? undefined : { url: webUiUrl, namespace: settings.temporal.namespace },
  });
  for (const retryId of view.unfinished) {
    console.error(`retry ${retryId} has no report yet (still running?): its rows keep their earlier outcome`);
  }
  console.log(await writeReportFile(options.out, renderReportView(view, options.format), { replace }));
  return 0;
}

async function control(action: ControlAction, jobId: string, options: ControlOptions): Promise<number> {
  const settings = loadSettings();
  const client = await createClient(settings);
  // An approval approves exactly the rows shown here: the job refuses it if its rows are not these.
  const shown = action === 'approve' ? await approvalFacts(client, settings, jobId) : undefined;
  const progress = await controlJob(client, jobId, action, {
    by: operatorIdentity(),
    reason: options.reason,
    rowsSha256: shown,
  });
  if (options.json) printJson({ jobId, action, progress });
  else console.log(formatProgress(progress));
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

async function retry(jobId: string, options: RetryOptions): Promise<number> {
  const settings = loadSettings();
  const policy = policyFromFlags(options);
  const secretsFile =
    options.secretsFile === undefined ? undefined : await newSecretsFilePath(options.secretsFile);
  const client = await createClient(settings);
  // The original job's settings, with these flags on top (retrySettings).
  const retried = await retryFailed(client, settings, jobId, {
    allFailed: options.allFailed === true,
    windowSize: options.window,
    policy,
    secretsFile,
  });
  if (!retried) {
    console.error(
      `job ${jobId} has no ${options.allFailed ? 'failed' : 'retryable failed'} rows: nothing to retry`,
    );
    if (options.json) printJson({ retryOf: jobId, jobId: null, rows: 0 });
    return 0;
  }
  // The message on standard error: standard output holds the new job id alone (or the --json answer).
  console.error(`${retried.rows} rows of ${jobId} retried as:`);
  if (options.json) {
    const started = { retryOf: jobId, jobId: retried.jobId, rows: retried.rows };
    if (!options.wait) {
      printJson(started);
      return 0;
    }
    const result = await followJob(client, retried.jobId, process.stderr);
    printJson({ ...started, ...endedJson(result) });
    return result.exitCode;
  }
  console.log(retried.jobId);
  return options.wait ? watch(client, retried.jobId) : 0;
}

async function codecServer(options: CodecServerOptions): Promise<number> {
  const settings = loadSettings();
  const jwks = options.jwks ?? settings.codecServerJwt.jwks;
  const issuer = options.issuer ?? settings.codecServerJwt.issuer;
  const audience = options.audience ?? settings.codecServerJwt.audience;
  if ((issuer !== undefined || audience !== undefined) && jwks === undefined)
    throw new UsageError(
      '--issuer and --audience go with --jwks (the sign-in tokens are checked against its keys)',
    );
  if (jwks !== undefined && (issuer === undefined || audience === undefined))
    throw new UsageError(
      '--jwks needs --issuer and --audience: without them a token the identity provider issued for any other application would be accepted',
    );
  const uiOrigins = options.uiOrigin ?? ['http://localhost:8233'];
  const server = await startCodecServer({
    codec: new EncryptionCodec(await loadCodecKeys(settings.codecKeys)),
    allowedOrigins: uiOrigins,
    token: settings.codecServerToken,
    jwt: jwks === undefined ? undefined : { jwks, issuer: issuer as string, audience: audience as string },
    port: options.port,
    host: options.host,
  });
  const gate =
    jwks !== undefined
      ? `requests with a sign-in token from ${issuer}${settings.codecServerToken ? ' or the codec server token' : ''}`
      : settings.codecServerToken
        ? 'requests with the codec server token'
        : 'browser requests from the Web UI (no token: /encode is off)';
  console.log(`codec server at ${server.url}, answering ${uiOrigins.join(', ')}: ${gate}`);
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

async function codecKeyRotate(): Promise<number> {
  const settings = loadSettings();
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

async function signIn(): Promise<number> {
  const settings = loadSettings();
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

async function simulate(options: SimulateOptions): Promise<number> {
  const { startGraphSimulator } = await import('../simulator/graphSimulator.js');
  const simulator = await startGraphSimulator({
    port: options.port,
    host: options.host,
    publicBaseUrl: options.publicUrl,
    token: options.token,
    retryAfterSeconds: options.retryAfter,
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

async function worker(options: WorkerOptions): Promise<number> {
  const { runWorker } = await import('../worker/index.js');
  await runWorker(loadSettings(), { metrics: options.metrics });
  return 0;
}

async function demo(options: DemoOptions): Promise<number> {
  const { runDemo } = await import('./demo.js');
  return runDemo({ users: options.users, exitWhenDone: options.exit === true });
}

export const actions: Actions = {
  start,
  secretsDecrypt: decryptSecrets,
  plan: (csvPath, options) => runPlan(loadSettings(), csvPath, options),
  status,
  list: (options: ListOptions) => listCommand(loadSettings(), options),
  watch: (jobId) => watchCommand(loadSettings(), jobId),
  scheduleCreate: (csvPath, options: ScheduleCreateOptions) =>
    scheduleCreateCommand(loadSettings(), csvPath, options),
  scheduleList: () => scheduleListCommand(loadSettings()),
  scheduleDelete: (scheduleId, options: ScheduleDeleteOptions) =>
    scheduleDeleteCommand(loadSettings(), scheduleId, options),
  control,
  retry,
  report,
  worker,
  login: signIn,
  simulate,
  codecServer,
  codecKeyRotate,
  demo,
};
