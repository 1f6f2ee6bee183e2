/**
 * `bulk-reset plan`: the dry run before a bulk reset. It reads the CSV the way a job will, looks every
 * runnable user up in Microsoft Graph (does it exist, is it enabled, cloud-only or synced from
 * on-premises, which directory roles it holds), checks the protected-accounts list, and decides per row:
 * `reset`, or `skip` with the reason. Nothing is written to Graph.
 *
 * The plan file ties that decision to the exact CSV (its SHA-256) and to the exact set of users to reset
 * (`usersSha256`, see {@link planHash}); `bulk-reset start --plan` runs those users and nobody else.
 *
 * There is no Temporal here: the lookups run from the CLI with a small concurrency limit and wait out
 * Graph's throttling themselves.
 */
import { basename, dirname, extname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createCredential, isAppOnlyConfig } from '../graph/credentials';
import { type TokenFacts } from '../graph/tokenClaims';
import type { ResetMethod } from '../workflows/types';
import { type ScannedRow, scanUserCsv, sha256File } from '../jobs/csvReader';
import {
  GraphClient,
  PASSWORD_PROFILE_PERMISSION,
  RESET_PASSWORD_PERMISSION,
  preflightScopes,
} from '../graph/client';
import { GraphError, adviceFor } from '../graph/errors';
import { type PlanFile, type PlannedUser, type PlanSummary, planHash, writePlanFile } from '../jobs/planFile';
import { type ProtectedUsers, isProtected, loadProtectedUsers } from '../jobs/protectedUsers';
import type { Settings } from '../temporal/config';
import { DEFAULT_PLAN_CONCURRENCY, MAX_PLAN_CONCURRENCY } from './commands';
import { checkCsv } from './jobs';
import { backoffMs } from '../workflows/waits';

// ---------------------------------------------------------------------------------------------------------
// Types

export interface PlanOptions {
  csvPath: string;
  /** Where to write the plan; default `<csv name>.plan.json` beside the CSV. */
  outPath?: string;
  /** Users looked up at the same time; default {@link DEFAULT_PLAN_CONCURRENCY}. */
  concurrency?: number;
  /** Progress while users are looked up: done of total. */
  onProgress?: (done: number, total: number) => void;
  /** The reset method the job will use; default `reset-password`. */
  method?: ResetMethod;
}

/** Tries per lookup when Graph throttles or has passing trouble. */
const MAX_TRIES = 5;
/** A Retry-After longer than this is cut short: the operator is waiting at a terminal. */
const MAX_WAIT_MS = 5 * 60_000;
/** How many noteworthy rows the table lists (all are in the plan file). */
const MAX_TABLE_ROWS = 50;

// ---------------------------------------------------------------------------------------------------------
// Helpers

/** Graph's throttling is per app and tenant: one 429 pauses every lookup of the plan, not only its own. */
class ThrottleGate {
  private pausedUntil = 0;

  pauseFor(ms: number): void {
    this.pausedUntil = Math.max(this.pausedUntil, Date.now() + ms);
  }

  async ready(signal: AbortSignal): Promise<void> {
    for (let waitMs = this.pausedUntil - Date.now(); waitMs > 0; waitMs = this.pausedUntil - Date.now()) {
      await sleep(waitMs, undefined, { signal });
    }
  }
}

/** Runs a Graph read, waiting out 429s (Retry-After) and passing trouble, at most MAX_TRIES times. */
async function withRetries<T>(call: () => Promise<T>, gate: ThrottleGate, signal: AbortSignal): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    await gate.ready(signal);
    try {
      return await call();
    } catch (error) {
      if (!(error instanceof GraphError) || error.kind !== 'transient' || attempt >= MAX_TRIES) throw error;
      const waitMs = backoffMs(error.retryAfterMs, attempt, { firstMs: 500, minMs: 0, maxMs: MAX_WAIT_MS });
      if (error.status === 429) gate.pauseFor(waitMs);
      else await sleep(waitMs, undefined, { signal });
    }
  }
}

interface Lookup {
  exists: boolean;
  id?: string;
  userPrincipalName?: string;
  enabled: boolean | null;
  synced: boolean | null;
  adminRoles: string[];
}

const NOT_FOUND: Lookup = { exists: false, enabled: null, synced: null, adminRoles: [] };

function isNotFound(error: unknown): boolean {
  return error instanceof GraphError && error.status === 404;
}

