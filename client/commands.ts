/**
 * Every command and flag of the bulk-reset CLI, declared once with commander. The parser, each command's
 * `--help`, the overview `bulk-reset help` prints and the README's CLI block (`bulk-reset help
 * --markdown`, checked by test/cliUsage.test.ts) all come from these declarations, so none can drift
 * from the others.
 *
 * A flag is checked as it is read: a value a flag does not allow, an unknown flag (with commander's "did
 * you mean"), a missing argument are refused here, with exit code 2, before anything connects to Temporal
 * or Graph. Declaring loads nothing heavy: what a command does is in ./actions, loaded only once its flags
 * have been read.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, type CommandUnknownOpts, InvalidArgumentError, Option } from '@commander-js/extra-typings';
import { JOB_ID_PATTERN } from '../jobs/jobFiles';
import { OUTCOME_STATUSES, type OutcomeStatus } from '../workflows/types';
import { addJobFlags, allowLargeOption, duration, wholeNumber } from './jobFlags';
import { addPasswordFlags } from './passwordFlags';
import { RESET_METHODS } from '../workflows/types';

export const DEFAULT_PLAN_CONCURRENCY = 8;
export const MAX_PLAN_CONCURRENCY = 64;
export const DEFAULT_APPROVAL_TIMEOUT = '24h';

/** An error the operator caused and can fix: printed without a stack trace, exit code 2. */
export class UsageError extends Error {}

/** Where the usage lines wrap, in the overview and the README. */
const USAGE_WIDTH = 100;

// ---------------------------------------------------------------------------------------------------------
// Option-argument parsers beyond the job flags'

function jobId(text: string): string {
  if (!JOB_ID_PATTERN.test(text)) {
    throw new InvalidArgumentError(
      "A job id is 1-128 letters, digits, '.', '_', ':' or '-', starting with a letter or digit.",
    );
  }
  return text;
}

const port = wholeNumber(0, 65_535);

/** `--status failed,unconfirmed --status cancelled`: repeatable, each a comma list of outcomes. */
function outcomeStatuses(text: string, previous: OutcomeStatus[] = []): OutcomeStatus[] {
  const statuses = text
    .split(',')
    .map((status) => status.trim().toLowerCase())
    .filter((status) => status !== '');
  const unknown = statuses.filter((status) => !(OUTCOME_STATUSES as readonly string[]).includes(status));
  if (statuses.length === 0 || unknown.length > 0) {
    throw new InvalidArgumentError(`An outcome is one of ${OUTCOME_STATUSES.join(', ')}.`);
  }
  return [...new Set([...previous, ...(statuses as OutcomeStatus[])])];
}

/** `--web-ui`: an http(s) address. */
function webUiAddress(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new InvalidArgumentError("It must be the Web UI's address, like http://localhost:8233.");
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new InvalidArgumentError('It must be an http:// or https:// address.');
  }
  return text;
}

function atLeastOne(text: string): number {
  const value = Number(text);
  if (text.trim() === '' || !Number.isSafeInteger(value) || value < 1) {
    throw new InvalidArgumentError('It must be a whole number of at least 1.');
  }
  return value;
}

function seconds(text: string): number {
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value) || value < 0) {
    throw new InvalidArgumentError('It must be a number of seconds, 0 or more (like 1 or 0.2).');
  }
  return value;
}

/** `--every`: a duration, kept as typed so `schedule list` shows it as the operator wrote it. */
function interval(text: string): string {
  duration(text);
  return text.trim();
}

// ---------------------------------------------------------------------------------------------------------
// The commands: each declared by a function, so its parsed options have a type the actions take

function startCommand() {
  const command = new Command('start')
    .description(
      'Check a CSV of users the way the worker will read it, list its bad rows, and start a bulk password ' +
        'reset of the rest. Prints the job id; a job id is used once.',
    )
    .argument('<users.csv>', 'the users: a userPrincipalName (or upn) column, or an id column (object ids)')
    .option('--wait', 'follow the job until it ends, then print its summary (exit code as for watch)')
    .option('--json', JSON_HELP)
    .addOption(
      new Option(
        '--job-id <id>',
        'a job id of your choosing, refused if any job had it (default: a new one)',
      ).argParser(jobId),
    );
  return addPasswordFlags(
    addJobFlags(command, 'policy')
      .addOption(allowLargeOption())
      .option('--plan <plan.json>', 'reset exactly the users this plan (bulk-reset plan) decided to reset')
      .option(
        '--require-approval',
        'prepare the job, then wait for another operator to run bulk-reset approve',
      )
      .addOption(
        new Option(
          '--approval-timeout <duration>',
          `with --require-approval: how long to wait before every row ends cancelled (default: ${DEFAULT_APPROVAL_TIMEOUT})`,
        ).argParser(duration),
      ),
  );
}

