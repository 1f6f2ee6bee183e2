/**
 * `bulk-reset watch` as an operator sees it: in a real pseudo-terminal (util-linux `script`), and in a
 * log, against the dev server, a worker and the Graph simulator.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PROJECT_ROOT } from '../temporal/devServer';
import { formatSummary, jobState } from '../client/jobs';
import { type Stage, useStage } from './support/harness';
import { startStageJob, writeCheckedCsv } from './support/jobs';
import { oneScenarioCsv } from './support/users';

const run = promisify(execFile);
const CLI = join(PROJECT_ROOT, 'dist', 'client', 'cli.js');

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

async function runProcess(file: string, args: string[], env: NodeJS.ProcessEnv): Promise<Ran> {
  try {
    const { stdout, stderr } = await run(file, args, { env, maxBuffer: 16 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: failed.code ?? -1, stdout: failed.stdout ?? '', stderr: failed.stderr ?? '' };
  }
}

const shellQuote = (word: string): string => `'${word.replaceAll("'", `'\\''`)}'`;

/** The CLI in a pseudo-terminal: stdout and stderr are the terminal, as in an operator's shell. */
function cliInTerminal(stage: Stage, ...args: string[]): Promise<Ran> {
  const command = [process.execPath, CLI, ...args].map(shellQuote).join(' ');
  // A terminal that can erase lines, and a UTF-8 locale: the bar is drawn in blocks.
  const env = { ...stage.env, TERM: 'xterm-256color', LC_ALL: 'C.UTF-8' };
  return runProcess('script', ['-qfec', command, '/dev/null'], env);
}

function cli(stage: Stage, ...args: string[]): Promise<Ran> {
  return runProcess(process.execPath, [CLI, ...args], stage.env);
}

describe('bulk-reset watch', () => {
  beforeAll(async () => {
    const script = await runProcess('sh', ['-c', 'command -v script'], process.env);
    if (script.code !== 0)
      throw new Error('these tests need util-linux `script` (Debian: bsdutils) for a terminal');
  });

  const stage = useStage({ retryAfterSeconds: 0.2 });

  test('on a terminal it redraws one line with a bar, rate and ETA, then prints the summary; in a log, plain lines', async () => {
    const csv = await writeCheckedCsv(stage, 'users.csv', oneScenarioCsv(40, 'ok').text);
    // A small window and a floor on each wait, so the job runs for several seconds and the rate can be seen.
    const jobId = await startStageJob(stage, csv, {
      windowSize: 3,
      policy: { minWaitMs: 600, defaultWaitMs: 600 },
    });

    const [terminal, log] = await Promise.all([
      cliInTerminal(stage, 'watch', jobId),
      cli(stage, 'watch', jobId),
    ]);

    const final = await jobState(stage.client, jobId);
    expect(final.state).toBe('completed');
    if (final.state !== 'completed') return;
    expect(final.summary.counts.succeeded).toBe(40);
    const summary = formatSummary(final.summary);

    // Every user succeeded: exit code 0, through the terminal as well.
    expect(terminal.code).toBe(0);
    const screen = terminal.stdout;
    const redraws = screen.split('\r\x1b[2K').slice(1);
    expect(redraws.length).toBeGreaterThanOrEqual(3);
    for (const redraw of redraws) expect(redraw).toMatch(/^\[[a-z-]+\] [█░]{24} (\d+|--)%/);
    expect(
      redraws.some((redraw) => /^\[running\] [█░]{24} \d+% \d+\/40 · ETA \d+:\d\d · \d/.test(redraw)),
    ).toBe(true);
    expect(screen).toContain(`\r\x1b[2K[done] ${'█'.repeat(24)} 100% 40/40 · ETA 0:00`);
    // The terminal turns each \n into \r\n.
    expect(screen.replaceAll('\r\n', '\n').trimEnd().endsWith(summary)).toBe(true);

    expect(log.code).toBe(0);
    expect(log.stdout.trimEnd()).toBe(summary);
    expect(log.stderr).not.toContain('\r');
    expect(log.stderr).not.toContain('\x1b');
    expect(log.stderr).toMatch(/^\[[a-z-]+\] (\d+|--)% \d+\/(40|\?) · ETA /m);
  });

  test('a job that does not exist ends the watch with exit code 2', async () => {
    const result = await cli(stage, 'watch', 'reset-no-such-job');
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('there is no job reset-no-such-job in namespace default');
  });
});
