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
import {
  type JobRecord,
  type JobSummary,
  OUTCOME_STATUSES,
  type OutcomeStatus,
  type ResetOutcome,
} from '../workflows/types';
import { csvLine } from './csvWriter';
import { writePrivateFile } from '../secrets/privateFile';

export interface ReportSummary {
  /** Rows in the report (one per CSV row that has an outcome). */
  total: number;
  counts: Record<OutcomeStatus, number>;
  /** The failed and unconfirmed rows grouped by cause, largest group first (see failuresByCause). */
  failuresByCause: FailureCause[];
  csvPath: string;
  jsonPath: string;
}

/**
 * One line of the report: the row's outcome, and what an operator needs to act on it. The reason is
 * short (see shortReason); the outcome's reason as recorded stays in the JSON report as `detail`.
 */
export interface ReportRow extends ResetOutcome {
  /** What to do about a failed or unconfirmed row, fitting the job's password mode. */
  hint?: string;
  /** The reason as the job recorded it, when `reason` was shortened (JSON report only). */
  detail?: string;
  /** The user's workflow (`<job>/user-<key>`); absent for rows never started. */
  workflowId?: string;
  /** The user's workflow in the Temporal Web UI, when the UI's address is known. */
  webUiLink?: string;
  /**
   * A retry's row in its own CSV, when the report shows the original job's row number in `row` (JSON
   * report only): a retry's row 2 is the original row 10.
   */
  csvRow?: number;
  /** In a final view (`report --final`): the job whose outcome this is, the original or one of its retries. */
  job?: string;
}

/** What writeReport adds to each outcome; every part is optional, so a report can always be written. */
export interface ReportRowContext {
  /** The user's workflow id for a row whose user was started (see jobFiles.preparedRowKeys). */
  workflowIdOf?(outcome: ResetOutcome): string | undefined;
  /** The Temporal Web UI and namespace: each row with a workflow id gets a link to it. */
  webUi?: WebUi;
  /** The hint for a row (graph/errors reportHintFor in the job's password mode). */
  hintFor?(outcome: ResetOutcome): string | undefined;
  /** Hints a recorded reason may end with (`...; <hint>`): taken off the short reason. */
  knownHints?: readonly string[];
  /** A retry: the original job's row of this user, which the report shows instead of the retry's own. */
  originalRowOf?(outcome: ResetOutcome): number | undefined;
}

export interface WebUi {
  /** The Web UI's address, like `http://localhost:8233`. */
  url: string;
  namespace: string;
}

/**
 * What a job answers when it ends: the summary, and (from jobs that wrote their report since) the failures
 * by cause, which the CLI prints. Optional, because jobs that ended before answer without it.
 */
