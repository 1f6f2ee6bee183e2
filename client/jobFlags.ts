/**
 * What `start` and `schedule create` share: the job flags, the policy they set, and the operator-facing
 * summary of the CSV printed before anything runs.
 */
import type { ResetPolicy } from '../workflows/types';
import { parseDuration } from './durations';
import type { CsvCheck } from './jobs';

/** parseArgs options for the flags that shape a job. */
export const JOB_FLAGS = {
  window: { type: 'string' },
  deadline: { type: 'string' },
  'min-wait': { type: 'string' },
  'max-wait': { type: 'string' },
  'default-wait': { type: 'string' },
  'sign-in-hold': { type: 'string' },
  'revoke-sessions': { type: 'boolean', default: false },
  'allow-large': { type: 'boolean', default: false },
} as const;

export interface JobFlagValues {
  window?: string;
  deadline?: string;
  'min-wait'?: string;
  'max-wait'?: string;
  'default-wait'?: string;
  'sign-in-hold'?: string;
  'revoke-sessions'?: boolean;
}

export function windowFromFlags(values: JobFlagValues): number | undefined {
  return values.window === undefined ? undefined : Number(values.window);
}

export function policyFromFlags(values: JobFlagValues): Partial<ResetPolicy> {
  return {
    ...(values.deadline && { deadlineMs: parseDuration(values.deadline) }),
    ...(values['min-wait'] && { minWaitMs: parseDuration(values['min-wait']) }),
    ...(values['max-wait'] && { maxWaitMs: parseDuration(values['max-wait']) }),
    ...(values['default-wait'] && { defaultWaitMs: parseDuration(values['default-wait']) }),
    ...(values['sign-in-hold'] && { maxSignInHoldMs: parseDuration(values['sign-in-hold']) }),
    ...(values['revoke-sessions'] && { revokeSessions: true }),
  };
}

/** Prints what the CSV holds and its first problems; the caller refuses a CSV with nothing to reset. */
export function printCsvCheck(csv: CsvCheck, problemsGoTo: string): void {
  console.log(
    `${csv.path}: ${csv.totalRows} rows, ${csv.runnableRows} to reset, ${csv.problemCount} skipped`,
  );
  for (const problem of csv.problems) console.log(`  row ${problem.row}: ${problem.reason}`);
  if (csv.problemCount > csv.problems.length) {
    console.log(`  ... and ${csv.problemCount - csv.problems.length} more (all in ${problemsGoTo})`);
  }
}