async function lookUp(
  graph: GraphClient,
  user: string,
  gate: ThrottleGate,
  signal: AbortSignal,
): Promise<Lookup> {
  let found;
  try {
    found = await withRetries(() => graph.getUser(user, { abortSignal: signal }), gate, signal);
  } catch (error) {
    if (isNotFound(error)) return NOT_FOUND;
    throw lookupFailure(user, 'the user', error);
  }
  let adminRoles: string[];
  try {
    // By object id: it names exactly the user just found, whatever characters its UPN holds.
    const target = found.id || user;
    adminRoles = await withRetries(() => graph.getAdminRoles(target, { abortSignal: signal }), gate, signal);
  } catch (error) {
    // Deleted between the two lookups: as missing as it gets.
    if (isNotFound(error)) return NOT_FOUND;
    throw lookupFailure(user, "the user's directory roles", error);
  }
  return {
    exists: true,
    id: found.id || undefined,
    userPrincipalName: found.userPrincipalName,
    enabled: found.accountEnabled ?? null,
    synced: found.onPremisesSyncEnabled === true,
    adminRoles,
  };
}

/**
 * A lookup that failed for good: the plan stops, since a plan with a hole in it would mislead. The
 * GraphError is not kept as `cause`: the CLI prints the root cause, and this message is the one to read.
 */
function lookupFailure(user: string, what: string, error: unknown): Error {
  if (!(error instanceof GraphError)) return error instanceof Error ? error : new Error(String(error));
  const requestId = error.requestId ? `, request-id ${error.requestId}` : '';
  const advice =
    error.status === 403
      ? 'the signed-in operator needs the delegated permissions User.Read.All and RoleManagement.Read.Directory (see README: permissions)'
      : error.kind === 'transient'
        ? `Graph or the network still had trouble after ${MAX_TRIES} tries; make the plan again later`
        : adviceFor(error.status, error.code);
  return new Error(
    `user ${user}: could not look up ${what}: ${error.message}${requestId}; ${advice}. No plan was written`,
  );
}

/** Looks every user up, `concurrency` at a time; stops at the first failure. */
async function lookUpAll(
  graph: GraphClient,
  users: string[],
  concurrency: number,
  onProgress?: (done: number, total: number) => void,
): Promise<Map<string, Lookup>> {
  const results = new Map<string, Lookup>();
  const gate = new ThrottleGate();
  const stop = new AbortController();
  let next = 0;
  let firstError: Error | undefined;
  const worker = async (): Promise<void> => {
    while (!stop.signal.aborted && next < users.length) {
      const user = users[next++];
      try {
        results.set(user, await lookUp(graph, user, gate, stop.signal));
        onProgress?.(results.size, users.length);
      } catch (error) {
        if (!stop.signal.aborted) {
          firstError = error instanceof Error ? error : new Error(String(error));
          stop.abort();
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, users.length) }, worker));
  if (firstError !== undefined) throw firstError;
  return results;
}

/**
 * The permissions `method` needs that the token does not carry (see README: the password-profile method).
 * resetPassword takes delegated permissions only; a passwordProfile PATCH takes the least-privileged
 * User-PasswordProfile.ReadWrite.All either way (delegated, Directory.AccessAsUser.All also does).
 */
export function missingPermissions(method: ResetMethod, token: TokenFacts): string[] {
  if (token.identity === undefined) return [];
  const holds = (permission: string) => token.permissions.includes(permission);
  if (method === 'reset-password') {
    if (token.identity === 'app') {
      return [
        `a signed-in operator: Graph does not allow resetPassword app-only (delegated ${RESET_PASSWORD_PERMISSION})`,
      ];
    }
    return holds(RESET_PASSWORD_PERMISSION) ? [] : [`${RESET_PASSWORD_PERMISSION} (delegated)`];
  }
  if (holds(PASSWORD_PROFILE_PERMISSION)) return [];
  if (token.identity === 'user' && holds('Directory.AccessAsUser.All')) return [];
  return [`${PASSWORD_PROFILE_PERMISSION} (${token.identity === 'app' ? 'application' : 'delegated'})`];
}