function secretsDecryptCommand() {
  return new Command('decrypt')
    .description(
      "The current password of every user in a secrets file, as CSV (row, user, password). An encrypted key's " +
        'passphrase comes from BULK_RESET_SECRETS_KEY_PASSPHRASE.',
    )
    .argument('<secrets-file>', 'the file the job wrote (--secrets-file)')
    .option('--key <private.pem>', 'the private key the passwords were encrypted to (--secrets-recipient)')
    .option('--out <file>', 'write a new file of mode 0600 instead of standard output');
}

function planCommand() {
  return new Command('plan')
    .description(
      "A dry run: look every runnable row's user up in Graph (exists, enabled, synced, admin roles, " +
        'protected) and write the plan, a decision per row. Nothing is written to Graph.',
    )
    .argument('<users.csv>', 'the CSV a job would read')
    .option('--out <plan.json>', 'where to write the plan (default: <csv name>.plan.json beside the CSV)')
    .addOption(
      new Option('--concurrency <n>', 'users looked up at the same time')
        .argParser(wholeNumber(1, MAX_PLAN_CONCURRENCY))
        .default(DEFAULT_PLAN_CONCURRENCY),
    )
    .addOption(
      new Option(
        '--method <method>',
        "the reset method the job will use: the token's permissions and the users it cannot reset are checked for it",
      )
        .choices(RESET_METHODS)
        .default('reset-password' as const),
    );
}

/** `--json` on every command that starts or changes a job: what a runbook parses. */
const JSON_HELP =
  'print one JSON object on standard output and nothing else there (messages go to standard error)';

function listCommand() {
  return new Command('list')
    .description(
      "Recent jobs of this task queue, newest first: id, state (the running job's phase, or how it ended), " +
        'who started it, when, and the counts by outcome.',
    )
    .addOption(
      new Option('--limit <n>', 'show at most this many jobs').argParser(wholeNumber(1, 1_000)).default(20),
    )
    .option('--json', 'machine-readable: one JSON object, {"jobs": [...]}');
}

function statusCommand() {
  return new Command('status')
    .description("A job's progress, or its summary once it ended (exit code as for watch).")
    .argument('<job>', 'the job id')
    .option('--json', 'machine-readable: the job state as JSON');
}

function watchCommand() {
  return new Command('watch')
    .description(
      'Follow a job until it ends: a live line on a terminal, a plain line every 5 s elsewhere; then the ' +
        'summary. Ctrl-C stops watching, not the job.',
    )
    .argument('<job>', 'the job id');
}

function scheduleCreateCommand() {
  const command = new Command('create')
    .description(
      'Run a job on a timer (a Temporal Schedule). Each run is its own job, named <NAME>-<time>. The CSV is ' +
        'pinned by its SHA-256: when the list of users changes, delete the schedule and create it again.',
    )
    .argument('<users.csv>', 'the CSV every run reads')
    .addOption(new Option('--id <name>', "the schedule's name, which names each run").makeOptionMandatory())
    .addOption(new Option('--every <duration>', 'run at this interval (or --cron)').argParser(interval))
    .addOption(
      new Option(
        '--cron <expression>',
        'run at these times: five cron fields, UTC, like "0 3 * * 0" (or --every)',
      ),
    )
    .option('--json', JSON_HELP);
  return addJobFlags(command, 'policy').addOption(allowLargeOption());
}

function scheduleListCommand() {
  return new Command('list').description(
    "Each schedule's timing, CSV, next runs and recent runs (by job id).",
  );
}

function scheduleDeleteCommand() {
  return new Command('delete')
    .description('End a schedule; runs already going finish.')
    .argument('<name>', "the schedule's --id")
    .option('--json', JSON_HELP);
}

