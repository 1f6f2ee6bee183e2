/**
 * A job's files on the workers' data volume: the runnable rows, the outcome ledger and the report.
 *
 *   {dataDir}/jobs/{jobId}/owner.json      the workflow and first run that claimed the folder (written first)
 *   {dataDir}/jobs/{jobId}/prepared.json   what prepareJob found (written last: its presence means done)
 *   {dataDir}/jobs/{jobId}/rows.jsonl      one runnable UserRow per line, read in pages by byte offset
 *   {dataDir}/jobs/{jobId}/outcomes.jsonl  the ledger: one ResetOutcome per line, appended in batches
 *   {dataDir}/jobs/{jobId}/report.csv|json the report, written at the end
 *
 * Files hold user names, never passwords; they are created 0600 in a 0700 folder.
 *
 * A job id is used once: the folder belongs to the one workflow run that claimed it (claimJobFolder), and
 * no other job prepares, reads or appends there (checkJobOwner).
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { constants as fsConstants, createReadStream } from 'node:fs';
import { link, mkdir, open, readFile, readdir, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { PreparedJob, ResetOutcome, UserRow } from '../workflows/types';
import { scanUserCsv } from './csvReader';
import { appendOutcomes } from './report';

export interface JobPaths {
  dir: string;
  owner: string;
  prepared: string;
  rows: string;
  ledger: string;
  reportCsv: string;
  reportJson: string;
}

/** Job ids become folder names: keep them to a safe alphabet. */
/** Letters, digits, '.', '_', '-' and ':' (a Temporal Schedule names its runs `<id>-<RFC 3339 time>`). */
export const JOB_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

export function jobPaths(dataDir: string, jobId: string): JobPaths {
  if (!JOB_ID_PATTERN.test(jobId)) {
    throw new Error(
      `job id "${jobId}" must be 1-128 letters, digits, '.', '_', ':' or '-', starting with a letter or digit`,
    );
  }
  const dir = join(dataDir, 'jobs', jobId);
  return {
    dir,
    owner: join(dir, 'owner.json'),
    prepared: join(dir, 'prepared.json'),
    rows: join(dir, 'rows.jsonl'),
    ledger: join(dir, 'outcomes.jsonl'),
    reportCsv: join(dir, 'report.csv'),
    reportJson: join(dir, 'report.json'),
  };
}

/**
 * The opaque key that names a user's workflow (`<job>/user-<key>`): derived from the job and the
 * lower-cased user, so a user is never started twice in a job, and keyed (HMAC-SHA256 under the
 * deployment's secret, see workflowIdSecret) so that someone who knows a job id and guesses a name
 * cannot confirm from workflow ids who was reset. Rows prepared before the key existed carry the old,
 * unkeyed value and keep it: a running job's users keep their ids.
 */
export function userKey(jobId: string, user: string, secret: Buffer): string {
  return createHmac('sha256', secret).update(`${jobId}\n${user.toLowerCase()}`).digest('hex').slice(0, 32);
}

/**
 * The workflow run that prepared a job: the first run of its chain. Later runs of the same job continue
 * as new under the same workflow id and never prepare again.
 */
export interface JobOwner {
  workflowId: string;
  runId: string;
}

/** What owner.json holds. */
interface OwnerRecord extends JobOwner {
  jobId: string;
  claimedAt: string;
}

declare const claimed: unique symbol;

/** A job folder claimed by the run preparing it: only claimJobFolder makes one, so only it opens prepare. */
export interface JobClaim {
  readonly paths: JobPaths;
  readonly jobId: string;
  readonly owner: JobOwner;
  readonly [claimed]: true;
}

/**
 * The folder of a job id belongs to another job, or to one that ran before folders recorded an owner:
 * nothing may be prepared, read or appended there. The message names the folder, its owner and what to do.
 */
export class JobFolderTakenError extends Error {
  override name = 'JobFolderTakenError';
}

/** The ApplicationFailure type the activities give a JobFolderTakenError: one definition. */
export const JOB_FOLDER_TAKEN = 'JobFolderTaken';

const USE_A_NEW_JOB_ID = 'job ids are used once: start the job again with a new job id (or without --job-id)';
/** A claim's complete owner file before it is linked into place; left behind only by a crash. */
const CLAIM_TEMPORARY = /^owner\.json\.[0-9a-f]{16}\.tmp$/;

