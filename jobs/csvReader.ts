/**
 * The one CSV reader: turns the operator's user list into rows, each with exactly one disposition
 * (`run`, `invalid` or `duplicate`). Problems with the file as a whole throw a `CsvInputError` that names
 * the line and says what to do. Pure Node: no Temporal here, so it is tested on its own.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { isUtf8 } from 'node:buffer';
import { parse, type CsvError } from 'csv-parse/sync';
import type { UserIdKind } from '../workflows/types';
import { formulaStart } from './csvWriter';
import { MAX_PASSWORD_LENGTH } from '../secrets/passwords';

/** A problem with the CSV file as a whole: nothing in it should run until the operator fixes it. */
export class CsvInputError extends Error {
  /** The file's line (1-based) the problem was found on, when known. */
  readonly line?: number;

  constructor(message: string, line?: number) {
    super(message);
    this.name = 'CsvInputError';
    if (line !== undefined) this.line = line;
  }
}

export interface CsvScanOptions {
  /** Largest file accepted, in bytes. Default 64 MiB. */
  maxBytes?: number;
  /** Most data rows accepted (blank lines do not count). Default 200,000. */
  maxRows?: number;
  /** Longest field accepted, in characters; a longer one makes its row invalid. Default 1,024. */
  maxFieldLength?: number;
  /**
   * What to do with a `newPassword` column: `require` it (password mode `csv`: every runnable row carries
   * its password, an empty cell makes the row invalid), `refuse` a file that has one (the other modes: the
   * operator would believe those passwords are used), or `ignore` it (default; e.g. a plan). The password
   * is never quoted in a reason.
   */
  passwordColumn?: 'require' | 'refuse' | 'ignore';
}

export type ScannedRow =
  | { row: number; disposition: 'run'; user: string; idKind: UserIdKind; newPassword?: string }
  | { row: number; disposition: 'invalid' | 'duplicate'; user: string; reason: string };

const DEFAULT_MAX_BYTES = 64 * 1024 * 1024;
const DEFAULT_MAX_ROWS = 200_000;
const DEFAULT_MAX_FIELD_LENGTH = 1024;

/**
 * Entra ID's rules for a userPrincipalName (Microsoft Entra documentation, "Password policies and account
 * restrictions in Microsoft Entra ID", username policies): at most 113 characters, at most 64 before the
 * '@' and 48 after it; before the '@' only ASCII letters and digits and the symbols ' . - _ ! # ^ ~, and
 * no '.' right before the '@'. A guest's `name_fabrikam.com#EXT#@…` keeps to that. No semicolon, comma,
 * quote, space, '+', '&', '=' or accented letter, so a name that holds one cannot be a user's, and is
 * refused before it reaches a report where a spreadsheet could split it into cells.
 */
