/**
 * The outcome ledger and the report built from it. Outcomes are appended to a JSONL ledger while a job
 * runs (an activity may append the same batch twice after a retry: readers keep the first copy of a
 * row); at the end the CSV and JSON reports are written from the ledger. Reports are safe to open in a
 * spreadsheet and carry no secrets: `ResetOutcome` has none and nothing is added here.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { OutcomeStatus, ResetOutcome } from '../workflows/types';

export interface ReportSummary {
  /** Rows in the report (one per CSV row that has an outcome). */
  total: number;
  counts: Record<OutcomeStatus, number>;
  csvPath: string;
  jsonPath: string;
}

export interface ReportHeader {
  jobId: string;
  /** The input CSV the job read. */
  csvPath: string;
  csvSha256: string;
  startedAt?: string;
  finishedAt: string;
}

const STATUSES: readonly OutcomeStatus[] = ['succeeded', 'failed', 'unconfirmed', 'skipped', 'cancelled'];

const CSV_COLUMNS = [
  'row',
  'user',
  'status',
  'reason',
  'operationId',
  'polls',
  'startAttempts',
  'httpStatus',
  'graphCode',
  'requestId',
  'startedAt',
  'finishedAt',
] as const satisfies readonly (keyof ResetOutcome)[];

const FILE_MODE = 0o600;
const DIRECTORY_MODE = 0o700;
/** Bytes gathered before a write while streaming a report. */
const WRITE_CHUNK = 64 * 1024;

/**
 * Appends outcomes to the ledger, one JSON object per line, and fsyncs before returning: once this
 * resolves the outcomes survive a crash. Creates the file (0600) and its directory (0700) if missing.
 */
export async function appendOutcomes(ledgerPath: string, outcomes: ResetOutcome[]): Promise<void> {
  await mkdir(dirname(ledgerPath), { recursive: true, mode: DIRECTORY_MODE });
  const handle = await open(ledgerPath, 'a+', FILE_MODE);
  try {
    // A crash mid-write can leave a partial last line; start on a fresh line so that line stays on its
    // own (readLedger ignores it) instead of corrupting the first outcome written now.
    const { size } = await handle.stat();
    let text = size > 0 && !(await endsWithNewline(handle, size)) ? '\n' : '';
    for (const outcome of outcomes) text += `${JSON.stringify(outcome)}\n`;
    if (text !== '') await handle.appendFile(text, 'utf8');
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function endsWithNewline(handle: FileHandle, size: number): Promise<boolean> {
  const last = Buffer.alloc(1);
  await handle.read(last, 0, 1, size - 1);
  return last[0] === 0x0a;
}

/**
 * Every outcome in the ledger, one per row (the first one appended wins), sorted by row. A missing
 * ledger is empty. A line that is not JSON is what a crash mid-write leaves behind and is ignored; a
 * line that is JSON but not an outcome means the file is not a ledger, and throws.
 */
export async function readLedger(ledgerPath: string): Promise<ResetOutcome[]> {
  let text: string;
  try {
    text = await readFile(ledgerPath, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const byRow = new Map<number, ResetOutcome>();
  text.split('\n').forEach((line, index) => {
    if (line.trim() === '') return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      return;
    }
    if (!isOutcome(parsed)) {
      throw new Error(`${ledgerPath} line ${index + 1} is not a reset outcome; is this the job's ledger?`);
    }
    if (!byRow.has(parsed.row)) byRow.set(parsed.row, parsed);
  });
  return [...byRow.values()].sort((a, b) => a.row - b.row);
}

function isOutcome(value: unknown): value is ResetOutcome {
  if (typeof value !== 'object' || value === null) return false;
  const candidate = value as Partial<Record<keyof ResetOutcome, unknown>>;
  return (
    typeof candidate.row === 'number' &&
    typeof candidate.user === 'string' &&
    STATUSES.includes(candidate.status as OutcomeStatus)
  );
}

/** Outcomes per status; every status is present, zero when no row has it. */
export function summarise(outcomes: Iterable<ResetOutcome>): Record<OutcomeStatus, number> {
  const counts: Record<OutcomeStatus, number> = {
    succeeded: 0,
    failed: 0,
    unconfirmed: 0,
    skipped: 0,
    cancelled: 0,
  };
  for (const outcome of outcomes) counts[outcome.status] += 1;
  return counts;
}

/**
 * Makes a cell safe to open in a spreadsheet: a value that would start a formula (`=`, `+`, `-`, `@`,
 * tab or carriage return) gets a leading `'`, so it is shown as text and never evaluated.
 */
export function neutraliseCell(value: string): string {
  return /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
}

/**
 * Writes the CSV and JSON reports from the ledger, each to a temporary file in the same directory that
 * is then renamed over the target, so a reader never sees a half-written report.
 */
export async function writeReport(
  ledgerPath: string,
  paths: { csvPath: string; jsonPath: string },
  header: ReportHeader,
): Promise<ReportSummary> {
  const outcomes = await readLedger(ledgerPath);
  const counts = summarise(outcomes);
  const total = outcomes.length;

  await writeAtomically(paths.csvPath, function* () {
    // The BOM makes Excel read the file as UTF-8, so non-ASCII names are not mangled.
    yield `\uFEFF${CSV_COLUMNS.join(',')}\r\n`;
    for (const outcome of outcomes) yield `${csvLine(outcome)}\r\n`;
  });
  await writeAtomically(paths.jsonPath, function* () {
    yield `{\n  "job": ${JSON.stringify(header)},\n  "summary": ${JSON.stringify({ total, counts })},\n  "outcomes": [`;
    for (const [index, outcome] of outcomes.entries()) {
      yield `${index === 0 ? '' : ','}\n    ${JSON.stringify(outcome)}`;
    }
    yield `${total === 0 ? '' : '\n  '}]\n}\n`;
  });
  return { total, counts, csvPath: paths.csvPath, jsonPath: paths.jsonPath };
}

function csvLine(outcome: ResetOutcome): string {
  return CSV_COLUMNS.map((column) => csvCell(outcome[column])).join(',');
}

function csvCell(value: string | number | undefined): string {
  if (value === undefined) return '';
  const text = typeof value === 'string' ? neutraliseCell(value) : String(value);
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

async function writeAtomically(path: string, content: () => Iterable<string>): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: DIRECTORY_MODE });
  const temporary = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  const handle = await open(temporary, 'wx', FILE_MODE);
  try {
    let pending = '';
    for (const piece of content()) {
      pending += piece;
      if (pending.length >= WRITE_CHUNK) {
        await handle.writeFile(pending, 'utf8');
        pending = '';
      }
    }
    await handle.writeFile(pending, 'utf8');
    await handle.sync();
    await handle.close();
    await rename(temporary, path);
  } catch (error) {
    await handle.close().catch(() => undefined);
    await rm(temporary, { force: true });
    throw error;
  }
}
