/**
 * The one CSV writer: no cell it writes starts a formula in a spreadsheet, however the spreadsheet splits
 * the line, and every value can be read back exactly.
 */
import { parse } from 'csv-parse/sync';
import { scanUserCsvBytes } from '../jobs/csvReader';
import { csvCell, csvLine, formulaStart, neutraliseCell } from '../jobs/csvWriter';
import { retryCsv } from '../client/retry';
import type { ResetOutcome } from '../workflows/types';

/** The inverse the module comment (and the README) describes, written out from the words. */
function readBack(cell: string): string {
  return cell.replace(
    /(^|[,;\t\r\n])([\s,;]*)'(?='*(.))/gu,
    (found: string, boundary: string, spaces: string, next: string) =>
      ['=', '+', '-', '@', '|'].includes(next.normalize('NFKC')) ? `${boundary}${spaces}` : found,
  );
}

describe('neutraliseCell', () => {
  it.each([
    ['=1+1', "'=1+1"],
    ['+1', "'+1"],
    ['-1', "'-1"],
    ['@SUM(A1)', "'@SUM(A1)"],
    ['|calc', "'|calc"],
    ['\uFF1D1+1', "'\uFF1D1+1"],
    ['\uFF0B1', "'\uFF0B1"],
    ['\uFF0D1', "'\uFF0D1"],
    ['\uFF20x', "'\uFF20x"],
    ['\uFE66small equals', "'\uFE66small equals"],
    ['\t=1', "\t'=1"],
    ['\r=1', "\r'=1"],
    [' =1', " '=1"],
    ['\u3000=1', "\u3000'=1"],
    ["'=1", "''=1"],
    ["''-1", "'''-1"],
    ['a;=1+1;@contoso.com', "a;'=1+1;'@contoso.com"],
    ['a, -1', "a, '-1"],
    ['one\n@two', "one\n'@two"],
    ['x;\t =y', "x;\t '=y"],
    ["';'=1", "';''=1"],
  ])('puts a quote before each formula start in %j', (value, expected) => {
    expect(neutraliseCell(value)).toBe(expected);
    expect(readBack(neutraliseCell(value))).toBe(value);
  });

  it.each([
    'alice@contoso.com',
    '',
    "'already",
    "o'brien@contoso.com",
    'a=b',
    'a-b+c@d',
    'x;y',
    '3f2504e0-4f89-41d3-9a0c-0305e82c3301',
    'request 1f2e-3d4c',
  ])('leaves %j alone', (value) => {
    expect(neutraliseCell(value)).toBe(value);
  });
});

describe('formulaStart', () => {
  it('names the start of a value a spreadsheet would run, quotes included', () => {
    expect(formulaStart('=x')).toBe('=');
    expect(formulaStart("''-x")).toBe("''-");
    expect(formulaStart('\uFF20x')).toBe('\uFF20');
    expect(formulaStart("'bob@contoso.com")).toBeUndefined();
    expect(formulaStart('')).toBeUndefined();
  });
});

describe('csvCell and csvLine', () => {
  it('quote what a reader must not split or trim, and round-trip through a CSV parser', () => {
    const values = ['plain', 'a,b', 'a;b', 'say "hi"', 'two\nlines', ' padded ', 'tab\there', '=1'];
    const line = csvLine(values);
    expect(line).toBe('plain,"a,b","a;b","say ""hi""","two\nlines"," padded ","tab\there",\'=1');
    const records: string[][] = parse(line);
    expect(records[0].map(readBack)).toEqual(values);
  });

  it('writes numbers as they are, nothing for undefined, and quotes every cell when asked', () => {
    expect(csvLine([2, undefined, 'x'])).toBe('2,,x');
    expect(csvCell(-1)).toBe('-1');
    expect(csvLine([2, 'x', '-y'], { quote: 'always' })).toBe('"2","x","\'-y"');
  });
});

describe('retryCsv', () => {
  it('gives the CSV reader back every user exactly, by the kind they were named by', () => {
    const users = [
      'alice@contoso.com',
      "o'brien@contoso.com",
      'alice_fabrikam.com#EXT#@contoso.onmicrosoft.com',
      '3F2504E0-4F89-41D3-9A0C-0305E82C3301',
    ];
    const outcomes = users.map((user, index): ResetOutcome => ({
      row: index + 2,
      user,
      status: 'failed',
      polls: 0,
      startAttempts: 1,
    }));
    const rows = scanUserCsvBytes(Buffer.from(retryCsv(outcomes)), 'retry.csv');
    expect(rows.map((row) => (row.disposition === 'run' ? [row.user, row.idKind] : row.reason))).toEqual([
      ['alice@contoso.com', 'userPrincipalName'],
      ["o'brien@contoso.com", 'userPrincipalName'],
      ['alice_fabrikam.com#EXT#@contoso.onmicrosoft.com', 'userPrincipalName'],
      ['3F2504E0-4F89-41D3-9A0C-0305E82C3301', 'id'],
    ]);
  });
});
