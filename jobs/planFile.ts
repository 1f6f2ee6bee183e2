/**
 * The plan file: what `bulk-reset plan` writes and what a job started with `--plan` reads back. Both
 * sides use this module, so the format is written and checked in one place. A plan is JSON, written
 * privately (mode 0600, replaced atomically); the worker reads it by reference and trusts it only when
 * its bytes, its CSV and its own fingerprint of the users to reset all still agree.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { writePrivateFile } from '../secrets/privateFile';
import { usersSha256 } from './jobFiles';

export type PlanDecision = 'reset' | 'skip';
/** `unsupported`: the job's method cannot reset this user (a synced user, with `--method password-profile`). */
export type SkipReason = 'missing' | 'protected' | 'invalid' | 'duplicate' | 'unsupported';

/** One CSV row of the plan. */
export interface PlannedUser {
  /** The row number the report uses: the file's line. */
  row: number;
  /** The user as the CSV names it: what a job started from this plan matches rows on. */
  user: string;
  /** Graph's object id and userPrincipalName, when the user was found. */
  id?: string;
  userPrincipalName?: string;
  /** Whether Graph knows the user; null for rows never looked up (invalid, duplicate). */
  exists: boolean | null;
  /** Graph's accountEnabled; null when unknown. */
  enabled: boolean | null;
  /**
   * Synced from on-premises Active Directory (onPremisesSyncEnabled) rather than cloud-only; null when
   * unknown. Graph wants the password of a synced account supplied with the reset.
   */
  synced: boolean | null;
  /** Display names of the directory roles the user holds (directly or through groups). */
  adminRoles: string[];
  /** On the protected-accounts list (BULK_RESET_PROTECTED_USERS), by the CSV's value, id or UPN. */
  protected: boolean;
  decision: PlanDecision;
  /** Why the row is skipped; absent when it is reset. */
  reason?: SkipReason;
  /** The CSV reader's words for an invalid or duplicate row. */
  detail?: string;
}

export interface PlanSummary {
  rows: number;
  reset: number;
  skipped: number;
  missing: number;
  protected: number;
  invalid: number;
  duplicate: number;
  /** Users the plan's method cannot reset (absent in plans made before it was counted). */
  unsupported?: number;
  /** Of the users found, how many are disabled, synced, or hold a directory role. */
  disabled: number;
  synced: number;
  admin: number;
}

/** The plan file, as written (JSON, mode 0600). */
export interface PlanFile {
  csv: { path: string; sha256: string };
  createdAt: string;
  users: PlannedUser[];
  summary: PlanSummary;
  /** {@link planHash} of the users whose decision is `reset`. */
  usersSha256: string;
  /** The reset method the plan was made for (absent in plans made before it was asked). */
  method?: 'reset-password' | 'password-profile';
  /**
   * What the token the plan was made with says: app-only or delegated, and the permissions the method
   * needs that it does not carry. `identity` is absent when the token cannot be read (not a JWT).
   */
  permissions?: { identity?: 'app' | 'user'; missing: string[] };
}

/**
 * The fingerprint of the users a plan resets: SHA-256 over the lower-cased users, sorted, one per line.
 * The same function as the job's (`usersSha256`), so a job recomputing it means the same people.
 */
export function planHash(users: string[]): string {
  return usersSha256(users);
}

/** Written beside the target and renamed over it: never half a plan, and never readable by others. */
export async function writePlanFile(path: string, plan: PlanFile): Promise<void> {
  await writePrivateFile(path, `${JSON.stringify(plan, null, 2)}\n`, { replace: true });
}

/** Why a plan cannot be used; the type names the Temporal failure the worker turns it into. */
export type PlanFileProblem = 'PlanUnreadable' | 'PlanChanged' | 'PlanMismatch';

/** A plan the worker must not act on; retrying cannot help, so the job stops with nothing reset. */
export class PlanFileError extends Error {
  override name = 'PlanFileError';
  constructor(
    message: string,
    readonly problem: PlanFileProblem,
  ) {
    super(message);
  }
}

/**
 * Reads a plan file by reference (its path and the SHA-256 of its bytes when the job was started): the
 * users it decided to reset, lower-cased. Throws {@link PlanFileError} when the file cannot be read, has
 * changed since, was made for another version of the CSV, or no longer matches its own fingerprint.
 */
export async function readPlanFile(
  plan: { path: string; sha256: string },
  csvSha256: string,
): Promise<Set<string>> {
  let bytes: Buffer;
  try {
    bytes = await readFile(plan.path);
  } catch (error) {
    throw new PlanFileError(
      `the plan ${plan.path} cannot be read by the worker (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
      'PlanUnreadable',
    );
  }
  if (createHash('sha256').update(bytes).digest('hex') !== plan.sha256) {
    throw new PlanFileError(
      `the plan ${plan.path} changed after the job was started; nothing was reset`,
      'PlanChanged',
    );
  }
  const parsed = JSON.parse(bytes.toString('utf8')) as {
    csv?: { sha256?: string };
    users?: { user?: string; decision?: string }[];
    usersSha256?: string;
  };
  if (parsed.csv?.sha256 !== csvSha256) {
    throw new PlanFileError(
      `the plan ${plan.path} was made for another version of the CSV; nothing was reset: make a new plan`,
      'PlanMismatch',
    );
  }
  const planned = new Set(
    (parsed.users ?? [])
      .filter((entry) => entry.decision === 'reset' && typeof entry.user === 'string')
      .map((entry) => (entry.user as string).toLowerCase()),
  );
  if (usersSha256(planned) !== parsed.usersSha256) {
    throw new PlanFileError(
      `the plan ${plan.path} does not match its own fingerprint (edited by hand?); nothing was reset`,
      'PlanMismatch',
    );
  }
  return planned;
}
