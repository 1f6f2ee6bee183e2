/**
 * The one CSV writer: every CSV bulk-reset writes (the report, a retry's user list, `secrets decrypt`)
 * builds its cells here, so what a spreadsheet makes of them is decided in one place.
 *
 * A spreadsheet runs a cell as a formula when it starts with `=`, `+`, `-` or `@` (OWASP's CSV injection
 * guidance), and old Excel runs `|` through DDE. Excel and LibreOffice read full-width forms (`＝`) as
 * the same characters, and some readers trim spaces, tabs and line breaks first. The cell that matters
 * is the one the reader sees, not the one we wrote: a reader that splits on semicolons (Excel in much of
 * Europe) or on tabs ignores our quotes, so `"a;=1+1"` becomes the cells `"a` and `=1+1"`. So a `'` (which
 * makes a spreadsheet show the rest as text) goes before every such character that could begin a cell:
 * at the start of the value, or after a comma, semicolon, tab or line break, with only spaces between.
 *
 * `'`s already in front of one get one more, so the value can be read back exactly: in any cell, remove
 * one `'` where it stands before (`'`s and) one of those characters at such a place. The README says so
 * where it matters (`secrets decrypt`). Generated passwords hold no `'`, comma or semicolon: for them,
 * the rule is "a cell starting with `'` had it added".
 */
import { stringify } from 'csv-stringify/sync';

/** Characters a spreadsheet may take as a cell's end; what follows is read as a new cell. */
const CELL_BOUNDARIES = new Set([',', ';', '\t', '\r', '\n']);
/** What a formula starts with, after Unicode compatibility folding (＝ is =, ＋ is +, and so on). */
const FORMULA_STARTS = new Set(['=', '+', '-', '@', '|']);

/** Whether a spreadsheet may read `char` (one code point) as the start of a formula. */
function startsFormula(char: string): boolean {
  return FORMULA_STARTS.has(char) || FORMULA_STARTS.has(char.normalize('NFKC'));
}

/**
 * The `'`s and the formula character at the very start of `value`, when a spreadsheet would run it as a
 * formula (`"="`, `"'-"`, `"＝"`), else `undefined`. For checks of values that must never be one.
 */
export function formulaStart(value: string): string | undefined {
  const match = /^'*(.)/u.exec(value);
  return match && startsFormula(match[1]) ? match[0] : undefined;
}

/**
 * `value` with a `'` before every formula start a spreadsheet could see (see the module comment); a value
 * with none is returned unchanged.
 */
export function neutraliseCell(value: string): string {
  let result = '';
  // True at the value's start and after a boundary, until something other than a space comes.
  let cellMayStart = true;
  const chars = [...value];
  for (let index = 0; index < chars.length; index++) {
    const char = chars[index];
    if (CELL_BOUNDARIES.has(char)) {
      cellMayStart = true;
    } else if (!/\s/u.test(char)) {
      if (cellMayStart) {
        let next = index;
        while (chars[next] === "'") next++;
        if (next < chars.length && startsFormula(chars[next])) result += "'";
      }
      cellMayStart = false;
    }
    result += char;
  }
  return result;
}

/**
 * One CSV line of these cells, comma-separated, without the line break: each cell neutralised, then
 * written by csv-stringify (RFC 4180 quoting, `"` doubled), which also quotes a cell holding a
 * semicolon or a tab or starting or ending with a space, so a CSV reader gives the text back as
 * written. `quote: 'always'` quotes every cell.
 */
export function csvLine(
  values: readonly (string | number | undefined)[],
  options: CsvCellOptions = {},
): string {
  const cells = values.map((value) => (typeof value === 'string' ? neutraliseCell(value) : value));
  return stringify([cells], {
    eof: false,
    quoted: options.quote === 'always',
    quoted_match: [';', '\t', /^\s/u, /\s$/u],
  });
}

/** One CSV cell (see csvLine). */
export function csvCell(value: string | number | undefined, options?: CsvCellOptions): string {
  return csvLine([value], options);
}

export interface CsvCellOptions {
  /** `needed` (default): only cells that must be quoted; `always`: every cell. */
  quote?: 'needed' | 'always';
}
