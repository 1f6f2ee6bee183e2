/**
 * The CLI as an operator first meets it, each in its own process: every command explains itself with
 * `--help`, `--version` names the release, a mistake is refused with exit code 2 before anything is read
 * or connected (naming the flag and what it allows, or suggesting what was meant), and the README's CLI
 * block is the usage generated from the same declarations as the parser.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../temporal/devServer';
import { runCli } from './support/harness';

/** Every command the README promises, by the words an operator types. */
const COMMANDS = [
  'start',
  'secrets decrypt',
  'plan',
  'status',
  'watch',
  'schedule create',
  'schedule list',
  'schedule delete',
  'pause',
  'resume',
  'cancel',
  'approve',
  'retry',
  'report',
  'worker',
  'login',
  'simulate',
  'codec-server',
  'codec-key rotate',
  'demo',
  'help',
];

let scratch: string;
let csvPath: string;
/** Nothing listens at TEMPORAL_ADDRESS: a command that got as far as connecting would say so. */
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'bulk-reset-cli-usage-'));
  csvPath = join(scratch, 'users.csv');
  await writeFile(csvPath, 'userPrincipalName\nok.alice@contoso.test\n');
  env = {
    PATH: process.env.PATH,
    HOME: scratch,
    BULK_RESET_DATA_DIR: join(scratch, 'data'),
    TEMPORAL_ADDRESS: '127.0.0.1:1',
  };
});

afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

test.each(COMMANDS)('bulk-reset %s --help explains the command and exits 0', async (command) => {
  const result = await runCli(env, ...command.split(' '), '--help');
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  expect(result.stdout).toContain(`Usage: bulk-reset ${command} `);
  expect(result.stdout).toContain('-h, --help');
});

test('help with a command shows that command, help alone lists every command', async () => {
  const one = await runCli(env, 'help', 'schedule', 'create');
  expect(one.code).toBe(0);
  expect(one.stdout).toContain('Usage: bulk-reset schedule create [options] <users.csv>');
  const all = await runCli(env, 'help');
  expect(all.code).toBe(0);
  for (const command of COMMANDS) expect(all.stdout).toContain(`bulk-reset ${command}`);
  expect(all.stdout).toContain('Exit codes:');
});

test('--version prints the version in package.json', async () => {
  const { version } = JSON.parse(await readFile(join(PROJECT_ROOT, 'package.json'), 'utf8')) as {
    version: string;
  };
  for (const flag of ['--version', '-V']) {
    const result = await runCli(env, flag);
    expect(result.code).toBe(0);
    expect(result.stdout.trim()).toBe(version);
  }
});

test('no command at all shows the usage and exits 2', async () => {
  const result = await runCli(env);
  expect(result.code).toBe(2);
  expect(`${result.stdout}${result.stderr}`).toContain('bulk-reset start <users.csv>');
});

test("README's CLI block is the usage generated from the parser's declarations (npm run usage prints it)", async () => {
  const generated = await runCli(env, 'help', '--markdown');
  expect(generated.code).toBe(0);
  const readme = await readFile(join(PROJECT_ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('\n## The CLI\n'));
  const block = /```\n[\s\S]*?\n```\n/.exec(section)?.[0];
  // On a difference: `npm run build && npm run usage`, and put its output in README's "The CLI".
  expect(block).toBe(generated.stdout);
});

/** [arguments, what stderr must name, what it must say is allowed or meant] */
const MISTAKES: [string[], string, string][] = [
  [['strat', 'users.csv'], "unknown command 'strat'", 'Did you mean start?'],
  [['start', 'users.csv', '--windw', '5'], "unknown option '--windw'", 'Did you mean --window?'],
  [['start', 'users.csv', '--window', '0'], "'--window <n>'", 'a whole number from 1 to 1000'],
  [['start', 'users.csv', '--deadline', '15x'], "'--deadline <duration>'", '"15x" is not a duration'],
  [
    ['start', 'users.csv', '--min-wait', '-1s'],
    "'--min-wait <duration>'",
    'is not a duration of 1ms or more',
  ],
  [['start', 'users.csv', '--password', 'random'], "'--password <mode>'", 'graph, generated, csv'],
  [
    ['start', 'users.csv', '--password', 'generated', '--password-length', '12'],
    "'--password-length <n>'",
    'a whole number from 16 to 256',
  ],
  [
    ['start', 'users.csv', '--job-id', 'no/slash'],
    "'--job-id <id>'",
    "letters, digits, '.', '_', ':' or '-'",
  ],
  [
    ['start', 'users.csv', '--require-approval', '--approval-timeout', 'soon'],
    "'--approval-timeout <duration>'",
    '"soon" is not a duration',
  ],
  [['start', 'users.csv', '--approval-timeout', '2h'], '--approval-timeout', 'goes with --require-approval'],
  [['start', 'users.csv', '--min-wait', '5s', '--max-wait', '1s'], '--min-wait', 'longer than --max-wait'],
  [['retry', 'reset-x', '--deadline', '0'], "'--deadline <duration>'", 'is not a duration of 1ms or more'],
  [
    ['schedule', 'create', 'users.csv', '--id', 'nightly', '--every', '1h', '--window', '5000'],
    "'--window <n>'",
    'a whole number from 1 to 1000',
  ],
  [['schedule', 'create', 'users.csv', '--every', '1h'], "required option '--id <name>'", 'not specified'],
  [['plan', 'users.csv', '--concurrency', '100'], "'--concurrency <n>'", 'a whole number from 1 to 64'],
  [['report', 'reset-x', '--out', 'x.csv', '--format', 'xml'], "'--format <format>'", 'csv, json'],
  [
    ['report', 'reset-x', '--out', 'x.csv', '--status', 'failed,done'],
    "'--status <outcomes>'",
    'one of succeeded, failed, unconfirmed, skipped, cancelled',
  ],
  [
    ['report', 'reset-x', '--out', 'x.csv', '--web-ui', 'ftp://ui'],
    "'--web-ui <url>'",
    'http:// or https://',
  ],
  [['status', 'reset-x', 'reset-y'], "too many arguments for 'status'", 'Expected 1 argument'],
];

test.each(MISTAKES)(
  'bulk-reset %j is refused with exit 2 before anything is read or connected',
  async (args, names, allowed) => {
    const result = await runCli(env, ...args.map((arg) => (arg === 'users.csv' ? csvPath : arg)));
    expect(result.stderr).toContain(names);
    expect(result.stderr).toContain(allowed);
    expect(result.code).toBe(2);
    // Neither the CSV's summary nor a connection attempt: the flag was refused first.
    expect(result.stdout).toBe('');
    expect(result.stderr).not.toContain('cannot connect to Temporal');
  },
);