const MAX_UPN_LENGTH = 113;
const MAX_UPN_LOCAL_LENGTH = 64;
const MAX_UPN_DOMAIN_LENGTH = 48;
const UPN_LOCAL_CHARACTER = /^[A-Za-z0-9'.\-_!#^~]$/;
/** A domain name's labels: ASCII letters, digits and '-' (an international name in its xn-- form). */
const DOMAIN_CHARACTER = /^[A-Za-z0-9-]$/;
/** How much of an offending value a reason quotes. */
const ECHO_LIMIT = 40;

/** An Entra object id as Graph prints it: the one pattern every file format checks ids against. */
export const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
// eslint-disable-next-line no-control-regex
const WHITESPACE_OR_CONTROL = /[\s\u0000-\u001f\u007f-\u009f]/u;

const UPN_HEADERS = ['userprincipalname', 'upn'];
const ID_HEADERS = ['id', 'objectid', 'userid'];
const ACCEPTED_HEADERS = 'userPrincipalName or upn (sign-in names), id, objectId or userId (object ids)';
const PASSWORD_HEADER = 'newpassword';

/**
 * Why `value` cannot name a user of the given kind, in words an operator can act on, or `undefined` when
 * it can. `value` is checked as given: trim it first.
 */
export function validateUser(value: string, idKind: UserIdKind): string | undefined {
  if (value === '') return `no ${idKind} value`;
  const shown = echo(value);
  if (idKind === 'id') {
    return GUID.test(value)
      ? undefined
      : `${shown} is not a valid id (expected a GUID like 00000000-0000-0000-0000-000000000000)`;
  }
  const problem = upnProblem(value);
  return problem === undefined
    ? undefined
    : `${shown} is not a valid userPrincipalName (${problem}; expected name@domain)`;
}

function upnProblem(value: string): string | undefined {
  if (value.length > MAX_UPN_LENGTH) return `longer than ${MAX_UPN_LENGTH} characters`;
  if (WHITESPACE_OR_CONTROL.test(value)) return 'contains whitespace or a control character';
  // A value starting like a spreadsheet formula is never a real UPN: refuse it rather than guess.
  const formula = formulaStart(value);
  if (formula !== undefined) return `starts with "${formula}"`;
  const at = value.split('@');
  if (at.length !== 2) return at.length === 1 ? "has no '@'" : "has more than one '@'";
  const [local, domain] = at as [string, string];
  if (local === '') return "nothing before the '@'";
  if (domain === '') return "nothing after the '@'";
  const badLocal = [...local].find((char) => !UPN_LOCAL_CHARACTER.test(char));
  if (badLocal !== undefined) {
    return `${JSON.stringify(badLocal)} is not a character Entra ID allows before the '@'`;
  }
  if (local.endsWith('.')) return "has a '.' right before the '@'";
  if (local.length > MAX_UPN_LOCAL_LENGTH)
    return `more than ${MAX_UPN_LOCAL_LENGTH} characters before the '@'`;
  const labels = domain.split('.');
  if (labels.length < 2) return `domain "${domain}" has no '.'`;
  if (labels.some((label) => label === '')) return `domain "${domain}" has an empty part`;
  const badDomain = [...domain].find((char) => char !== '.' && !DOMAIN_CHARACTER.test(char));
  if (badDomain !== undefined) {
    return `domain "${domain}" has ${JSON.stringify(badDomain)}, which a domain name cannot hold`;
  }
  if (domain.length > MAX_UPN_DOMAIN_LENGTH) {
    return `more than ${MAX_UPN_DOMAIN_LENGTH} characters after the '@'`;
  }
  return undefined;
}

/** Lower-case hex SHA-256 of the file's bytes, read as a stream. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * Reads the whole CSV and yields one `ScannedRow` per data row, in file order. The file is checked
 * completely before the first row is yielded, so a broken file throws `CsvInputError` and yields nothing.
 */
export async function* scanUserCsv(path: string, options: CsvScanOptions = {}): AsyncGenerator<ScannedRow> {
  const limits = withDefaults(options);
  yield* scanBytes(path, await readLimited(path, limits.maxBytes), limits);
}

function withDefaults(options: CsvScanOptions): Required<CsvScanOptions> {
  return {
    maxBytes: options.maxBytes ?? DEFAULT_MAX_BYTES,
    maxRows: options.maxRows ?? DEFAULT_MAX_ROWS,
    maxFieldLength: options.maxFieldLength ?? DEFAULT_MAX_FIELD_LENGTH,
    passwordColumn: options.passwordColumn ?? 'ignore',
  };
}

/**
 * The same as `scanUserCsv` for a CSV already in memory; `name` is how error messages refer to it.
 * Throws only `CsvInputError`.
 */
export function scanUserCsvBytes(bytes: Buffer, name: string, options: CsvScanOptions = {}): ScannedRow[] {
  const limits = withDefaults(options);
  if (bytes.length > limits.maxBytes) throw tooBig(name, limits.maxBytes);
  return scanBytes(name, bytes, limits);
}

/**
 * The `newPassword` of every runnable row (by row number) of a CSV that must still have the SHA-256 the job
 * was started with. The hash is taken over the very bytes that are parsed, so a file changed after the job
 * started cannot slip in other passwords. For the worker that sends the reset in password mode `csv`.
 */
export async function readCsvPasswords(
  path: string,
  expectedSha256: string,
  options: CsvScanOptions = {},
): Promise<Map<number, string>> {
  const limits = { ...withDefaults(options), passwordColumn: 'require' as const };
  const bytes = await readLimited(path, limits.maxBytes);
  const actual = createHash('sha256').update(bytes).digest('hex');
  if (actual !== expectedSha256) {
    throw new CsvInputError(
      `${path} changed after the job was started (its SHA-256 is now ${actual.slice(0, 12)}…, expected ${expectedSha256.slice(0, 12)}…); its passwords are not used: start a new job with the file as it is now`,
    );
  }
  const passwords = new Map<number, string>();
  for (const row of scanBytes(path, bytes, limits)) {
    if (row.disposition === 'run' && row.newPassword !== undefined) passwords.set(row.row, row.newPassword);
  }
  return passwords;
}

function scanBytes(path: string, raw: Buffer, limits: Required<CsvScanOptions>): ScannedRow[] {
  const bytes = stripUtf8Bom(raw);
  const lines = new LineIndex(bytes);
  checkEncoding(path, bytes, lines);

  const records = parseRecords(path, bytes, lines);
  const headerAt = records.findIndex((record) => !isBlank(record.fields));
  if (headerAt === -1) {
    throw new CsvInputError(
      `${path} has no header line; put a header such as userPrincipalName (or id) on line 1`,
      1,
    );
  }
  const header = records[headerAt];
  const columns = findUserColumns(path, header, limits.passwordColumn);

  const result: ScannedRow[] = [];
  const firstRowOf = new Map<string, number>();
  for (const record of records.slice(headerAt + 1)) {
    if (isBlank(record.fields)) continue;
    if (result.length === limits.maxRows) {
      throw new CsvInputError(
        `${path} has more than ${limits.maxRows} data rows (line ${record.line} is row ${limits.maxRows + 1}); ` +
          'split it into several jobs or raise the row limit',
        record.line,
      );
    }
    result.push(scanRecord(record, header.fields.length, columns, limits.maxFieldLength, firstRowOf));
  }
  return result;
}

interface CsvRecord {
  /** Line of the file the record starts on. */
  line: number;
  fields: string[];
}

interface UserColumns {
  upn?: number;
  id?: number;
  /** The newPassword column, when it is required. */
  password?: number;
}

function scanRecord(
  record: CsvRecord,
  headerWidth: number,
  columns: UserColumns,
  maxFieldLength: number,
  firstRowOf: Map<string, number>,
): ScannedRow {
  const row = record.line;
  const id = fieldAt(record, columns.id);
  const upn = fieldAt(record, columns.upn);
  // With both columns, the id wins when the row has one: it cannot be mistyped into another user's name.
  const idKind: UserIdKind = columns.upn === undefined || id !== '' ? 'id' : 'userPrincipalName';
  const user = idKind === 'id' ? id : upn;

  const tooLong = record.fields.findIndex((field) => field.length > maxFieldLength);
  if (tooLong !== -1) {
    const field = record.fields[tooLong];
    return {
      row,
      disposition: 'invalid',
      user: user.length > maxFieldLength ? truncate(user) : user,
      reason:
        `field ${tooLong + 1} is ${field.length} characters long (limit ${maxFieldLength})` +
        (tooLong === columns.password ? '' : `: ${echo(field)}`),
    };
  }
  const extra = record.fields.slice(headerWidth).filter((field) => field.trim() !== '');
  if (extra.length > 0) {
    return {
      row,
      disposition: 'invalid',
      user,
      reason:
        `the row has ${record.fields.length} fields but the header has ${headerWidth}, so its columns ` +
        'cannot be trusted; quote values that contain the delimiter',
    };
  }
  if (user === '') {
    const wanted = columns.id !== undefined && columns.upn !== undefined ? 'id or userPrincipalName' : idKind;
    const short =
      record.fields.length < headerWidth
        ? ` (the row has ${record.fields.length} of ${headerWidth} fields)`
        : '';
    return { row, disposition: 'invalid', user, reason: `no ${wanted} value${short}` };
  }
  const problem = validateUser(user, idKind);
  if (problem !== undefined) return { row, disposition: 'invalid', user, reason: problem };
  const newPassword = columns.password === undefined ? undefined : fieldAt(record, columns.password);
  if (newPassword === '') {
    return {
      row,
      disposition: 'invalid',
      user,
      reason: 'no newPassword value (password mode csv needs one on every row)',
    };
  }
  if (newPassword !== undefined && newPassword.length > MAX_PASSWORD_LENGTH) {
    return {
      row,
      disposition: 'invalid',
      user,
      reason: `the newPassword is longer than Entra ID's ${MAX_PASSWORD_LENGTH} characters`,
    };
  }

  const key = user.toLowerCase();
  const first = firstRowOf.get(key);
  if (first !== undefined)
    return { row, disposition: 'duplicate', user, reason: `duplicate of row ${first}` };
  firstRowOf.set(key, row);
  return newPassword === undefined
    ? { row, disposition: 'run', user, idKind }
    : { row, disposition: 'run', user, idKind, newPassword };
}

function fieldAt(record: CsvRecord, column: number | undefined): string {
  return column === undefined ? '' : (record.fields[column] ?? '').trim();
}

function findUserColumns(
  path: string,
  header: CsvRecord,
  passwordColumn: Required<CsvScanOptions>['passwordColumn'],
): UserColumns {
  const names = header.fields.map((name) => name.trim().toLowerCase());
  const upn = names.flatMap((name, index) => (UPN_HEADERS.includes(name) ? [index] : []));
  const id = names.flatMap((name, index) => (ID_HEADERS.includes(name) ? [index] : []));
  const found = `found ${header.fields.map((name) => JSON.stringify(name.trim())).join(', ')}`;
  if (upn.length === 0 && id.length === 0) {
    throw new CsvInputError(
      `${path} line ${header.line}: the header has no user column (${found}); ` +
        `name the column ${ACCEPTED_HEADERS}`,
      header.line,
    );
  }
  for (const [kind, indexes] of [
    ['userPrincipalName', upn],
    ['id', id],
  ] as const) {
    if (indexes.length > 1) {
      const which = indexes.map((index) => JSON.stringify(header.fields[index].trim())).join(' and ');
      throw new CsvInputError(
        `${path} line ${header.line}: the header names the ${kind} column more than once (${which}); ` +
          'keep one of them',
        header.line,
      );
    }
  }
  const password = names.flatMap((name, index) => (name === PASSWORD_HEADER ? [index] : []));
  if (passwordColumn === 'refuse' && password.length > 0) {
    throw new CsvInputError(
      `${path} line ${header.line}: the header has a newPassword column, but this job's passwords do not come ` +
        'from the CSV; start it with --password csv to use them, or remove the column',
      header.line,
    );
  }
  if (passwordColumn === 'require' && password.length !== 1) {
    throw new CsvInputError(
      `${path} line ${header.line}: password mode csv needs exactly one newPassword column (${found})`,
      header.line,
    );
  }
  return { upn: upn[0], id: id[0], password: passwordColumn === 'require' ? password[0] : undefined };
}

function isBlank(fields: string[]): boolean {
  return fields.every((field) => field.trim() === '');
}

async function readLimited(path: string, maxBytes: number): Promise<Buffer> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    throw new CsvInputError(`cannot open ${path}: ${(error as Error).message}`);
  }
  try {
    const { size } = await handle.stat();
    if (size > maxBytes) throw tooBig(path, maxBytes);
    // Read one byte past the limit so a file that grew since stat() is still caught.
    const buffer = Buffer.alloc(Math.min(size, maxBytes) + 1);
    let length = 0;
    while (length < buffer.length) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    if (length > maxBytes) throw tooBig(path, maxBytes);
    return buffer.subarray(0, length);
  } finally {
    await handle.close();
  }
}

