/**
 * What `start`, `retry` and `schedule create` share: the job flags, declared once with what each
 * allows, the policy they set, and the operator-facing summary of the CSV printed before anything runs.
 */
import { type Command, InvalidArgumentError, Option, type OptionValues } from '@commander-js/extra-typings';
import {
  DEFAULT_MAX_SIGN_IN_HOLD_MS,
  DEFAULT_RESET_POLICY,
  RESET_METHODS,
  type ResetMethod,
  type ResetPolicy,
} from '../workflows/types';
import { type CredentialConfig, isAppOnlyConfig } from '../graph/credentials';
import { formatDuration, parseDuration } from './durations';
import type { CsvCheck } from './jobs';

export const DEFAULT_WINDOW_SIZE = 100;
/** Far below Temporal's 2,000 pending children per workflow. */
export const MAX_WINDOW_SIZE = 1_000;
/** Default blast-radius limit: a larger job must be asked for explicitly. */
export const DEFAULT_MAX_USERS = 5_000;

/** A commander option-argument parser: the value, or InvalidArgumentError saying what is allowed. */
export function wholeNumber(min: number, max: number): (text: string) => number {
  return (text) => {
    const value = Number(text);
    if (text.trim() === '' || !Number.isInteger(value) || value < min || value > max) {
      throw new InvalidArgumentError(`It must be a whole number from ${min} to ${max}.`);
    }
    return value;
  };
}

/** A commander option-argument parser for durations (milliseconds); see parseDuration. */
export function duration(text: string): number {
  try {
    return parseDuration(text);
  } catch (error) {
    throw new InvalidArgumentError(`${(error as Error).message}.`);
  }
}

/**
 * The flags that shape a job, on `command`; their values come out parsed (numbers, milliseconds).
 * `defaults` says what an absent flag means: the usual job's settings, or those of the job retried.
 */
export function addJobFlags<Args extends unknown[], Opts extends OptionValues>(
  command: Command<Args, Opts>,
  defaults: 'policy' | 'retried job',
) {
  const fallback = (value: number | string): string =>
    defaults === 'policy'
      ? `(default: ${typeof value === 'number' ? formatDuration(value) : value})`
      : "(default: the retried job's)";
  const policy = DEFAULT_RESET_POLICY;
  return command
    .addOption(
      new Option(
        '--window <n>',
        `users reset at the same time ${fallback(DEFAULT_WINDOW_SIZE.toString())}`,
      ).argParser(wholeNumber(1, MAX_WINDOW_SIZE)),
    )
    .addOption(
      new Option(
        '--deadline <duration>',
        `how long each user may take before it ends failed or unconfirmed ${fallback(policy.deadlineMs)}`,
      ).argParser(duration),
    )
    .addOption(
      new Option(
        '--min-wait <duration>',
        `shortest wait before Graph is asked again ${fallback(policy.minWaitMs)}`,
      ).argParser(duration),
    )
    .addOption(
      new Option(
        '--max-wait <duration>',
        `longest wait before Graph is asked again, whatever Retry-After says ${fallback(policy.maxWaitMs)}`,
      ).argParser(duration),
    )
    .addOption(
      new Option(
        '--default-wait <duration>',
        `wait when Graph names none, doubled each time up to --max-wait ${fallback(policy.defaultWaitMs)}`,
      ).argParser(duration),
    )
    .addOption(
      new Option(
        '--sign-in-hold <duration>',
        `longest a user waits in all for the operator's sign-in to work again ${fallback(DEFAULT_MAX_SIGN_IN_HOLD_MS)}`,
      ).argParser(duration),
    )
    .addOption(
      new Option('--revoke-sessions', "revoke each user's sign-in sessions once the reset is confirmed"),
    )
    .addOption(
      new Option(
        '--confirm-compromised',
        'mark every user whose reset succeeded as compromised in Identity Protection (Entra ID P2), in batches',
      ),
    )
    .addOption(
      new Option(
        '--method <method>',
        `how the password is changed: resetPassword, or a passwordProfile PATCH (app-only allowed) ${fallback('reset-password')}`,
      ).choices(RESET_METHODS),
    )
    .addOption(
      new Option(
        '--force-change',
        'with --method password-profile: the user must choose a new password at next sign-in (the default)',
      ),
    )
    .addOption(new Option('--no-force-change', 'with --method password-profile: no change at next sign-in'))
    .addOption(
      new Option(
        '--force-change-with-mfa',
        'with --method password-profile: the user passes MFA before choosing the new password',
      ),
    );
}

