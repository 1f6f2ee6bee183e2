/**
 * A job's files on the workers' data volume: the runnable rows, the outcome ledger and the report.
 *
 *   {dataDir}/jobs/{jobId}/prepared.json   what prepareJob found (written last: its presence means done)
 *   {dataDir}/jobs/{jobId}/rows.jsonl      one runnable UserRow per line, read in pages by byte offset
 *   {dataDir}/jobs/{jobId}/outcomes.jsonl  the ledger: one ResetOutcome per line, appended in batches
 *   {dataDir}/jobs/{jobId}/report.csv|json the report, written at the end
 *
 * Files hold user names, never passwords; they are created 0600 in a 0700 folder.
 */
import { createHash } from 'node:crypto';
import { mkdir, open, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { PreparedJob, ResetOutcome, UserRow } from '../workflows/types';
import { scanUserCsv } from './csvReader';
import { appendOutcomes } from './report';

export interface JobPaths {
  dir: string;
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
    prepared: join(dir, 'prepared.json'),
    rows: join(dir, 'rows.jsonl'),
    ledger: join(dir, 'outcomes.jsonl'),
    reportCsv: join(dir, 'report.csv'),
    reportJson: join(dir, 'report.json'),
  };
}

/** The opaque key that names a user's workflow: derived from the job and the user, revealing neither. */
export function userKey(jobId: string, user: string): string {
  return createHash('sha256').update(`${jobId}\n${user.toLowerCase()}`).digest('hex').slice(0, 24);
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
}

/**
 * Splits the CSV into runnable rows (written to rows.jsonl) and skipped rows (recorded in the ledger
 * at once). Safe to run again: a finished preparation is returned as it was.
 */
export async function prepareJobFiles(
  paths: JobPaths,
  jobId: string,
  csvPath: string,
  options: PrepareOptions = {},
): Promise<PreparedJob> {
  try {
    return JSON.parse(await readFile(paths.prepared, 'utf8')) as PreparedJob;
  } catch {
    // not prepared yet (or interrupted): start over
  }
  await mkdir(paths.dir, { recursive: true, mode: 0o700 });
  const rowsTemporary = `${paths.rows}.tmp`;
  const rowsFile = await open(rowsTemporary, 'w', 0o600);
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
          key: userKey(jobId, scanned.user),
        };
        await rowsFile.write(`${JSON.stringify(row)}\n`);
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