function describeOwner(owner: OwnerRecord): string {
  return `job ${owner.jobId} (workflow ${owner.workflowId}, run ${owner.runId}, claimed ${owner.claimedAt})`;
}

/** The folder's owner, or undefined when it records none (not claimed yet, or prepared before claims). */
async function readOwner(paths: JobPaths): Promise<OwnerRecord | undefined> {
  let text: string;
  try {
    text = await readFile(paths.owner, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  try {
    const parsed = JSON.parse(text) as Partial<OwnerRecord>;
    if (typeof parsed.workflowId === 'string' && typeof parsed.runId === 'string') {
      return { jobId: String(parsed.jobId), claimedAt: String(parsed.claimedAt), ...parsed } as OwnerRecord;
    }
  } catch {
    // reported below
  }
  throw new JobFolderTakenError(
    `the job folder ${paths.dir} has an owner file that is not one bulk-reset wrote (${paths.owner}); nothing was read or written there: ${USE_A_NEW_JOB_ID}`,
  );
}

/**
 * Claims the job's folder for the run preparing it, or refuses: the first thing a job does, before it
 * reads its CSV or creates its secrets file. The owner file is written complete under a temporary name
 * and linked into place, so it appears whole or not at all, and of two runs claiming at once one wins.
 *
 * The same run claiming again (a retried or interrupted prepare) gets its claim back. Any other run is
 * refused, as is a folder that already holds files without an owner: a job prepared before claims
 * existed, whose rows a new job must not take over.
 */
export async function claimJobFolder(paths: JobPaths, jobId: string, claimant: JobOwner): Promise<JobClaim> {
  await mkdir(paths.dir, { recursive: true, mode: 0o700 });
  for (;;) {
    const owner = await readOwner(paths);
    if (owner) {
      if (owner.workflowId === claimant.workflowId && owner.runId === claimant.runId) {
        return { paths, jobId, owner: claimant } as JobClaim;
      }
      throw new JobFolderTakenError(
        `the job folder ${paths.dir} belongs to ${describeOwner(owner)}, not to this one (workflow ${claimant.workflowId}, run ${claimant.runId}); nothing was reset: ${USE_A_NEW_JOB_ID}`,
      );
    }
    const found = (await readdir(paths.dir)).filter(
      (name) => name !== 'owner.json' && !CLAIM_TEMPORARY.test(name),
    );
    if (found.length > 0) {
      throw new JobFolderTakenError(
        `the job folder ${paths.dir} already holds the files of an earlier job with this id (${found.sort().join(', ')}), which records no owner; nothing was reset: ${USE_A_NEW_JOB_ID}`,
      );
    }
    const record: OwnerRecord = { jobId, ...claimant, claimedAt: new Date().toISOString() };
    const temporary = `${paths.owner}.${randomBytes(8).toString('hex')}.tmp`;
    const file = await open(
      temporary,
      fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW,
      0o600,
    );
    try {
      await file.writeFile(`${JSON.stringify(record)}\n`);
      await file.sync();
    } finally {
      await file.close();
    }
    try {
      await link(temporary, paths.owner);
      await syncDirectory(paths.dir);
      return { paths, jobId, owner: claimant } as JobClaim;
    } catch (error) {
      // Another run linked its claim first: read it on the next pass, and refuse or accept it.
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    } finally {
      await unlink(temporary);
    }
  }
}

/** Makes a new name in the folder survive a crash, as the file's own sync does for its bytes. */
async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Refuses a job's files to any workflow but the one that claimed them, so a job never reads another's
 * rows or appends to another's ledger, and a report never mixes two jobs. Continued runs keep the
 * workflow id, which is what is compared (a different run under that id cannot get past prepare). A
 * folder prepared before claims existed records no owner and stays usable by its job.
 */
export async function checkJobOwner(paths: JobPaths, workflowId: string): Promise<void> {
  const owner = await readOwner(paths);
  if (owner && owner.workflowId !== workflowId) {
    throw new JobFolderTakenError(
      `the job folder ${paths.dir} belongs to ${describeOwner(owner)}, not to workflow ${workflowId}; nothing was read or written there: a job's files belong to that job alone`,
    );
  }
}

const SKIPPED_BATCH = 500;

/**
 * The fingerprint of a set of users: SHA-256 over the lower-cased users, sorted, one per line. A plan
 * records it and a job started from the plan recomputes it, so both mean exactly the same people.
 */
export function usersSha256(users: Iterable<string>): string {
  const sorted = [...new Set([...users].map((user) => user.toLowerCase()))].sort();
  return createHash('sha256').update(sorted.join('\n')).digest('hex');
}

export interface PrepareOptions {
  /** Accounts never to reset (break-glass, named): skipped with reason "protected". */
  isProtected?: (user: string) => boolean;
  /** Only these users (lower-cased) may run: the approved plan. Others are skipped. */
  planned?: ReadonlySet<string>;
  /** The job's handling of a newPassword column (see CsvScanOptions); the password never reaches rows.jsonl. */
  passwordColumn?: 'require' | 'refuse' | 'ignore';
  /** The deployment's secret for user workflow ids (see userKey). */
  userKeySecret: Buffer;
}

/**
 * Splits the CSV into runnable rows (written to rows.jsonl) and skipped rows (recorded in the ledger
 * at once), in a folder this run has claimed (claimJobFolder). Safe to run again in the same run: a
 * finished preparation is returned as it was.
 */
export async function prepareJobFiles(
  { paths, jobId }: JobClaim,
  csvPath: string,
  options: PrepareOptions,
): Promise<PreparedJob> {
  try {
    return JSON.parse(await readFile(paths.prepared, 'utf8')) as PreparedJob;
  } catch {
    // not prepared yet (or interrupted): start over
  }
  await mkdir(paths.dir, { recursive: true, mode: 0o700 });
  const rowsTemporary = `${paths.rows}.tmp`;
  const rowsFile = await open(rowsTemporary, 'w', 0o600);
  const rowsHash = createHash('sha256');
  const prepared: PreparedJob = { totalRows: 0, runnableRows: 0, skippedRows: 0 };
  let skipped: ResetOutcome[] = [];
  const runnable: string[] = [];
  const skip = async (row: number, user: string, reason: string): Promise<void> => {
    prepared.skippedRows += 1;
    skipped.push({ row, user, status: 'skipped', reason, polls: 0, startAttempts: 0 });
    if (skipped.length >= SKIPPED_BATCH) {
      await appendOutcomes(paths.ledger, skipped);
      skipped = [];
    }
  };
  try {
    for await (const scanned of scanUserCsv(csvPath, { passwordColumn: options.passwordColumn })) {
      prepared.totalRows += 1;
      if (scanned.disposition === 'run' && options.isProtected?.(scanned.user)) {
        await skip(
          scanned.row,
          scanned.user,
          'protected: this account is on the protected list and is never reset',
        );
      } else if (
        scanned.disposition === 'run' &&
        options.planned &&
        !options.planned.has(scanned.user.toLowerCase())
      ) {
        await skip(
          scanned.row,
          scanned.user,
          'not in the approved plan (the plan found it missing or decided to skip it)',
        );
      } else if (scanned.disposition === 'run') {
        if (options.planned) runnable.push(scanned.user);
        const row: UserRow = {
          row: scanned.row,
          user: scanned.user,
          idKind: scanned.idKind,
          key: userKey(jobId, scanned.user, options.userKeySecret),
        };
        const line = `${JSON.stringify(row)}\n`;
        rowsHash.update(line);
        await rowsFile.write(line);
        prepared.runnableRows += 1;
      } else {
        await skip(
          scanned.row,
          scanned.user,
          scanned.disposition === 'duplicate' ? scanned.reason : `invalid: ${scanned.reason}`,
        );
      }
    }
    if (options.planned && usersSha256(runnable) !== usersSha256(options.planned)) {
      throw new PlanMismatchError(
        `the CSV does not hold exactly the users of the plan (${runnable.length} of the plan's ${options.planned.size} found); nothing was reset: make a new plan`,
      );
    }
    if (skipped.length > 0) await appendOutcomes(paths.ledger, skipped);
    await rowsFile.sync();
    prepared.rowsSha256 = rowsHash.digest('hex');
  } finally {
    await rowsFile.close();
  }
  await rename(rowsTemporary, paths.rows);
  await writeFile(paths.prepared, JSON.stringify(prepared), { mode: 0o600 });
  return prepared;
}

/** The job's CSV and its plan disagree: the job must not run. */
export class PlanMismatchError extends Error {
  override name = 'PlanMismatchError';
}

/** The job's prepared rows are no longer the ones prepared (and approved): the job must not go on. */
export class RowsChangedError extends Error {
  override name = 'RowsChangedError';
}

/**
 * Files already hashed by this process, with the stat that was hashed: a file whose device, inode,
 * size, modification and change times are all the same has not been written since (any write moves its
 * change time, which no ordinary user can set back), so it is not hashed again.
 */
const verifiedRows = new Map<string, { signature: string; sha256: string }>();

/**
 * Throws RowsChangedError unless the rows file still has the SHA-256 it was prepared with. The file is
 * hashed again whenever its stat changed (measured at 60-120 ms for the 12 MB of 100,000 rows on this
 * project's 2-core machine); an unchanged file costs one stat per page.
 */
export async function checkRowsUnchanged(rowsPath: string, rowsSha256: string): Promise<void> {
  const info = await stat(rowsPath);
  const signature = `${info.dev}:${info.ino}:${info.size}:${info.mtimeMs}:${info.ctimeMs}`;
  const known = verifiedRows.get(rowsPath);
  let actual = known?.signature === signature ? known.sha256 : undefined;
  if (actual === undefined) {
    const hash = createHash('sha256');
    for await (const chunk of createReadStream(rowsPath)) hash.update(chunk as Buffer);
    actual = hash.digest('hex');
    verifiedRows.set(rowsPath, { signature, sha256: actual });
  }
  if (actual !== rowsSha256) {
    throw new RowsChangedError(
      `the job's prepared rows ${rowsPath} changed after they were prepared and approved (SHA-256 now ` +
        `${actual.slice(0, 12)}…, prepared ${rowsSha256.slice(0, 12)}…); no further user was started: ` +
        'find out who changed the file, then start a new job from the CSV',
    );
  }
}

/** Reads up to `limit` rows from rows.jsonl starting at a byte offset that an earlier call returned. */
export async function readRowsPage(
  rowsPath: string,
  byteOffset: number,
  limit: number,
): Promise<{ rows: UserRow[]; nextByteOffset: number; exhausted: boolean }> {
  const file = await open(rowsPath, 'r');
  try {
    const rows: UserRow[] = [];
    let offset = byteOffset;
    let carry = Buffer.alloc(0);
    const chunk = Buffer.alloc(64 * 1024);
    for (;;) {
      const { bytesRead } = await file.read(chunk, 0, chunk.length, offset + carry.length);
      const data = Buffer.concat([carry, chunk.subarray(0, bytesRead)]);
      let start = 0;
      for (
        let newline = data.indexOf(10, start);
        newline !== -1 && rows.length < limit;
        newline = data.indexOf(10, start)
      ) {
        rows.push(JSON.parse(data.subarray(start, newline).toString('utf8')) as UserRow);
        start = newline + 1;
      }
      offset += start;
      carry = data.subarray(start);
      if (rows.length >= limit) {
        const { bytesRead: more } = await file.read(Buffer.alloc(1), 0, 1, offset);
        return { rows, nextByteOffset: offset, exhausted: more === 0 };
      }
      if (bytesRead === 0) return { rows, nextByteOffset: offset, exhausted: true };
    }
  } finally {
    await file.close();
  }
}

/**
 * Each runnable row's key (see userKey) by the lower-cased user, as the job prepared them: the ground
 * truth of which workflow id each user got, for tools and tests that look a user's workflow up.
 */
export async function preparedUserKeys(paths: JobPaths): Promise<Map<string, string>> {
  const { rows } = await readRowsPage(paths.rows, 0, Number.MAX_SAFE_INTEGER);
  return new Map(rows.map((row) => [row.user.toLowerCase(), row.key]));
}

/**
 * Each runnable row's key (see userKey) by its row number: what names the row's workflow. Read in pages;
 * the map holds a number and a 32-character key per runnable row.
 */
export async function preparedRowKeys(paths: JobPaths): Promise<Map<number, string>> {
  const keys = new Map<number, string>();
  try {
    await stat(paths.rows);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return keys;
    throw error;
  }
  for (let offset: number | undefined = 0; offset !== undefined;) {
    const page = await readRowsPage(paths.rows, offset, 10_000);
    for (const row of page.rows) keys.set(row.row, row.key);
    offset = page.exhausted ? undefined : page.nextByteOffset;
  }
  return keys;
}