function decide(
  row: ScannedRow,
  lookup: Lookup | undefined,
  list: ProtectedUsers | undefined,
  method: ResetMethod = 'reset-password',
): PlannedUser {
  const listed =
    list !== undefined && (isProtected(list, row.user) || (lookup ? isProtected(list, lookup) : false));
  const base = {
    row: row.row,
    user: row.user,
    ...(lookup?.id !== undefined && { id: lookup.id }),
    ...(lookup?.userPrincipalName !== undefined && { userPrincipalName: lookup.userPrincipalName }),
    exists: lookup ? lookup.exists : null,
    enabled: lookup ? lookup.enabled : null,
    synced: lookup ? lookup.synced : null,
    adminRoles: lookup ? lookup.adminRoles : [],
    protected: listed,
  };
  if (row.disposition !== 'run') {
    return { ...base, decision: 'skip', reason: row.disposition, detail: row.reason };
  }
  // The protected list wins over everything the directory says: it is the operator's standing order.
  if (listed) return { ...base, decision: 'skip', reason: 'protected' };
  if (!lookup?.exists) return { ...base, decision: 'skip', reason: 'missing' };
  // A passwordProfile PATCH changes the cloud password only: Graph refuses it for a user whose password
  // on-premises AD masters (400), and it is never written back there.
  if (method === 'password-profile' && lookup.synced) {
    return {
      ...base,
      decision: 'skip',
      reason: 'unsupported',
      detail:
        '--method password-profile cannot reset a user synced from on-premises; use --method reset-password',
    };
  }
  return { ...base, decision: 'reset' };
}

function summarize(users: PlannedUser[]): PlanSummary {
  const count = (test: (user: PlannedUser) => boolean) => users.filter(test).length;
  const found = users.filter((user) => user.exists === true);
  const summary: PlanSummary = {
    rows: users.length,
    reset: count((user) => user.decision === 'reset'),
    skipped: count((user) => user.decision === 'skip'),
    missing: count((user) => user.reason === 'missing'),
    protected: count((user) => user.reason === 'protected'),
    invalid: count((user) => user.reason === 'invalid'),
    duplicate: count((user) => user.reason === 'duplicate'),
    disabled: found.filter((user) => user.enabled === false).length,
    synced: found.filter((user) => user.synced === true).length,
    admin: found.filter((user) => user.adminRoles.length > 0).length,
  };
  // Only a method that cannot reset some users has any: a plan for resetPassword reads as it always did.
  const unsupported = count((user) => user.reason === 'unsupported');
  return unsupported > 0 ? { ...summary, unsupported } : summary;
}

/** What makes a row worth the operator's attention, in a few words; empty for a plain reset. */
function notes(user: PlannedUser): string[] {
  const found: string[] = [];
  if (user.reason === 'missing') found.push('not found in the directory');
  if (user.detail) found.push(user.detail);
  if (user.protected) found.push('on the protected list');
  if (user.enabled === false) found.push('disabled');
  if (user.synced) found.push('synced from on-premises: Graph may need a supplied password');
  if (user.adminRoles.length > 0) found.push(`admin: ${user.adminRoles.join(', ')}`);
  return found;
}

/** The counts, then every row that is not a plain reset. */
export function formatPlan(plan: PlanFile): string {
  const { summary } = plan;
  const lines = [
    `${plan.csv.path}: ${summary.rows} rows, ${summary.reset} to reset, ${summary.skipped} skipped`,
    `  reset      ${summary.reset}`,
    `  missing    ${summary.missing}`,
    `  protected  ${summary.protected}`,
    `  invalid    ${summary.invalid}`,
    `  duplicate  ${summary.duplicate}`,
    ...(summary.unsupported ? [`  unsupported ${summary.unsupported} (the method cannot reset them)`] : []),
    `  of the users found: ${summary.disabled} disabled, ${summary.synced} synced, ${summary.admin} with an admin role`,
  ];
  const noteworthy = plan.users.filter((user) => notes(user).length > 0);
  if (noteworthy.length > 0) {
    const shown = noteworthy.slice(0, MAX_TABLE_ROWS);
    const userWidth = Math.min(40, Math.max(4, ...shown.map((user) => user.user.length)));
    const cell = (text: string, width: number) =>
      text.length > width ? `${text.slice(0, width - 1)}…` : text.padEnd(width);
    lines.push('', `  ${'row'.padStart(6)}  ${cell('user', userWidth)}  ${cell('decision', 15)}  notes`);
    for (const user of shown) {
      const decision = user.decision === 'reset' ? 'reset' : `skip: ${user.reason}`;
      lines.push(
        `  ${String(user.row).padStart(6)}  ${cell(user.user, userWidth)}  ${cell(decision, 15)}  ${notes(user).join('; ')}`,
      );
    }
    if (noteworthy.length > shown.length) {
      lines.push(`  ... and ${noteworthy.length - shown.length} more (all in the plan file)`);
    }
  }
  return lines.join('\n');
}