const CONTROLS = {
  pause: 'Pause a job: it starts no new users; those in flight finish.',
  resume: 'Resume a paused job.',
  cancel:
    'Cancel a job: users in flight are cancelled (a reset already sent is never abandoned half-way), every ' +
    'row not started ends cancelled; the report is written as usual.',
  approve:
    'Approve a job started with --require-approval, as an operator other than the one who started it. ' +
    'Shows what is approved first; the approval is pinned to those rows.',
} as const;
export type ControlAction = keyof typeof CONTROLS;

function controlCommand(action: ControlAction) {
  return new Command(action)
    .description(CONTROLS[action])
    .argument('<job>', 'the job id')
    .option('--reason <text>', 'why, recorded with who did it')
    .option('--json', JSON_HELP);
}

function retryCommand() {
  const command = new Command('retry')
    .description(
      "Start a new job with a finished job's failed rows that may pass now (429s, outages, timeouts), as the " +
        'job ran (its window, waits, deadline, password mode); the job flags given change just what they name.',
    )
    .argument('<job>', 'the finished job')
    .option('--all-failed', 'retry every failed row, refusals (403, 404, password policy) too')
    .option('--wait', 'follow the retry until it ends, then print its summary')
    .option('--json', JSON_HELP)
    .option('--secrets-file <file>', 'a new secrets file, for a job that kept its passwords in one');
  return (
    addJobFlags(command, 'retried job')
      // Accepted as it always was; a retry is part of a job that passed the blast-radius check.
      .addOption(allowLargeOption().hideHelp())
  );
}

function reportCommand() {
  return new Command('report')
    .description(
      "Copy a job's report to a new file of mode 0600 (one row per CSV row: outcome, short reason, hint, " +
        "retryable, the user's workflow id, Graph's codes).",
    )
    .argument('<job>', 'the job id')
    .addOption(new Option('--out <file>', 'where to copy it').makeOptionMandatory())
    .addOption(
      new Option(
        '--format <format>',
        'the report to copy; html: a one-page summary for an incident ticket (counts, failures by cause, a chart, audit facts; names no user)',
      )
        .choices(['csv', 'json', 'html'] as const)
        .default('csv'),
    )
    .option('--force', 'replace an existing file (a symbolic link is refused, never followed)')
    .option('--final', "each user's last outcome across the job and its retries (one row per original row)")
    .option(
      '--status <outcomes>',
      'only rows with these outcomes: a comma list, repeatable (succeeded, failed, unconfirmed, skipped, cancelled)',
      outcomeStatuses,
    )
    .option(
      '--web-ui <url>',
      "link each row to its user's workflow in this Temporal Web UI (default: BULK_RESET_WEB_UI)",
      webUiAddress,
    );
}

function workerCommand() {
  return new Command('worker')
    .description('Run a worker: it runs the jobs, until SIGINT or SIGTERM, then drains.')
    .option(
      '--metrics <host:port>',
      'serve Prometheus metrics here, or a port (default: BULK_RESET_METRICS)',
    );
}

function loginCommand() {
  return new Command('login').description(
    "Sign in as the operator (device code), so workers using this data folder's auth/ can refresh tokens.",
  );
}

function simulateCommand() {
  return new Command('simulate')
    .description(
      "A Graph stand-in for rehearsals. A user's scenario is the first label of its name: " +
        '<scenario>.<anything>@domain, e.g. slow.alice@contoso.test (README: The Graph simulator).',
    )
    .addOption(
      new Option('--port <port>', 'port to listen on (0: any free one)').argParser(port).default(8080),
    )
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option(
      '--public-url <url>',
      'the base URL callers use, for the Location headers (default: the Host they used)',
    )
    .addOption(
      new Option('--token <token>', 'the bearer token it accepts')
        .env('GRAPH_TOKEN')
        .default('simulator-token'),
    )
    .addOption(
      new Option('--retry-after <seconds>', 'the Retry-After it sends when it throttles')
        .argParser(seconds)
        .default(1),
    );
}

