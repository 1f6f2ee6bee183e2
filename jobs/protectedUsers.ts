/**
 * The protected-accounts list: users bulk-reset never resets, whatever a CSV or a plan says (emergency
 * "break-glass" accounts, the operators' own, service accounts). A text file named by
 * BULK_RESET_PROTECTED_USERS, one userPrincipalName or object id per line:
 *
 * ```
 * # break-glass accounts: never reset in bulk
 * breakglass1@contoso.com
 * 3f2504e0-4f89-41d3-9a0c-0305e82c3301   # the second one, by object id
 * ```
 *
 * Blank lines and comments are ignored; a comment is a line starting with '#', or a '#' after
 * whitespace (a userPrincipalName may itself hold '#', as guests' `…#EXT#@…` do, but never whitespace).
 * Entries match case-insensitively. A line that is neither a userPrincipalName nor a GUID makes the
 * whole list unusable: a protected list that silently lost an entry would protect nobody.
 */
import { readFile } from 'node:fs/promises';
import { GUID, validateUser } from './csvReader';

export interface ProtectedUsers {
  /** The file the list was read from. */
  readonly path: string;
  /** The lower-cased userPrincipalNames and object ids. */
  readonly entries: ReadonlySet<string>;
}

/** The names one directory user goes by, as far as they are known: Graph's object id and userPrincipalName. */
export interface UserNames {
  id?: string;
  userPrincipalName?: string;
}

/** The list cannot be used as it is; the message names the file and the lines to fix. */
export class ProtectedUsersError extends Error {
  override name = 'ProtectedUsersError';
}

/** How many bad lines one error lists. */
const MAX_REPORTED_LINES = 10;

/** Reads and checks the protected list at `path`. An empty file is a valid, empty list. */
export async function loadProtectedUsers(path: string): Promise<ProtectedUsers> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new ProtectedUsersError(
      `the protected users list ${path} cannot be read (${code}); fix BULK_RESET_PROTECTED_USERS or the file: ` +
        'nothing is reset without it',
    );
  }
  return parseProtectedUsers(path, text);
}

/** The list in `text`, read from `path` (named in errors). */
export function parseProtectedUsers(path: string, text: string): ProtectedUsers {
  const entries = new Set<string>();
  const problems: string[] = [];
  const lines = text.replace(/^\uFEFF/, '').split(/\r\n|\r|\n/);
  lines.forEach((line, index) => {
    const value = withoutComment(line).trim();
    if (value === '') return;
    const problem = entryProblem(value);
    if (problem === undefined) entries.add(value.toLowerCase());
    else problems.push(`line ${index + 1}: ${problem}`);
  });
  if (problems.length > 0) {
    const shown = problems.slice(0, MAX_REPORTED_LINES);
    const more = problems.length > shown.length ? `\n  ... and ${problems.length - shown.length} more` : '';
    throw new ProtectedUsersError(
      `the protected users list ${path} has ${problems.length} line(s) that name no user; ` +
        `put one userPrincipalName or object id on each line ('#' starts a comment):\n  ${shown.join('\n  ')}${more}`,
    );
  }
  return { path, entries };
}

/**
 * Whether the list protects this user. `user` is a value as a CSV gives it (a userPrincipalName or an
 * object id), or the names Graph knows the user by: a user listed by id is protected when the CSV names
 * it by userPrincipalName only once those are known.
 */
export function isProtected(list: ProtectedUsers, user: string | UserNames): boolean {
  const names = typeof user === 'string' ? [user] : [user.id, user.userPrincipalName];
  return names.some(
    (name) => name !== undefined && name !== '' && list.entries.has(name.trim().toLowerCase()),
  );
}

function withoutComment(line: string): string {
  const comment = /(^|\s)#/.exec(line);
  return comment ? line.slice(0, comment.index) : line;
}

function entryProblem(value: string): string | undefined {
  if (GUID.test(value)) return undefined;
  if (!value.includes('@')) {
    return `${JSON.stringify(value)} is neither a userPrincipalName (name@domain) nor an object id (GUID)`;
  }
  return validateUser(value, 'userPrincipalName');
}
