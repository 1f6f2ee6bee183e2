import { appendFile, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import {
  type ReportHeader,
  type ReportRow,
  appendOutcomes,
  causeOf,
  failuresByCause,
  finalRows,
  readLedger,
  reportRow,
  rowsWithStatus,
  shortReason,
  summarise,
  webUiLink,
  writeReport,
} from '../jobs/report';
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
      failuresByCause: [
        expect.objectContaining({ cause: 'Authorization_RequestDenied', count: 1, rows: [2] }),
        expect.objectContaining({ cause: 'other', kind: 'reasonClass', count: 1, rows: [3] }),
      ],
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
    ]);
    expect(rows.map((row) => row.row)).toEqual(['2', '3', '4', '5']);
    expect(rows[0]).toEqual({
      row: '2',
      user: 'user2@contoso.com',
      status: 'failed',
      reason: "'-403 refused, with a comma",
      hint: '',
      retryable: '',
      workflowId: '',
      webUiLink: '',
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
    const { paths, summary } = await writeAwkwardReport();
    const report = JSON.parse(await readFile(paths.jsonPath, 'utf8')) as unknown;
    expect(report).toEqual({
      job: header,
      summary: {
        total: 4,
        counts: { succeeded: 0, failed: 1, unconfirmed: 1, skipped: 1, cancelled: 1 },
        failuresByCause: summary.failuresByCause,
      },
      outcomes: [awkward[1], awkward[2], awkward[3], awkward[0]],
    });
  });

  it("adds each row's hint, workflow id and Web UI link, the original row of a retry, and keeps a shortened reason's full text", async () => {
    const ledger = join(directory, 'ledger.jsonl');
    const recorded =
      'user u3@contoso.com: Graph answered 403 Authorization_RequestDenied: Insufficient privileges., request-id r-3; the hint';
    await appendOutcomes(ledger, [
      outcome(2, { user: 'u2@contoso.com' }),
      outcome(3, {
        user: 'u3@contoso.com',
        status: 'failed',
        reason: recorded,
        httpStatus: 403,
        graphCode: 'Authorization_RequestDenied',
        requestId: 'r-3',
        retryable: false,
      }),
      outcome(4, { user: 'u4@contoso.com', status: 'skipped', reason: 'duplicate of row 2', polls: 0 }),
    ]);
    const paths = { csvPath: join(directory, 'r.csv'), jsonPath: join(directory, 'r.json') };
    const originalRows = new Map([
      ['u2@contoso.com', 7],
      ['u3@contoso.com', 10],
    ]);
    await writeReport(ledger, paths, header, {
      workflowIdOf: (row) => (row.status === 'skipped' ? undefined : `job-1/user-k${row.row}`),
      webUi: { url: 'http://ui.test:8233/', namespace: 'prod ns' },
      hintFor: (row) => (row.status === 'failed' ? 'the hint' : undefined),
      knownHints: ['the hint'],
      originalRowOf: (row) => originalRows.get(row.user),
    });
    const report = JSON.parse(await readFile(paths.jsonPath, 'utf8')) as { outcomes: ReportRow[] };
    expect(report.outcomes.map((row) => [row.row, row.csvRow, row.workflowId])).toEqual([
      [7, 2, 'job-1/user-k2'],
      [10, 3, 'job-1/user-k3'],
      [4, undefined, undefined],
    ]);
    expect(report.outcomes[1]).toMatchObject({
      reason: 'Insufficient privileges.',
      detail: recorded,
      hint: 'the hint',
      webUiLink: 'http://ui.test:8233/namespaces/prod%20ns/workflows/job-1%2Fuser-k3',
    });
    // A reason with nothing to take off is left as it was, without a detail.
    expect(report.outcomes[2]).toMatchObject({ reason: 'duplicate of row 2' });
    expect(report.outcomes[2].detail).toBeUndefined();
    const csv = parse<Record<string, string>>(await readFile(paths.csvPath), { bom: true, columns: true });
    expect(csv.map((row) => [row.row, row.retryable, row.hint])).toEqual([
      ['7', '', ''],
      ['10', 'false', 'the hint'],
      ['4', '', ''],
    ]);
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

describe('shortReason', () => {
  const refusal = (reason: string, fields: Partial<ResetOutcome> = {}): ResetOutcome =>
    outcome(2, {
      user: 'alice@contoso.com',
      status: 'failed',
      reason,
      httpStatus: 404,
      graphCode: 'Request_ResourceNotFound',
      requestId: '1f2e-3d4c',
      ...fields,
    });
  const hints = [
    'check the userPrincipalName or id in the CSV',
    'Graph or the network had trouble; it will be retried',
  ];

  it("keeps Graph's message and drops the user, status, code, request-id and the hint the hint column gives", () => {
    const recorded =
      "user alice@contoso.com: Graph answered 404 Request_ResourceNotFound: Resource 'alice@contoso.com' does not exist., request-id 1f2e-3d4c; check the userPrincipalName or id in the CSV";
    expect(shortReason(refusal(recorded), hints)).toBe("Resource 'alice@contoso.com' does not exist.");
  });

  it("keeps what happened around a Graph answer (a deadline), without the answer's repeated parts", () => {
    const recorded =
      'Graph did not accept the reset before the deadline: user alice@contoso.com: Graph answered 429 TooManyRequests: Too many requests., request-id r-9; Graph or the network had trouble; it will be retried';
    const short = shortReason(
      refusal(recorded, { httpStatus: 429, graphCode: 'TooManyRequests', requestId: 'r-9' }),
      hints,
    );
    expect(short).toBe('Graph did not accept the reset before the deadline: Too many requests.');
  });

  it('says what kind of answer it was when nothing else is left', () => {
    const recorded =
      'user alice@contoso.com: Graph answered 404 Request_ResourceNotFound, request-id 1f2e-3d4c';
    expect(shortReason(refusal(recorded), hints)).toBe('Graph refused it and gave no message');
  });

  it("leaves a reason without Graph's parts as it is, whatever characters the user has", () => {
    const reason = "protected: Graph's identity of this user (id 42) is on the protected list";
    expect(shortReason(outcome(2, { user: 'a+b(c)@x.test', status: 'skipped', reason }), hints)).toBe(reason);
  });
});

describe('failures by cause', () => {
  const failed = (row: number, fields: Partial<ReportRow>): ReportRow =>
    outcome(row, { status: 'failed', ...fields });

  it('groups failed and unconfirmed rows by Graph code, else by the class of the reason, largest first', () => {
    const rows: ReportRow[] = [
      failed(2, { graphCode: 'Authorization_RequestDenied', hint: 'get the role', retryable: false }),
      failed(3, { graphCode: 'TooManyRequests', hint: 'retry', retryable: true }),
      failed(4, { graphCode: 'Authorization_RequestDenied', hint: 'get the role', retryable: false }),
      outcome(5, {
        status: 'unconfirmed',
        reason: 'a reset request got no answer; it may have been applied',
      }),
      failed(6, {
        reason: "the operator's sign-in was refused for 2 h (--sign-in-hold); the reset was not sent",
      }),
      outcome(7, { status: 'cancelled', reason: 'cancelled by bob' }),
      outcome(8, { status: 'skipped', reason: 'duplicate of row 2' }),
      outcome(9),
    ];
    const causes = failuresByCause(rows);
    expect(
      causes.map(({ cause, kind, count, retryable, rows: sample }) => [
        cause,
        kind,
        count,
        retryable,
        sample,
      ]),
    ).toEqual([
      ['Authorization_RequestDenied', 'graphCode', 2, 0, [2, 4]],
      ['no-answer', 'reasonClass', 1, 0, [5]],
      ['sign-in', 'reasonClass', 1, 0, [6]],
      ['TooManyRequests', 'graphCode', 1, 1, [3]],
    ]);
    // What to do: the rows' own hint for a Graph code, the class's advice otherwise.
    expect(causes[0].whatToDo).toBe('get the role');
    expect(causes[1].whatToDo).toMatch(/lastPasswordChangeDateTime/);
    expect(causes[2].whatToDo).toContain('bulk-reset login');
    // Counted from the rows: the groups add up to the failed and unconfirmed rows.
    expect(causes.reduce((sum, cause) => sum + cause.count, 0)).toBe(5);
  });

  it('keeps a few rows of each cause, not all of them', () => {
    const many = Array.from({ length: 50 }, (_, index) => failed(index + 2, { graphCode: 'X' }));
    const [cause] = failuresByCause(many);
    expect(cause.count).toBe(50);
    expect(cause.rows).toEqual([2, 3, 4, 5, 6]);
  });

  it('reads the class from the full reason when the short one lost it', () => {
    expect(
      causeOf({ reason: 'x', detail: 'Graph did not accept the reset before the deadline: x' }).cause,
    ).toBe('deadline');
    expect(causeOf({ reason: 'something new' }).cause).toBe('other');
  });
});

describe('views of finished reports', () => {
  const original = {
    jobId: 'job-1',
    outcomes: [
      outcome(2),
      outcome(3, { status: 'failed', retryable: true }),
      outcome(4, { status: 'failed', retryable: false }),
      outcome(5, { status: 'failed', retryable: true }),
    ],
  };

  it("gives each user's last outcome across a job and its retries, one row per original row, with the job it comes from", () => {
    const first = {
      jobId: 'retry-1',
      outcomes: [outcome(3, { status: 'failed', retryable: true }), outcome(5)],
    };
    const second = { jobId: 'retry-2', outcomes: [outcome(3), outcome(99)] };
    const rows = finalRows(original, [first, second]);
    expect(rows.map((row) => [row.row, row.status, row.job])).toEqual([
      [2, 'succeeded', 'job-1'],
      [3, 'succeeded', 'retry-2'],
      [4, 'failed', 'job-1'],
      [5, 'succeeded', 'retry-1'],
    ]);
  });

  it('keeps only rows with the statuses asked for, every row when none is asked', () => {
    expect(rowsWithStatus(original.outcomes, ['failed']).map((row) => row.row)).toEqual([3, 4, 5]);
    expect(rowsWithStatus(original.outcomes, ['succeeded', 'failed'])).toHaveLength(4);
    expect(rowsWithStatus(original.outcomes, [])).toHaveLength(4);
    expect(rowsWithStatus(original.outcomes, ['cancelled'])).toEqual([]);
  });

  it("links a workflow in the Web UI, its id encoded whole, whatever the address's trailing slash", () => {
    expect(webUiLink({ url: 'https://temporal.example.com', namespace: 'default' }, 'job-1/user-ab')).toBe(
      'https://temporal.example.com/namespaces/default/workflows/job-1%2Fuser-ab',
    );
    expect(
      reportRow(outcome(2), { workflowIdOf: () => 'j/u', webUi: { url: 'http://x/', namespace: 'n' } }),
    ).toMatchObject({ workflowId: 'j/u', webUiLink: 'http://x/namespaces/n/workflows/j%2Fu' });
  });
});