function tooBig(path: string, maxBytes: number): CsvInputError {
  return new CsvInputError(
    `${path} is larger than the ${maxBytes}-byte limit; split it into several jobs or raise the size limit`,
  );
}

function stripUtf8Bom(bytes: Buffer): Buffer {
  return bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? bytes.subarray(3) : bytes;
}

function checkEncoding(path: string, bytes: Buffer, lines: LineIndex): void {
  if ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff)) {
    throw new CsvInputError(
      `${path} is saved as UTF-16 (Excel's "Unicode Text"); save it as "CSV UTF-8 (Comma delimited)"`,
      1,
    );
  }
  // NUL bytes first: UTF-16 without a BOM is full of them, and calling it "not UTF-8" would hide why.
  const nul = bytes.indexOf(0);
  if (nul !== -1) {
    const line = lines.lineAt(nul);
    throw new CsvInputError(
      `${path} contains a NUL byte on line ${line}, so it is not a text CSV (UTF-16 without a BOM?); ` +
        'save it as CSV UTF-8',
      line,
    );
  }
  if (!isUtf8(bytes)) {
    const line = lines.lineAt(firstInvalidUtf8(bytes));
    throw new CsvInputError(`${path} is not valid UTF-8 (near line ${line}); save it as CSV UTF-8`, line);
  }
}