function codecServerCommand() {
  return new Command('codec-server')
    .description(
      "Let Temporal's Web UI decode this project's payloads. Answers only the --ui-origin browsers, or " +
        'callers holding BULK_RESET_CODEC_SERVER_TOKEN or a sign-in token checked against --jwks.',
    )
    .addOption(
      new Option('--port <port>', 'port to listen on (0: any free one)').argParser(port).default(8888),
    )
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--ui-origin <origin...>', 'the Web UI origins it answers (default: http://localhost:8233)')
    .option('--jwks <file|url>', "the identity provider's keys (default: BULK_RESET_CODEC_SERVER_JWKS)")
    .option('--issuer <url>', "the sign-in tokens' issuer (default: BULK_RESET_CODEC_SERVER_ISSUER)")
    .option('--audience <id>', "the sign-in tokens' audience (default: BULK_RESET_CODEC_SERVER_AUDIENCE)");
}

function codecKeyRotateCommand() {
  return new Command('rotate').description(
    'Seal new payloads with a new key; older keys stay in the key file to open older payloads.',
  );
}

function demoCommand() {
  return new Command('demo')
    .description(
      'Everything on this machine: a Temporal dev server with its Web UI, the Graph simulator and a worker, ' +
        'then a real bulk reset of sample users with every kind of trouble Graph can give.',
    )
    .addOption(new Option('--users <n>', 'how many sample users').argParser(atLeastOne).default(300))
    .option('--exit', 'stop at the end instead of leaving the Web UI up until Ctrl-C');
}

type OptionsOf<C extends { opts(): unknown }> = ReturnType<C['opts']>;
export type StartOptions = OptionsOf<ReturnType<typeof startCommand>>;
export type SecretsDecryptOptions = OptionsOf<ReturnType<typeof secretsDecryptCommand>>;
export type PlanOptions = OptionsOf<ReturnType<typeof planCommand>>;
export type StatusOptions = OptionsOf<ReturnType<typeof statusCommand>>;
export type ListOptions = OptionsOf<ReturnType<typeof listCommand>>;
export type ScheduleDeleteOptions = OptionsOf<ReturnType<typeof scheduleDeleteCommand>>;
export type ScheduleCreateOptions = OptionsOf<ReturnType<typeof scheduleCreateCommand>>;
export type ControlOptions = OptionsOf<ReturnType<typeof controlCommand>>;
export type RetryOptions = OptionsOf<ReturnType<typeof retryCommand>>;
export type ReportOptions = OptionsOf<ReturnType<typeof reportCommand>>;
export type WorkerOptions = OptionsOf<ReturnType<typeof workerCommand>>;
export type SimulateOptions = OptionsOf<ReturnType<typeof simulateCommand>>;
export type CodecServerOptions = OptionsOf<ReturnType<typeof codecServerCommand>>;
export type DemoOptions = OptionsOf<ReturnType<typeof demoCommand>>;

/** What each command does once its flags are read; each answers the process's exit code. */
export interface Actions {
  start(csvPath: string, options: StartOptions): Promise<number>;
  secretsDecrypt(secretsPath: string, options: SecretsDecryptOptions): Promise<number>;
  plan(csvPath: string, options: PlanOptions): Promise<number>;
  status(jobId: string, options: StatusOptions): Promise<number>;
  list(options: ListOptions): Promise<number>;
  watch(jobId: string): Promise<number>;
  scheduleCreate(csvPath: string, options: ScheduleCreateOptions): Promise<number>;
  scheduleList(): Promise<number>;
  scheduleDelete(scheduleId: string, options: ScheduleDeleteOptions): Promise<number>;
  control(action: ControlAction, jobId: string, options: ControlOptions): Promise<number>;
  retry(jobId: string, options: RetryOptions): Promise<number>;
  report(jobId: string, options: ReportOptions): Promise<number>;
  worker(options: WorkerOptions): Promise<number>;
  login(): Promise<number>;
  simulate(options: SimulateOptions): Promise<number>;
  codecServer(options: CodecServerOptions): Promise<number>;
  codecKeyRotate(): Promise<number>;
  demo(options: DemoOptions): Promise<number>;
}

/**
 * Runs one command's action: `command` names it (`schedule create`), `act` calls it on the actions. The
 * CLI loads the actions, runs the command and keeps the exit code it answers.
 */
export type Perform = (command: string, act: (actions: Actions) => Promise<number>) => Promise<void>;

// ---------------------------------------------------------------------------------------------------------
// The program

/** The version in package.json: `bulk-reset --version`. */
function packageVersion(): string {
  const text = readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8');
  return (JSON.parse(text) as { version: string }).version;
}

/** A command that only groups others (`schedule create|list|delete`). */
function group(name: string, description: string, children: CommandUnknownOpts[]): CommandUnknownOpts {
  const parent = new Command(name).description(description).helpCommand(false);
  for (const child of children) parent.addCommand(child);
  return parent;
}

/**
 * The bulk-reset program, every command wired to `perform`. Parsing errors and `--help` throw commander's
 * CommanderError (exitCode 0 for help and version) instead of ending the process: the CLI decides.
 */
export function bulkResetProgram(perform: Perform): CommandUnknownOpts {
  const program = new Command('bulk-reset')
    .description('Durable bulk password resets for Microsoft Entra ID, on Temporal.')
    .version(packageVersion(), '-V, --version', 'print the version')
    .helpCommand(false);
  const commands: CommandUnknownOpts[] = [
    startCommand().action((csv, options) => perform('start', (run) => run.start(csv, options))),
    group('secrets', "Read a job's secrets file (the new passwords it kept).", [
      secretsDecryptCommand().action((file, options) =>
        perform('secrets decrypt', (run) => run.secretsDecrypt(file, options)),
      ),
    ]),
    planCommand().action((csv, options) => perform('plan', (run) => run.plan(csv, options))),
    statusCommand().action((job, options) => perform('status', (run) => run.status(job, options))),
    listCommand().action((options) => perform('list', (run) => run.list(options))),
    watchCommand().action((job) => perform('watch', (run) => run.watch(job))),
    group('schedule', 'Bulk resets on a timer, through Temporal Schedules.', [
      scheduleCreateCommand().action((csv, options) =>
        perform('schedule create', (run) => run.scheduleCreate(csv, options)),
      ),
      scheduleListCommand().action(() => perform('schedule list', (run) => run.scheduleList())),
      scheduleDeleteCommand().action((name, options) =>
        perform('schedule delete', (run) => run.scheduleDelete(name, options)),
      ),
    ]),
    ...(Object.keys(CONTROLS) as ControlAction[]).map((action) =>
      controlCommand(action).action((job, options) =>
        perform(action, (run) => run.control(action, job, options)),
      ),
    ),
    retryCommand().action((job, options) => perform('retry', (run) => run.retry(job, options))),
    reportCommand().action((job, options) => perform('report', (run) => run.report(job, options))),
    workerCommand().action((options) => perform('worker', (run) => run.worker(options))),
    loginCommand().action(() => perform('login', (run) => run.login())),
    simulateCommand().action((options) => perform('simulate', (run) => run.simulate(options))),
    codecServerCommand().action((options) => perform('codec-server', (run) => run.codecServer(options))),
    group('codec-key', "The payload codec's keys.", [
      codecKeyRotateCommand().action(() => perform('codec-key rotate', (run) => run.codecKeyRotate())),
    ]),
    demoCommand().action((options) => perform('demo', (run) => run.demo(options))),
  ];
  for (const command of commands) program.addCommand(command);
  program.addCommand(helpCommand(program));
  program.hook('preSubcommand', async (_program, command) => {
    if (command.name() === 'simulate') await addScenarioHelp(command);
  });
  program.configureHelp({ formatHelp: () => overview(program) });
  for (const command of allCommands(program)) {
    command
      .exitOverride()
      .showSuggestionAfterError(true)
      .showHelpAfterError(
        command === program
          ? '(bulk-reset help lists the commands)'
          : `(bulk-reset ${commandPath(command)} --help lists its arguments and flags)`,
      );
  }
  return program;
}

/** `bulk-reset help [command...] [--markdown]`. */
function helpCommand(program: CommandUnknownOpts) {
  return new Command('help')
    .description('The commands and their flags at a glance; with a command, its own help.')
    .argument('[command...]', 'a command, like start or schedule create')
    .option('--markdown', "print the README's CLI block, generated from these declarations")
    .action(async (names, options) => {
      if (options.markdown) {
        process.stdout.write(usageMarkdown(program));
        return;
      }
      let target = program;
      for (const name of names) {
        const found = target.commands.find((command) => command.name() === name);
        if (!found)
          throw new UsageError(`there is no command "${names.join(' ')}": bulk-reset help lists them`);
        target = found;
      }
      if (target.name() === 'simulate') await addScenarioHelp(target);
      target.outputHelp();
    });
}

const scenarioHelpAdded = new WeakSet<CommandUnknownOpts>();

/** The simulator's scenarios, in `simulate --help`: loaded only when the simulate command is asked for. */
async function addScenarioHelp(simulate: CommandUnknownOpts): Promise<void> {
  if (scenarioHelpAdded.has(simulate)) return;
  scenarioHelpAdded.add(simulate);
  const { COUNTED_SCENARIOS, SCENARIOS } = await import('../simulator/graphSimulator.js');
  simulate.addHelpText(
    'after',
    [
      '',
      `Scenarios: ${SCENARIOS.join(', ')}.`,
      `${COUNTED_SCENARIOS.join(', ')} take a count of polls or "all": pollmissing3.bob@contoso.test.`,
      'Each is described in README.md (The Graph simulator).',
    ].join('\n'),
  );
}

// ---------------------------------------------------------------------------------------------------------
// Usage text, generated from the declarations

function allCommands(command: CommandUnknownOpts): CommandUnknownOpts[] {
  return [command, ...command.commands.flatMap(allCommands)];
}

/** `schedule create`: the command's words after `bulk-reset`. */
function commandPath(command: CommandUnknownOpts): string {
  const names: string[] = [];
  for (let current: CommandUnknownOpts | null = command; current?.parent; current = current.parent) {
    names.unshift(current.name());
  }
  return names.join(' ');
}

/** One usage entry per command that runs (not per group), wrapped at USAGE_WIDTH. */
export function usageLines(program: CommandUnknownOpts): string[] {
  const lines: string[] = [];
  for (const command of allCommands(program)) {
    if (command === program || command.commands.length > 0) continue;
    const head = [
      `bulk-reset ${commandPath(command)}`,
      ...command.registeredArguments.map((argument) => {
        const name = `${argument.name()}${argument.variadic ? '...' : ''}`;
        return argument.required ? `<${name}>` : `[${name}]`;
      }),
    ].join(' ');
    const indent = ' '.repeat(`bulk-reset ${commandPath(command)} `.length);
    const flags = command.options
      .filter((option) => !option.hidden)
      .map((option) => {
        const text = option.argChoices ? `${option.long} ${option.argChoices.join('|')}` : option.flags;
        return option.mandatory ? text : `[${text}]`;
      });
    let line = head;
    for (const flag of flags) {
      if (line.length + 1 + flag.length > USAGE_WIDTH && line.trim() !== '') {
        lines.push(line);
        line = indent + flag;
      } else {
        line = `${line} ${flag}`;
      }
    }
    lines.push(line);
  }
  return lines;
}

/** README's CLI block: the usage lines in a fenced code block. */
export function usageMarkdown(program: CommandUnknownOpts): string {
  return ['```', ...usageLines(program), '```', ''].join('\n');
}

/** What `bulk-reset help` (and `--help`) prints: every command's usage, then where settings come from. */
function overview(program: CommandUnknownOpts): string {
  return [
    `bulk-reset ${program.version() ?? ''}: durable bulk password resets for Microsoft Entra ID, on Temporal`,
    '',
    'Usage:',
    ...usageLines(program).map((line) => `  ${line}`),
    '',
    'bulk-reset <command> --help says what a command and each of its flags do.',
    '',
    'Settings come from the environment (see README): TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE,',
    'TEMPORAL_API_KEY / TEMPORAL_TLS_*, BULK_RESET_TASK_QUEUE, BULK_RESET_DATA_DIR, GRAPH_BASE_URL,',
    "AZURE_TENANT_ID, AZURE_CLIENT_ID, GRAPH_TOKEN (simulator only), BULK_RESET_METRICS (worker's",
    'Prometheus endpoint), OTEL_EXPORTER_OTLP_ENDPOINT (OpenTelemetry traces).',
    '',
    'Exit codes: 0 every user succeeded (or was skipped), 1 some users failed, are unconfirmed or were',
    'cancelled, 2 the job could not run, there is no such job (or, to pause, resume, cancel or approve,',
    'it has finished), or the command was wrong. --json: one JSON object on standard output (README).',
    '',
  ].join('\n');
}