/** `--allow-large`: the blast-radius limit is lifted only when the operator says so. */
export function allowLargeOption() {
  return new Option(
    '--allow-large',
    `allow more users to reset than BULK_RESET_MAX_USERS (${DEFAULT_MAX_USERS.toLocaleString('en')} unless set)`,
  );
}

export interface JobFlagValues {
  window?: number;
  deadline?: number;
  minWait?: number;
  maxWait?: number;
  defaultWait?: number;
  signInHold?: number;
  revokeSessions?: boolean;
  confirmCompromised?: boolean;
  method?: ResetMethod;
  forceChange?: boolean;
  forceChangeWithMfa?: boolean;
}

/** The policy the flags set; only what they name, so a retry keeps the rest of its job's settings. */
export function policyFromFlags(values: JobFlagValues): Partial<ResetPolicy> {
  if (values.minWait !== undefined && values.maxWait !== undefined && values.minWait > values.maxWait) {
    throw new Error('--min-wait is longer than --max-wait: the shortest wait must not exceed the longest');
  }
  const forceFlags = values.forceChange !== undefined || values.forceChangeWithMfa === true;
  if (forceFlags && values.method === 'reset-password') {
    throw new Error(
      '--force-change, --no-force-change and --force-change-with-mfa go with --method password-profile (resetPassword always makes the user change the password at next sign-in)',
    );
  }
  if (values.forceChangeWithMfa && values.forceChange === false) {
    throw new Error(
      '--force-change-with-mfa is a change at next sign-in: it does not go with --no-force-change',
    );
  }
  const profile = values.method === 'password-profile';
  return {
    ...(values.method !== undefined && { method: values.method }),
    ...((profile || values.forceChange !== undefined) && { forceChange: values.forceChange ?? true }),
    ...(values.forceChangeWithMfa && { forceChangeWithMfa: true }),
    ...(values.deadline !== undefined && { deadlineMs: values.deadline }),
    ...(values.minWait !== undefined && { minWaitMs: values.minWait }),
    ...(values.maxWait !== undefined && { maxWaitMs: values.maxWait }),
    ...(values.defaultWait !== undefined && { defaultWaitMs: values.defaultWait }),
    ...(values.signInHold !== undefined && { maxSignInHoldMs: values.signInHold }),
    ...(values.revokeSessions && { revokeSessions: true }),
    ...(values.confirmCompromised && { confirmCompromised: true as const }),
  };
}

/**
 * Prints what the CSV holds and its first problems, on `output` (standard error where standard output is
 * kept for an id or a JSON answer); the caller refuses a CSV with nothing to reset.
 */
export function printCsvCheck(
  csv: CsvCheck,
  problemsGoTo: string,
  output: NodeJS.WritableStream = process.stdout,
): void {
  const print = (line: string): void => void output.write(`${line}\n`);
  print(`${csv.path}: ${csv.totalRows} rows, ${csv.runnableRows} to reset, ${csv.problemCount} skipped`);
  for (const problem of csv.problems) print(`  row ${problem.row}: ${problem.reason}`);
  if (csv.problemCount > csv.problems.length) {
    print(`  ... and ${csv.problemCount - csv.problems.length} more (all in ${problemsGoTo})`);
  }
}

/**
 * `start` and `schedule create` refuse resetPassword with an application's own credential, before anything
 * runs: Graph does not allow it. A convenience: the worker refuses it again at the write (graph/client).
 */
export function refuseAppOnlyResetPassword(
  credential: CredentialConfig,
  method: ResetMethod | undefined,
): void {
  if ((method ?? 'reset-password') !== 'reset-password' || !isAppOnlyConfig(credential)) return;
  throw new Error(
    'Graph does not allow resetPassword (--method reset-password, the default) with an application (app-only) ' +
      'credential, which these settings give (BULK_RESET_GRAPH_AUTH or an app-only GRAPH_TOKEN); nothing was started: ' +
      "use --method password-profile, or an operator's sign-in (bulk-reset login) for resetPassword",
  );
}