/** Offset of the first byte that does not start a well-formed UTF-8 sequence. */
function firstInvalidUtf8(bytes: Buffer): number {
  let at = 0;
  while (at < bytes.length) {
    const lead = bytes[at];
    const length =
      lead < 0x80
        ? 1
        : lead >= 0xc2 && lead <= 0xdf
          ? 2
          : lead >= 0xe0 && lead <= 0xef
            ? 3
            : lead >= 0xf0 && lead <= 0xf4
              ? 4
              : 0;
    if (length === 0 || at + length > bytes.length) return at;
    for (let next = 1; next < length; next++) {
      if ((bytes[at + next] & 0xc0) !== 0x80) return at;
    }
    // Overlong forms, surrogates and code points past U+10FFFF.
    const second = bytes[at + 1];
    if (
      (lead === 0xe0 && second < 0xa0) ||
      (lead === 0xed && second > 0x9f) ||
      (lead === 0xf0 && second < 0x90) ||
      (lead === 0xf4 && second > 0x8f)
    ) {
      return at;
    }
    at += length;
  }
  return bytes.length;
}

function parseRecords(path: string, bytes: Buffer, lines: LineIndex): CsvRecord[] {
  const records: CsvRecord[] = [];
  // Where the record being parsed starts: the end of the previous one (blank lines are records too).
  let recordStart = 0;
  try {
    parse(bytes, {
      delimiter: detectDelimiter(bytes),
      // Files pasted together from several editors mix line endings; csv-parse would otherwise settle on
      // the first one it meets and read the others as part of a field.
      record_delimiter: ['\r\n', '\n', '\r'],
      relax_column_count: true,
      // Spaces around a quoted field ( "a" , "b" ) are a typing habit, not an error.
      trim: true,
      // Field lengths are checked per row against maxFieldLength; the file size caps the rest.
      max_record_size: 0,
      on_record: (fields: string[], context) => {
        records.push({ line: lines.lineAt(recordStart), fields });
        recordStart = context.bytes;
        return null;
      },
    });
  } catch (error) {
    // A header without a user column is the first thing to fix: a later row only looks broken because
    // the header's delimiter could not be told.
    const header = records.find((record) => !isBlank(record.fields));
    if (header) findUserColumns(path, header, 'ignore');
    const line = lines.lineAt(recordStart);
    throw new CsvInputError(`${path} line ${line}: ${describeParseError(error as CsvError)}`, line);
  }
  return records;
}

