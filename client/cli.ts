#!/usr/bin/env -S node --max-semi-space-size=8 --heap-growing-percent=50
/**
 * bulk-reset: start, watch and report on bulk password resets; run a worker, the Graph simulator,
 * the operator sign-in, or the local demo.
 *
 * The commands and flags are declared in ./commands (commander); what each does is in ./actions, loaded
 * once the flags have been read. Exit codes: 0 and 1 from the command (see README), 2 for a command that
 * was wrong or could not run.
 */
import { CommanderError } from '@commander-js/extra-typings';
import { UsageError, bulkResetProgram } from './commands';

async function main(argv: string[]): Promise<number> {
  let exitCode = 0;
  const program = bulkResetProgram(async (command, act) => {
    const { run } = await import('./actions.js');
    exitCode = await run(command, act);
  });
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (error) {
    // Commander has printed what was wrong (with "did you mean"), or the help or version asked for.
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
    if (error instanceof UsageError) {
      console.error(`bulk-reset: ${error.message}`);
      return 2;
    }
    throw error;
  }
  return exitCode;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(`bulk-reset: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 2;
  },
);