export interface ReportedJobSummary extends JobSummary {
  failuresByCause?: FailureCause[];
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

/** The CSV report's columns, in order: what an operator reads first comes first. */
export const CSV_COLUMNS = [
  'row',
  'user',
  'status',
  'reason',
  'hint',
  'retryable',
  'workflowId',
  'webUiLink',
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
] as const satisfies readonly (keyof ReportRow)[];

/** Added after CSV_COLUMNS in the reports of jobs with containment (`--confirm-compromised`) only. */
const CONTAINMENT_COLUMNS = [
  'confirmedCompromised',
  'confirmedCompromisedReason',
] as const satisfies readonly (keyof ResetOutcome)[];

export type ReportColumn = (typeof CSV_COLUMNS)[number] | (typeof CONTAINMENT_COLUMNS)[number];

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
 * Each outcome becomes a ReportRow (see reportRow); the JSON summary carries the failures by cause.
 */
export async function writeReport(
  ledgerPath: string,
  paths: { csvPath: string; jsonPath: string },
  header: ReportHeader,
  context: ReportRowContext = {},
): Promise<ReportSummary> {
  const { entries, counts } = await indexLedger(ledgerPath);
  const total = entries.size;
  const columns = reportColumns(header.containment !== undefined);
  const causes = new FailureTally();

  await writeAtomically(paths.csvPath, async function* () {
    yield reportCsvHeader(columns);
    for await (const outcome of outcomesInRowOrder(ledgerPath, entries)) {
      const row = reportRow(outcome, context);
      causes.add(row);
      yield reportCsvLine(row, columns);
    }
  });
  const failuresByCause = causes.result();
  await writeAtomically(paths.jsonPath, async function* () {
    yield `{\n  "job": ${JSON.stringify(header)},\n  "summary": ${JSON.stringify({ total, counts, failuresByCause })},\n  "outcomes": [`;
    let index = 0;
    for await (const outcome of outcomesInRowOrder(ledgerPath, entries)) {
      yield `${index === 0 ? '' : ','}\n    ${JSON.stringify(reportRow(outcome, context))}`;
      index += 1;
    }
    yield `${total === 0 ? '' : '\n  '}]\n}\n`;
  });
  return { total, counts, failuresByCause, csvPath: paths.csvPath, jsonPath: paths.jsonPath };
}

/** The CSV report's columns: CSV_COLUMNS, and the containment columns for a job with containment. */
export function reportColumns(containment: boolean): readonly ReportColumn[] {
  return containment ? [...CSV_COLUMNS, ...CONTAINMENT_COLUMNS] : CSV_COLUMNS;
}

/** The CSV report's first line: the BOM makes Excel read the file as UTF-8, so non-ASCII names are not mangled. */
export function reportCsvHeader(columns: readonly ReportColumn[] = CSV_COLUMNS): string {
  return `\uFEFF${csvLine(columns)}\r\n`;
}

/** One CSV report line, from the one CSV writer (which neutralises formulas). */
export function reportCsvLine(row: ReportRow, columns: readonly ReportColumn[] = CSV_COLUMNS): string {
  // A yes/no cell reads `true` or `false`, as in the JSON report.
  const cells = columns.map((column) => {
    const value = row[column];
    return typeof value === 'boolean' ? String(value) : value;
  });
  return `${csvLine(cells)}\r\n`;
}

/** An outcome as the report shows it: short reason, hint, workflow id and link, the original row for a retry. */
export function reportRow(outcome: ResetOutcome, context: ReportRowContext = {}): ReportRow {
  const row: ReportRow = { ...outcome };
  const originalRow = context.originalRowOf?.(outcome);
  if (originalRow !== undefined && originalRow !== outcome.row) {
    row.row = originalRow;
    row.csvRow = outcome.row;
  }
  if (outcome.reason !== undefined) {
    const short = shortReason(outcome, context.knownHints);
    if (short !== outcome.reason) {
      row.reason = short;
      row.detail = outcome.reason;
    }
  }
  const hint = context.hintFor?.(outcome);
  if (hint) row.hint = hint;
  const workflowId = context.workflowIdOf?.(outcome);
  if (workflowId) {
    row.workflowId = workflowId;
    if (context.webUi) row.webUiLink = webUiLink(context.webUi, workflowId);
  }
  return row;
}

/** The Web UI's page of a workflow: `<ui>/namespaces/<ns>/workflows/<id>` (the id URL-encoded, '/' included). */
export function webUiLink(webUi: WebUi, workflowId: string): string {
  const base = webUi.url.replace(/\/+$/, '');
  return `${base}/namespaces/${encodeURIComponent(webUi.namespace)}/workflows/${encodeURIComponent(workflowId)}`;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * The reason without what the row's other columns already say: the user (`user x: `), Graph's status and
 * code (`Graph answered 403 Authorization_RequestDenied: `), the request-id, and a trailing hint the hint
 * column gives. What is left is Graph's own message and what happened around it; the reason as recorded
 * stays in the JSON report's `detail`. A reason that would be left empty says what kind of answer it was.
 */
export function shortReason(outcome: ResetOutcome, knownHints: readonly string[] = []): string {
  let reason = outcome.reason ?? '';
  if (outcome.user !== '')
    reason = reason.replace(new RegExp(`user ${escapeRegExp(outcome.user)}: `, 'g'), '');
  if (outcome.httpStatus !== undefined && outcome.graphCode !== undefined) {
    const answered = `Graph answered ${outcome.httpStatus} ${escapeRegExp(outcome.graphCode)}`;
    reason = reason.replace(new RegExp(`${answered}(: |(?=[;,)]|$))`, 'g'), '');
  }
  if (outcome.requestId !== undefined) {
    reason = reason.replace(new RegExp(`,? ?request-id ${escapeRegExp(outcome.requestId)}`, 'g'), '');
  }
  // Longest first, so a hint that ends another is not taken off alone.
  for (const hint of [...knownHints].sort((a, b) => b.length - a.length)) {
    reason = reason.split(`; ${hint}`).join('');
  }
  if (reason === outcome.reason) return reason;
  // What a removal left at either end (`: `, `, `); the reason's own text is kept as it was.
  reason = reason.replace(/^[\s:;,]+|[\s:;,]+$/g, '');
  if (reason !== '') return reason;
  if (outcome.httpStatus !== undefined && outcome.httpStatus < 500)
    return 'Graph refused it and gave no message';
  return 'Graph had trouble and gave no message';
}

// ---------------------------------------------------------------------------------------------------------
// Failures by cause

/** A group of failed or unconfirmed rows with one cause, and what to do about them. */
export interface FailureCause {
  /** Graph's error code, or the reason's class (`deadline`, `sign-in`, ...) when Graph gave none. */
  cause: string;
  /** Whether `cause` is Graph's code or a class of reason. */
  kind: 'graphCode' | 'reasonClass';
  count: number;
  /** How many of them failed for a passing reason (`bulk-reset retry` takes them). */
  retryable: number;
  whatToDo: string;
  /** The first few rows, for the operator to look at. */
  rows: number[];
}

/** A cause's sample of rows is this long at most; the causes themselves are few (codes and classes). */
const CAUSE_SAMPLE_ROWS = 5;

/**
 * Reasons without a Graph code, by class: the first pattern that matches names the class. Each says what
 * to do. The patterns follow the reasons the user's workflow records (workflows/resetUser.ts).
 */
const REASON_CLASSES: readonly { cause: string; pattern: RegExp; whatToDo: string }[] = [
  {
    cause: 'no-answer',
    pattern:
      /got no answer|may have been applied|may still complete|could not be confirmed|could not be read/,
    whatToDo: "check the user's lastPasswordChangeDateTime in Entra before resetting again",
  },
  {
    cause: 'sign-in',
    pattern: /sign-in|sign in|token/,
    whatToDo: 'run `bulk-reset login`, then `bulk-reset retry <job>`',
  },
  {
    cause: 'deadline',
    pattern: /deadline|had not finished after/,
    whatToDo: 'Graph was slow: `bulk-reset retry <job>`, with a longer --deadline if it keeps happening',
  },
  {
    cause: 'protected',
    pattern: /^protected/,
    whatToDo: 'the account is on the protected list: reset it by hand if it really must be',
  },
  {
    cause: 'workflow-ended',
    pattern: /ended without an outcome|stopped unexpectedly/,
    whatToDo:
      "open the user's workflow (workflowId) in the Web UI to see why, then `bulk-reset retry --all-failed <job>`",
  },
  {
    cause: 'password-source',
    pattern: /secrets file|newPassword|nothing was sent/,
    whatToDo: 'fix the password source the reason names, then `bulk-reset retry --all-failed <job>`',
  },
];

const OTHER_CAUSE = {
  cause: 'other',
  whatToDo: 'read the reason and detail of these rows in the JSON report',
};

/** The cause of a failed or unconfirmed row: Graph's code if it gave one, else the reason's class. */
export function causeOf(row: Pick<ReportRow, 'graphCode' | 'reason' | 'detail'>): {
  cause: string;
  kind: FailureCause['kind'];
  whatToDo: string;
} {
  if (row.graphCode !== undefined && row.graphCode !== '') {
    return { cause: row.graphCode, kind: 'graphCode', whatToDo: OTHER_CAUSE.whatToDo };
  }
  const reason = row.detail ?? row.reason ?? '';
  const found = REASON_CLASSES.find(({ pattern }) => pattern.test(reason)) ?? OTHER_CAUSE;
  return { cause: found.cause, kind: 'reasonClass', whatToDo: found.whatToDo };
}

/**
 * Counts failed and unconfirmed rows by cause as they stream past (the report is never held whole).
 * A group's advice is the hint of its rows when they have one (a Graph code's hint fits the job's
 * password mode), else the class's own.
 */
export class FailureTally {
  private readonly causes = new Map<string, FailureCause>();

  add(row: ReportRow): void {
    if (row.status !== 'failed' && row.status !== 'unconfirmed') return;
    const { cause, kind, whatToDo } = causeOf(row);
    const key = `${kind}:${cause}`;
    let group = this.causes.get(key);
    if (!group) {
      group = { cause, kind, count: 0, retryable: 0, whatToDo: row.hint ?? whatToDo, rows: [] };
      this.causes.set(key, group);
    }
    group.count += 1;
    if (row.status === 'failed' && row.retryable === true) group.retryable += 1;
    if (group.rows.length < CAUSE_SAMPLE_ROWS) group.rows.push(row.row);
  }

  /** Largest group first; equal groups by cause, so the order is the same every time. */
  result(): FailureCause[] {
    return [...this.causes.values()].sort((a, b) => b.count - a.count || a.cause.localeCompare(b.cause));
  }
}

/** The failed and unconfirmed rows of a report grouped by cause (see FailureTally). */
export function failuresByCause(rows: Iterable<ReportRow>): FailureCause[] {
  const tally = new FailureTally();
  for (const row of rows) tally.add(row);
  return tally.result();
}

// ---------------------------------------------------------------------------------------------------------
// Views of finished reports: a job with its retries, and rows by status

/** A finished job's JSON report as writeReport writes it. */
export interface ReportJson {
  job: ReportHeader & { retriedBy?: string[] };
  summary: { total: number; counts: Record<OutcomeStatus, number>; failuresByCause?: FailureCause[] };
  outcomes: ReportRow[];
}

/**
 * Each user's last outcome across a job and its retries, one row per row of the original report: a
 * retry's row (which carries the original's row number) replaces the original's, later retries replace
 * earlier ones. Each row says which job it comes from (`job`). Retries are given in the order they ran.
 */
export function finalRows(
  original: { jobId: string; outcomes: readonly ReportRow[] },
  retries: readonly { jobId: string; outcomes: readonly ReportRow[] }[],
): ReportRow[] {
  const byRow = new Map<number, ReportRow>();
  for (const outcome of original.outcomes) byRow.set(outcome.row, { ...outcome, job: original.jobId });
  for (const retry of retries) {
    for (const outcome of retry.outcomes) {
      // A row the original does not have is not one of its users: leave it to the retry's own report.
      if (byRow.has(outcome.row)) byRow.set(outcome.row, { ...outcome, job: retry.jobId });
    }
  }
  return [...byRow.values()].sort((a, b) => a.row - b.row);
}

/** The rows whose status is one of `statuses` (all rows when none is given). */
export function rowsWithStatus(rows: readonly ReportRow[], statuses: readonly OutcomeStatus[]): ReportRow[] {
  if (statuses.length === 0) return [...rows];
  const wanted = new Set(statuses);
  return rows.filter((row) => wanted.has(row.status));
}

/** The CSV report of these rows, as writeReport writes it (with the containment columns when asked). */
export function reportCsv(rows: Iterable<ReportRow>, columns: readonly ReportColumn[] = CSV_COLUMNS): string {
  let text = reportCsvHeader(columns);
  for (const row of rows) text += reportCsvLine(row, columns);
  return text;
}

async function writeAtomically(path: string, content: () => AsyncIterable<string>): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: DIRECTORY_MODE });
  await writePrivateFile(path, content(), { replace: true });
}