function describeParseError(error: CsvError): string {
  const stray = 'check for a stray " character (a " inside a quoted field must be doubled: "")';
  switch (error.code) {
    case 'CSV_QUOTE_NOT_CLOSED':
      return `a quoted field is not closed; ${stray}`;
    case 'CSV_INVALID_CLOSING_QUOTE':
    case 'CSV_NON_TRIMABLE_CHAR_AFTER_CLOSING_QUOTE':
      return `a quoted field is closed by a " that is followed by more text; ${stray}`;
    case 'INVALID_OPENING_QUOTE':
      return `a " appears inside a field that is not quoted; ${stray}, or quote the whole field`;
    default:
      return `the CSV cannot be read (${error.message})`;
  }
}

/**
 * Comma or semicolon (Excel in many European locales): the one that makes the header name a user column,
 * comma first. When neither does, the one the header reads cleanly with (no stray quote), then the one
 * that splits it into more names (comma on a tie), so the error lists the header's names as the operator
 * wrote them.
 */
function detectDelimiter(bytes: Buffer): string {
  const text = bytes.toString('utf8');
  const [byComma, bySemicolon] = [firstRecordFields(text, ','), firstRecordFields(text, ';')];
  const namesUser = (split: HeaderSplit) =>
    split.fields.some((name) => [...UPN_HEADERS, ...ID_HEADERS].includes(name.trim().toLowerCase()));
  if (namesUser(byComma)) return ',';
  if (namesUser(bySemicolon)) return ';';
  if (byComma.clean !== bySemicolon.clean) return byComma.clean ? ',' : ';';
  return bySemicolon.fields.length > byComma.fields.length ? ';' : ',';
}

