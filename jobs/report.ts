/**
 * The outcome ledger and the report built from it. Outcomes are appended to a JSONL ledger while a job
 * runs (an activity may append the same batch twice after a retry: readers keep the first copy of a
 * row); at the end the CSV and JSON reports are written from the ledger. Reports carry no secrets
 * (`ResetOutcome` has none and nothing is added here), and the CSV is safe to open in a spreadsheet: its
 * cells come from the one CSV writer (csvWriter.ts), which neutralises formulas. The JSON report holds
 * every value exactly as it was.
 */
import { mkdir, open, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { type JobRecord, OUTCOME_STATUSES, type OutcomeStatus, type ResetOutcome } from '../workflows/types';
import { csvLine } from './csvWriter';
import { writePrivateFile } from '../secrets/privateFile';

export interface ReportSummary {
  /** Rows in the report (one per CSV row that has an outcome). */
  total: number;
  counts: Record<OutcomeStatus, number>;
  csvPath: string;
  jsonPath: string;
}

/** The report's header: the job, its input, and who started, approved or cancelled it. */
export interface ReportHeader extends JobRecord {
  jobId: string;
  /** The input CSV the job read. */
  csvPath: string;
  csvSha256: string;
  startedAt?: string;
  finishedAt: string;
}

const CSV_COLUMNS = [
  'row',
  'user',
  'status',
  'reason',
  'operationId',
  'polls',
  'startAttempts',
  'ambiguousResends',
  'httpStatus',
  'graphCode',
  'requestId',
  'startedAt',
  'finishedAt',
  'confirmedBy',
] as const satisfies readonly (keyof ResetOutcome)[];

/** Added after CSV_COLUMNS in the reports of jobs with containment (`--confirm-compromised`) only. */
const CONTAINMENT_COLUMNS = [
  'confirmedCompromised',
  'confirmedCompromisedReason',
] as const satisfies readonly (keyof ResetOutcome)[];

type ReportColumn = (typeof CSV_COLUMNS)[number] | (typeof CONTAINMENT_COLUMNS)[number];

const FILE_MODE = 0o600;
const DIRECTORY_MODE = 0o700;

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

/** Where a row's outcome sits in the ledger: enough to read it back without holding it. */
interface LedgerEntry {
  offset: number;
  length: number;
}

/** Bytes read from the ledger at a time while indexing it. */
const READ_CHUNK = 1024 * 1024;

/**
 * Indexes the ledger: for each row, where its first outcome is, and the counts by status. Reads the file
 * in chunks, so a ledger of a few hundred thousand rows costs a small map, not the outcomes themselves.
 * A missing ledger is empty. A line that is not JSON is what a crash mid-write leaves behind and is
 * ignored; a line that is JSON but not an outcome means the file is not a ledger, and throws.
 */
async function indexLedger(
  ledgerPath: string,
): Promise<{ entries: Map<number, LedgerEntry>; counts: Record<OutcomeStatus, number> }> {
  const entries = new Map<number, LedgerEntry>();
  const counts = summarise([]);
  let handle: FileHandle;
  try {
    handle = await open(ledgerPath, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { entries, counts };
    throw error;
  }
  try {
    const chunk = Buffer.alloc(READ_CHUNK);
    let carry = Buffer.alloc(0);
    let carryOffset = 0;
    let lineNumber = 0;
    const takeLine = (line: Buffer, offset: number): void => {
      lineNumber += 1;
      const text = line.toString('utf8');
      if (text.trim() === '') return;
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        return;
      }
      if (!isOutcome(parsed)) {
        throw new Error(`${ledgerPath} line ${lineNumber} is not a reset outcome; is this the job's ledger?`);
      }
      if (entries.has(parsed.row)) return;
      entries.set(parsed.row, { offset, length: line.length });
      counts[parsed.status] += 1;
    };
    for (let position = 0; ;) {
      const { bytesRead } = await handle.read(chunk, 0, READ_CHUNK, position);
      if (bytesRead === 0) break;
      const data = Buffer.concat([carry, chunk.subarray(0, bytesRead)]);
      let lineStart = 0;
      for (let newline = data.indexOf(0x0a); newline !== -1; newline = data.indexOf(0x0a, lineStart)) {
        takeLine(data.subarray(lineStart, newline), carryOffset + lineStart);
        lineStart = newline + 1;
      }
      carryOffset += lineStart;
      carry = Buffer.from(data.subarray(lineStart));
      position += bytesRead;
    }
    if (carry.length > 0) takeLine(carry, carryOffset);
    return { entries, counts };
  } finally {
    await handle.close();
  }
}

/** The outcomes of the index, in row order, read back one at a time. */
async function* outcomesInRowOrder(
  ledgerPath: string,
  entries: Map<number, LedgerEntry>,
): AsyncGenerator<ResetOutcome> {
  if (entries.size === 0) return;
  const rows = [...entries.keys()].sort((a, b) => a - b);
  const handle = await open(ledgerPath, 'r');
  try {
    for (const row of rows) {
      const { offset, length } = entries.get(row) as LedgerEntry;
      const line = Buffer.alloc(length);
      await handle.read(line, 0, length, offset);
      yield JSON.parse(line.toString('utf8')) as ResetOutcome;
    }
  } finally {
    await handle.close();
  }
}

/** Every outcome in the ledger, one per row (the first one appended wins), sorted by row. */
export async function readLedger(ledgerPath: string): Promise<ResetOutcome[]> {
  const { entries } = await indexLedger(ledgerPath);
  const outcomes: ResetOutcome[] = [];
  for await (const outcome of outcomesInRowOrder(ledgerPath, entries)) outcomes.push(outcome);
  return outcomes;
}

function isOutcome(value: unknown): value is ResetOutcome {
  if (typeof value !== 'object' || value === null) return false;
  const candidate = value as Partial<Record<keyof ResetOutcome, unknown>>;
  return (
    typeof candidate.row === 'number' &&
    typeof candidate.user === 'string' &&
    OUTCOME_STATUSES.includes(candidate.status as OutcomeStatus)
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
 * Writes the CSV and JSON reports from the ledger, each to a temporary file in the same directory that
 * is then renamed over the target (see privateFile), so a reader never sees a half-written report.
 */
export async function writeReport(
  ledgerPath: string,
  paths: { csvPath: string; jsonPath: string },
  header: ReportHeader,
): Promise<ReportSummary> {
  const { entries, counts } = await indexLedger(ledgerPath);
  const total = entries.size;
  const columns: readonly ReportColumn[] = header.containment
    ? [...CSV_COLUMNS, ...CONTAINMENT_COLUMNS]
    : CSV_COLUMNS;

  await writeAtomically(paths.csvPath, async function* () {
    // The BOM makes Excel read the file as UTF-8, so non-ASCII names are not mangled.
    yield `\uFEFF${csvLine(columns)}\r\n`;
    for await (const outcome of outcomesInRowOrder(ledgerPath, entries)) {
      yield `${reportLine(outcome, columns)}\r\n`;
    }
  });
  await writeAtomically(paths.jsonPath, async function* () {
    yield `{\n  "job": ${JSON.stringify(header)},\n  "summary": ${JSON.stringify({ total, counts })},\n  "outcomes": [`;
    let index = 0;
    for await (const outcome of outcomesInRowOrder(ledgerPath, entries)) {
      yield `${index === 0 ? '' : ','}\n    ${JSON.stringify(outcome)}`;
      index += 1;
    }
    yield `${total === 0 ? '' : '\n  '}]\n}\n`;
  });
  return { total, counts, csvPath: paths.csvPath, jsonPath: paths.jsonPath };
}

function reportLine(outcome: ResetOutcome, columns: readonly ReportColumn[]): string {
  // A yes/no cell reads `true` or `false`, as in the JSON report.
  return csvLine(
    columns.map((column) => {
      const value = outcome[column];
      return typeof value === 'boolean' ? String(value) : value;
    }),
  );
}

async function writeAtomically(path: string, content: () => AsyncIterable<string>): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: DIRECTORY_MODE });
  await writePrivateFile(path, content(), { replace: true });
}
