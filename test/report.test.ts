import { appendFile, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { appendOutcomes, readLedger, summarise, writeReport, type ReportHeader } from '../jobs/report';
import type { ResetOutcome } from '../workflows/types';

let directory: string;

beforeEach(async () => {
  directory = await mkdtemp(join(tmpdir(), 'report-'));
});

afterEach(async () => {
  await rm(directory, { recursive: true, force: true });
});

function outcome(row: number, fields: Partial<ResetOutcome> = {}): ResetOutcome {
  return { row, user: `user${row}@contoso.com`, status: 'succeeded', polls: 1, startAttempts: 1, ...fields };
}

const header: ReportHeader = {
  jobId: 'job-1',
  csvPath: '/incident/users.csv',
  csvSha256: 'ab'.repeat(32),
  startedAt: '2024-06-11T10:00:00.000Z',
  finishedAt: '2024-06-11T10:05:00.000Z',
};

describe('appendOutcomes and readLedger', () => {
  it('returns no outcomes for a ledger that does not exist yet', async () => {
    expect(await readLedger(join(directory, 'missing.jsonl'))).toEqual([]);
  });

  it('creates the ledger 0600 in a new 0700 directory, one JSON object per line', async () => {
    const ledger = join(directory, 'jobs', 'job-1', 'ledger.jsonl');
    await appendOutcomes(ledger, [outcome(2), outcome(3)]);
    await appendOutcomes(ledger, [outcome(4)]);
    expect((await stat(ledger)).mode & 0o777).toBe(0o600);
    expect((await stat(join(directory, 'jobs', 'job-1'))).mode & 0o777).toBe(0o700);
    const lines = (await readFile(ledger, 'utf8')).split('\n');
    expect(lines).toHaveLength(4);
    expect(lines[3]).toBe('');
    expect(lines.slice(0, 3).map((line) => (JSON.parse(line) as ResetOutcome).row)).toEqual([2, 3, 4]);
  });

  it('keeps the first outcome of a row appended twice by a retry, and sorts by row', async () => {
    const ledger = join(directory, 'ledger.jsonl');
    await appendOutcomes(ledger, [outcome(9), outcome(3, { status: 'failed', reason: 'first' })]);
    await appendOutcomes(ledger, [outcome(3, { status: 'succeeded' }), outcome(1), outcome(9, { polls: 7 })]);
    const outcomes = await readLedger(ledger);
    expect(outcomes.map((item) => item.row)).toEqual([1, 3, 9]);
    expect(outcomes[1]).toMatchObject({ status: 'failed', reason: 'first' });
    expect(outcomes[2]).toMatchObject({ polls: 1 });
  });

  it('ignores a truncated last line left by a crash mid-write', async () => {
    const ledger = join(directory, 'ledger.jsonl');
    await appendOutcomes(ledger, [outcome(2), outcome(3)]);
    await appendFile(ledger, JSON.stringify(outcome(4)).slice(0, 25));
    expect((await readLedger(ledger)).map((item) => item.row)).toEqual([2, 3]);
  });

  it('keeps appending cleanly after a truncated line', async () => {
    const ledger = join(directory, 'ledger.jsonl');
    await appendOutcomes(ledger, [outcome(2)]);
    await appendFile(ledger, '{"row":3,"us');
    await appendOutcomes(ledger, [outcome(3), outcome(4)]);
    expect((await readLedger(ledger)).map((item) => item.row)).toEqual([2, 3, 4]);
  });

  it('refuses a file whose lines are JSON but not outcomes', async () => {
    const ledger = join(directory, 'other.jsonl');
    await writeFile(ledger, '{"hello":"world"}\n');
    await expect(readLedger(ledger)).rejects.toThrow(/line 1 is not a reset outcome/);
  });
});

describe('summarise', () => {
  it('counts every status, with zero for those no row has', () => {
    expect(summarise([])).toEqual({ succeeded: 0, failed: 0, unconfirmed: 0, skipped: 0, cancelled: 0 });
    expect(
      summarise([
        outcome(1),
        outcome(2, { status: 'failed' }),
        outcome(3, { status: 'failed' }),
        outcome(4, { status: 'unconfirmed' }),
        outcome(5, { status: 'skipped' }),
        outcome(6, { status: 'cancelled' }),
      ]),
    ).toEqual({ succeeded: 1, failed: 2, unconfirmed: 1, skipped: 1, cancelled: 1 });
  });
});

describe('writeReport', () => {
  const awkward: ResetOutcome[] = [
    outcome(5, {
      user: '=HYPERLINK("http://evil")',
      status: 'skipped',
      reason: '"=HYPERLINK(\\"http://evil\\")" is not a valid userPrincipalName, see "docs"\nline two',
      polls: 0,
      startAttempts: 0,
    }),
    outcome(2, {
      status: 'failed',
      reason: '-403 refused, with a comma',
      operationId: 'op-1',
      polls: 3,
      startAttempts: 2,
      httpStatus: 403,
      graphCode: 'Authorization_RequestDenied',
      requestId: '1f2e3d4c',
      startedAt: '2024-06-11T10:01:00.000Z',
      finishedAt: '2024-06-11T10:02:00.000Z',
    }),
    outcome(3, { status: 'unconfirmed', reason: '@mention' }),
    outcome(4, { status: 'cancelled', reason: 'job cancelled by operator' }),
    outcome(2, { status: 'succeeded' }),
  ];

  async function writeAwkwardReport() {
    const ledger = join(directory, 'ledger.jsonl');
    await appendOutcomes(ledger, awkward);
    const paths = {
      csvPath: join(directory, 'out', 'report.csv'),
      jsonPath: join(directory, 'out', 'report.json'),
    };
    return { paths, summary: await writeReport(ledger, paths, header) };
  }

  it('summarises the deduplicated outcomes and returns where it wrote them', async () => {
    const { paths, summary } = await writeAwkwardReport();
    expect(summary).toEqual({
      total: 4,
      counts: { succeeded: 0, failed: 1, unconfirmed: 1, skipped: 1, cancelled: 1 },
      ...paths,
    });
  });

  it('writes a CSV with the documented columns that round-trips through a CSV parser, formulas neutralised', async () => {
    const { paths } = await writeAwkwardReport();
    const rows = parse<Record<string, string>>(await readFile(paths.csvPath), { bom: true, columns: true });
    expect(Object.keys(rows[0])).toEqual([
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
    ]);
    expect(rows.map((row) => row.row)).toEqual(['2', '3', '4', '5']);
    expect(rows[0]).toEqual({
      row: '2',
      user: 'user2@contoso.com',
      status: 'failed',
      reason: "'-403 refused, with a comma",
      operationId: 'op-1',
      polls: '3',
      startAttempts: '2',
      ambiguousResends: '',
      httpStatus: '403',
      graphCode: 'Authorization_RequestDenied',
      requestId: '1f2e3d4c',
      startedAt: '2024-06-11T10:01:00.000Z',
      finishedAt: '2024-06-11T10:02:00.000Z',
      confirmedBy: '',
    });
    expect(rows[1]).toMatchObject({ reason: "'@mention", httpStatus: '', requestId: '' });
    expect(rows[3]).toMatchObject({
      user: `'=HYPERLINK("http://evil")`,
      reason: awkward[0].reason,
      polls: '0',
    });
  });

  it('neutralises full-width formula starts and formulas a semicolon or line break would start, in every reader', async () => {
    const ledger = join(directory, 'ledger.jsonl');
    const hostile: ResetOutcome[] = [
      outcome(2, { user: '\uFF1DHYPERLINK("http://evil")', status: 'skipped', reason: 'not a user' }),
      outcome(3, { user: '\uFF0B1', status: 'skipped', reason: '\uFF20SUM(1)' }),
      outcome(4, { user: 'a;=1+1;@contoso.com', status: 'skipped', reason: '"a;=1+1;@contoso.com" is bad' }),
      outcome(5, { user: 'x,\uFF0D1', status: 'skipped', reason: 'one\n=cmd|calc' }),
      outcome(6, { user: '|calc', status: 'skipped', reason: 'x; -1' }),
    ];
    await appendOutcomes(ledger, hostile);
    const paths = { csvPath: join(directory, 'h.csv'), jsonPath: join(directory, 'h.json') };
    await writeReport(ledger, paths, header);
    const text = (await readFile(paths.csvPath, 'utf8')).replace(/^\uFEFF/, '');

    // Read as the comma CSV it is, each user cell is the user with a ' before each formula start.
    const rows = parse<Record<string, string>>(text, { columns: true });
    expect(rows.map((row) => row.user)).toEqual([
      '\'\uFF1DHYPERLINK("http://evil")',
      "'\uFF0B1",
      "a;'=1+1;'@contoso.com",
      "x,'\uFF0D1",
      "'|calc",
    ]);
    expect(rows.map((row) => row.reason)).toEqual([
      'not a user',
      "'\uFF20SUM(1)",
      `"a;'=1+1;'@contoso.com" is bad`,
      "one\n'=cmd|calc",
      "x; '-1",
    ]);

    // Read by a spreadsheet that splits on semicolons, commas or line breaks (quotes then mean
    // nothing), no cell starts a formula.
    const cells = text.split(/[,;\r\n]/).map((cell) => cell.replace(/^[\s"]+/, ''));
    const formulas = cells.filter((cell) => /^[=+\-@|]/.test(cell.normalize('NFKC')));
    expect(formulas).toEqual([]);
  });

  it('writes the JSON report with the job header, the summary and every outcome unaltered', async () => {
    const { paths } = await writeAwkwardReport();
    const report = JSON.parse(await readFile(paths.jsonPath, 'utf8')) as unknown;
    expect(report).toEqual({
      job: header,
      summary: { total: 4, counts: { succeeded: 0, failed: 1, unconfirmed: 1, skipped: 1, cancelled: 1 } },
      outcomes: [awkward[1], awkward[2], awkward[3], awkward[0]],
    });
  });

  it('writes both files 0600 and leaves no temporary files behind', async () => {
    const { paths } = await writeAwkwardReport();
    expect((await stat(paths.csvPath)).mode & 0o777).toBe(0o600);
    expect((await stat(paths.jsonPath)).mode & 0o777).toBe(0o600);
    expect((await readdir(join(directory, 'out'))).sort()).toEqual(['report.csv', 'report.json']);
  });

  it('replaces an existing report and handles an empty ledger', async () => {
    const { paths } = await writeAwkwardReport();
    const summary = await writeReport(join(directory, 'empty.jsonl'), paths, header);
    expect(summary.total).toBe(0);
    expect(JSON.parse(await readFile(paths.jsonPath, 'utf8'))).toMatchObject({ outcomes: [] });
    expect(parse(await readFile(paths.csvPath), { bom: true })).toHaveLength(1);
  });

  it('writes a large report intact', async () => {
    const ledger = join(directory, 'ledger.jsonl');
    const many = Array.from({ length: 5000 }, (_unused, index) =>
      outcome(index + 2, { reason: 'x'.repeat(50) }),
    );
    await appendOutcomes(ledger, many);
    const paths = { csvPath: join(directory, 'big.csv'), jsonPath: join(directory, 'big.json') };
    await writeReport(ledger, paths, header);
    expect(parse(await readFile(paths.csvPath), { bom: true, columns: true })).toHaveLength(5000);
    expect(
      (JSON.parse(await readFile(paths.jsonPath, 'utf8')) as { outcomes: unknown[] }).outcomes,
    ).toHaveLength(5000);
  });
});

describe('a large ledger', () => {
  it('writes 100,000 rows appended out of order, with retried duplicates, in row order with one line each', async () => {
    const ledger = join(directory, 'large.jsonl');
    const rows = 100_000;
    // Outcomes arrive in completion order, not row order; a retried append repeats a batch.
    const order = Array.from({ length: rows }, (_, index) => ((index * 7919) % rows) + 2);
    for (let start = 0; start < rows; start += 5_000) {
      const batch = order.slice(start, start + 5_000).map((row) => outcome(row));
      await appendOutcomes(ledger, batch);
      if (start === 50_000)
        await appendOutcomes(
          ledger,
          batch.map((item) => ({ ...item, status: 'failed' as const })),
        );
    }
    const paths = { csvPath: join(directory, 'large.csv'), jsonPath: join(directory, 'large.json') };
    const summary = await writeReport(ledger, paths, header);
    expect(summary.total).toBe(rows);
    expect(summary.counts.succeeded).toBe(rows);
    const lines = (await readFile(paths.csvPath, 'utf8')).trimEnd().split('\r\n');
    expect(lines).toHaveLength(rows + 1);
    expect(lines[1].startsWith('2,user2@contoso.com,succeeded,')).toBe(true);
    expect(lines[rows].startsWith(`${rows + 1},`)).toBe(true);
    const report = JSON.parse(await readFile(paths.jsonPath, 'utf8')) as { outcomes: ResetOutcome[] };
    expect(report.outcomes.map((item) => item.row)).toEqual(
      Array.from({ length: rows }, (_, index) => index + 2),
    );
  });
});