interface HeaderSplit {
  fields: string[];
  /** False when a quote appears inside a field that does not start with one: csv-parse would refuse it. */
  clean: boolean;
}

/**
 * The fields of the first record that is not blank, split on `delimiter` outside quotes (a quoted name
 * may hold the other delimiter or a line break), with the quotes taken out.
 */
function firstRecordFields(text: string, delimiter: string): HeaderSplit {
  let fields: string[] = [];
  let field = '';
  let quoted = false;
  let clean = true;
  for (let at = 0; at <= text.length; at++) {
    const char = text[at];
    if (quoted) {
      if (char === undefined) break;
      if (char !== '"') field += char;
      else if (text[at + 1] === '"') field += text[at++];
      else quoted = false;
    } else if (char === '"') {
      if (field.trim() !== '') clean = false;
      quoted = true;
    } else if (char === delimiter) {
      fields.push(field);
      field = '';
    } else if (char === '\n' || char === '\r' || char === undefined) {
      fields.push(field);
      field = '';
      if (fields.some((name) => name.trim() !== '')) return { fields, clean };
      fields = [];
      clean = true;
    } else {
      field += char;
    }
  }
  fields.push(field);
  return { fields, clean };
}

/** Maps byte offsets to 1-based line numbers; LF, CRLF and a lone CR each end a line. */
class LineIndex {
  private readonly starts: number[] = [0];

  constructor(bytes: Buffer) {
    for (let at = 0; at < bytes.length; at++) {
      const byte = bytes[at];
      if (byte === 0x0a || (byte === 0x0d && bytes[at + 1] !== 0x0a)) this.starts.push(at + 1);
    }
  }

  lineAt(offset: number): number {
    let low = 0;
    let high = this.starts.length - 1;
    while (low < high) {
      const middle = (low + high + 1) >> 1;
      if (this.starts[middle] <= offset) low = middle;
      else high = middle - 1;
    }
    return low + 1;
  }
}

function truncate(value: string): string {
  return value.length > ECHO_LIMIT ? `${value.slice(0, ECHO_LIMIT)}…` : value;
}

/** The value as a reason quotes it: JSON-escaped (control characters stay visible) and cut short. */
function echo(value: string): string {
  return JSON.stringify(truncate(value));
}