function defaultOutPath(csvPath: string): string {
  return join(dirname(csvPath), `${basename(csvPath, extname(csvPath))}.plan.json`);
}

// ---------------------------------------------------------------------------------------------------------
// The command

/** Makes the plan and writes it; returns the plan and where it was written. Writes nothing to Graph. */
export async function makePlan(
  settings: Settings,
  options: PlanOptions,
): Promise<{ plan: PlanFile; path: string }> {
  const concurrency = options.concurrency ?? DEFAULT_PLAN_CONCURRENCY;
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > MAX_PLAN_CONCURRENCY) {
    throw new Error(`--concurrency must be a whole number from 1 to ${MAX_PLAN_CONCURRENCY}`);
  }
  const list = settings.protectedUsersPath
    ? await loadProtectedUsers(settings.protectedUsersPath)
    : undefined;
  const csv = await checkCsv(options.csvPath);
  const rows: ScannedRow[] = [];
  for await (const row of scanUserCsv(csv.path)) rows.push(row);
  if ((await sha256File(csv.path)) !== csv.sha256) {
    throw new Error(`${csv.path} changed while it was being read; no plan was written: try again`);
  }

  const appOnly = isAppOnlyConfig(settings.credential);
  const graph = new GraphClient({
    baseUrl: settings.graphBaseUrl,
    credential: await createCredential(settings.credential),
    appOnly,
    // An app asks for every application permission it holds (.default); an operator for the reads.
    ...(!appOnly && { scopes: preflightScopes(settings.graphBaseUrl) }),
  });
  const method = options.method ?? 'reset-password';
  const token = await graph.tokenFacts();
  const missing = missingPermissions(method, token);
  const runnable = rows.flatMap((row) => (row.disposition === 'run' ? [row.user] : []));
  const lookups = await lookUpAll(graph, runnable, concurrency, options.onProgress);

  const users = rows.map((row) =>
    decide(row, row.disposition === 'run' ? lookups.get(row.user) : undefined, list, method),
  );
  const plan: PlanFile = {
    csv: { path: csv.path, sha256: csv.sha256 },
    createdAt: new Date().toISOString(),
    users,
    summary: summarize(users),
    usersSha256: planHash(users.filter((user) => user.decision === 'reset').map((user) => user.user)),
    method,
    permissions: { ...(token.identity && { identity: token.identity }), missing },
  };
  const path = resolve(options.outPath ?? defaultOutPath(csv.path));
  await writePlanFile(path, plan);
  return { plan, path };
}

/** `bulk-reset plan <users.csv> [--out plan.json] [--concurrency 8]`: exit code 0 once the plan is written. */
export async function runPlan(
  settings: Settings,
  csvPath: string,
  options: { out?: string; concurrency: number; method?: ResetMethod },
): Promise<number> {
  const interactive = process.stderr.isTTY;
  let lastLogged = Date.now();
  const { plan, path } = await makePlan(settings, {
    csvPath,
    outPath: options.out,
    concurrency: options.concurrency,
    method: options.method,
    onProgress: (done, total) => {
      if (interactive) {
        process.stderr.write(`\r\x1b[2Klooked up ${done}/${total} users`);
      } else if (Date.now() - lastLogged >= 10_000) {
        process.stderr.write(`looked up ${done}/${total} users\n`);
        lastLogged = Date.now();
      }
    },
  });
  if (interactive) process.stderr.write('\r\x1b[2K');
  console.log(formatPlan(plan));
  const missing = plan.permissions?.missing ?? [];
  if (plan.permissions?.identity === undefined) {
    console.error("the token's permissions could not be read (it is not a JWT): they were not checked");
  }
  if (missing.length > 0) {
    console.error(
      `MISSING: --method ${plan.method} needs ${missing.join(' and ')}, which the ${plan.permissions?.identity === 'app' ? "app's" : "operator's"} token does not carry; grant it (admin consent) before starting the job (see README: permissions)`,
    );
    console.log(path);
    return 1;
  }
  if (plan.summary.reset === 0) console.error('nothing in this plan is to be reset');
  else console.error(`to run it: bulk-reset start ${plan.csv.path} --plan ${path}`);
  console.log(path);
  return 0;
}
