import {
  CsvInputError,
  scanUserCsv,
  sha256File,
  validateUser,
  type CsvScanOptions,
  type ScannedRow,
} from '../jobs/csvReader';
import { csvFilesForTests } from './support/csvFiles';
import { prng } from './support/prng';
import { rejectionOf } from './support/rejection';

/** Writes a CSV file for one test; the folder is removed after the last. */
const fixture = csvFilesForTests('csv-reader-');

async function scan(content: string | Buffer, options?: CsvScanOptions): Promise<ScannedRow[]> {
  const rows: ScannedRow[] = [];
  for await (const row of scanUserCsv(await fixture(content), options)) rows.push(row);
  return rows;
}

async function scanError(content: string | Buffer, options?: CsvScanOptions): Promise<CsvInputError> {
  return rejectionOf(scan(content, options), CsvInputError, 'the scan');
}

const ALICE_ID = '6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b';
const BOB_ID = 'A0B1C2D3-E4F5-4678-9ABC-DEF012345678';

describe('scanUserCsv: encoding', () => {
  it('reads UTF-8 with and without a BOM, including non-ASCII names', async () => {
    // Entra ID allows no accented letter in a userPrincipalName: the row is refused, its name read intact.
    const text = 'userPrincipalName\nzoë@contoso.com\n';
    const expected = [
      {
        row: 2,
        disposition: 'invalid',
        user: 'zoë@contoso.com',
        reason: expect.stringContaining('"ë" is not a character Entra ID allows') as string,
      },
    ];
    expect(await scan(text)).toEqual(expected);
    expect(await scan(`\uFEFF${text}`)).toEqual(expected);
  });

  it('refuses a file that is not valid UTF-8 and names the line near the bad byte', async () => {
    const latin1 = Buffer.concat([
      Buffer.from('upn\nalice@contoso.com\n'),
      Buffer.from('jos', 'latin1'),
      Buffer.from([0xe9]),
      Buffer.from('@contoso.com\n'),
    ]);
    const error = await scanError(latin1);
    expect(error.message).toMatch(/is not valid UTF-8 \(near line 3\); save it as CSV UTF-8/);
    expect(error.line).toBe(3);
  });

  it('refuses UTF-16 and tells the operator to save as UTF-8', async () => {
    const utf16 = Buffer.concat([
      Buffer.from([0xff, 0xfe]),
      Buffer.from('upn\r\nalice@contoso.com\r\n', 'utf16le'),
    ]);
    const error = await scanError(utf16);
    expect(error.message).toMatch(/UTF-16/);
    expect(error.message).toMatch(/UTF-8/);
  });

  it('refuses UTF-16 without a BOM (NUL bytes) instead of reporting a garbled header', async () => {
    const error = await scanError(Buffer.from('upn\nalice@contoso.com\n', 'utf16le'));
    expect(error.message).toMatch(/NUL byte on line 1/);
  });

  it('calls UTF-16 without a BOM what it is even when it has non-ASCII names', async () => {
    // Found by the fuzzer: "not valid UTF-8 (near line 3)" hid that the file was UTF-16.
    const error = await scanError(Buffer.from('upn\nzoë@contoso.com\nbob@contoso.com\n', 'utf16le').swap16());
    expect(error.message).toMatch(/NUL byte on line 1, .*UTF-16 without a BOM/);
    expect(error.line).toBe(1);
  });
});

describe('scanUserCsv: layout', () => {
  it('detects a semicolon delimiter from the header', async () => {
    expect(await scan('Name;UPN\r\nAlice;alice@contoso.com\r\n"Smith, Bob";bob@contoso.com\r\n')).toEqual([
      { row: 2, disposition: 'run', user: 'alice@contoso.com', idKind: 'userPrincipalName' },
      { row: 3, disposition: 'run', user: 'bob@contoso.com', idKind: 'userPrincipalName' },
    ]);
  });

  it('detects a semicolon delimiter when a header name holds a comma, and skips blank lines of delimiters', async () => {
    // Found by the fuzzer: any comma in the header line made the file comma-separated.
    const expected = [{ row: 3, disposition: 'run', user: 'alice@contoso.com', idKind: 'userPrincipalName' }];
    expect(await scan('"  UPN";last, first;"a;b"\r\n\r\nalice@contoso.com;Smith, Alice;x\r\n')).toEqual([
      { ...expected[0], row: 3 },
    ]);
    expect(await scan(';;\nName;upn\nAlice;alice@contoso.com\n')).toEqual(expected);
    expect(await scan('"Name;Title",upn\nAlice,alice@contoso.com\n')).toHaveLength(1);
  });

  it('numbers a record spanning lines by the line it starts on, with commas and quotes in quoted fields', async () => {
    const rows = await scan(
      'note,upn\n"line one\nline two, with comma",alice@contoso.com\n"say ""hi""",bob@contoso.com\ncarol@x.y,carol@contoso.com',
    );
    expect(rows.map((row) => [row.row, row.user])).toEqual([
      [2, 'alice@contoso.com'],
      [4, 'bob@contoso.com'],
      [5, 'carol@contoso.com'],
    ]);
  });

  it('skips blank lines and all-empty records without giving them a disposition, keeping file line numbers', async () => {
    const rows = await scan('\n\nupn\n\nalice@contoso.com\n   \n,\n\t, \r\n\r\nbob@contoso.com\n\n');
    expect(rows.map((row) => [row.row, row.disposition])).toEqual([
      [5, 'run'],
      [10, 'run'],
    ]);
  });

  it('counts CRLF, LF and lone CR line endings alike', async () => {
    const rows = await scan('upn\r\nalice@contoso.com\r\nbob@contoso.com\r\n');
    expect(rows.map((row) => row.row)).toEqual([2, 3]);
    const mac = await scan('upn\ralice@contoso.com\rbob@contoso.com\r');
    expect(mac.map((row) => row.row)).toEqual([2, 3]);
  });

  it('reads every row of a file that mixes LF, CRLF and lone CR line endings, numbering each by its line', async () => {
    // Found by the fuzzer: the first line ending decided for the whole file, so later rows were merged.
    const rows = await scan(
      'upn,note\ralice@contoso.com,a\r\nbob@contoso.com\r ,x\ncarol@contoso.com,"1\r\n2"\rdan@contoso.com\n',
    );
    expect(rows.map((row) => [row.row, row.disposition, row.user])).toEqual([
      [2, 'run', 'alice@contoso.com'],
      [3, 'run', 'bob@contoso.com'],
      [4, 'invalid', ''],
      [5, 'run', 'carol@contoso.com'],
      [7, 'run', 'dan@contoso.com'],
    ]);
  });

  it('accepts spaces around quoted fields', async () => {
    expect(await scan('upn,note\n  "alice@contoso.com" , "x"\n')).toEqual([
      { row: 2, disposition: 'run', user: 'alice@contoso.com', idKind: 'userPrincipalName' },
    ]);
  });

  it('treats short rows as missing values and long rows as untrustworthy, not as a crash', async () => {
    const rows = await scan(
      'name,upn\nalice\nBob,bob@contoso.com,unexpected\nCarol,carol@contoso.com,,\nDan,dan@contoso.com\n',
    );
    expect(rows).toEqual([
      {
        row: 2,
        disposition: 'invalid',
        user: '',
        reason: 'no userPrincipalName value (the row has 1 of 2 fields)',
      },
      {
        row: 3,
        disposition: 'invalid',
        user: 'bob@contoso.com',
        reason: expect.stringMatching(/the row has 3 fields but the header has 2/) as unknown as string,
      },
      { row: 4, disposition: 'run', user: 'carol@contoso.com', idKind: 'userPrincipalName' },
      { row: 5, disposition: 'run', user: 'dan@contoso.com', idKind: 'userPrincipalName' },
    ]);
  });
});

describe('scanUserCsv: header', () => {
  it.each([
    ['userPrincipalName', 'userPrincipalName'],
    ['  UserPrincipalName  ', 'userPrincipalName'],
    ['UPN', 'userPrincipalName'],
    ['id', 'id'],
    ['ObjectId ', 'id'],
    ['USERID', 'id'],
  ] as const)('finds the user column named %j (as %s)', async (name, idKind) => {
    const user = idKind === 'id' ? ALICE_ID : 'alice@contoso.com';
    expect(await scan(`other,${name}\nx,${user}\n`)).toEqual([{ row: 2, disposition: 'run', user, idKind }]);
  });

  it('with both an id and a UPN column, uses the id when the row has one and the UPN otherwise', async () => {
    const rows = await scan(
      `upn,objectId\nalice@contoso.com,${ALICE_ID}\nbob@contoso.com,\n,\n , \nnot-an-upn,${BOB_ID}\n`,
    );
    expect(rows).toEqual([
      { row: 2, disposition: 'run', user: ALICE_ID, idKind: 'id' },
      { row: 3, disposition: 'run', user: 'bob@contoso.com', idKind: 'userPrincipalName' },
      { row: 6, disposition: 'run', user: BOB_ID, idKind: 'id' },
    ]);
  });

  it('reports a row with neither value when both columns exist', async () => {
    expect(await scan('upn,id,note\n,,hello\n')).toEqual([
      { row: 2, disposition: 'invalid', user: '', reason: 'no id or userPrincipalName value' },
    ]);
  });

  it('refuses a header without a user column, showing what it found and what is accepted', async () => {
    const error = await scanError('\nName,Email\nalice,alice@contoso.com\n');
    expect(error.line).toBe(2);
    expect(error.message).toMatch(/line 2: the header has no user column \(found "Name", "Email"\)/);
    expect(error.message).toMatch(/userPrincipalName or upn/);
    expect(error.message).toMatch(/objectId/);
  });

  it('lists the names of a semicolon header without a user column, even when one of them holds a comma', async () => {
    // Found by the fuzzer: the header was split on commas and refused for a stray quote instead.
    const error = await scanError('=1+1;"note";last, first;"user"\r\nx;y;z;w\r\n');
    expect(error.line).toBe(1);
    expect(error.message).toMatch(
      /the header has no user column \(found "=1\+1", "note", "last, first", "user"\)/,
    );
  });

  it('splits a header without a user column on the delimiter it reads cleanly with', async () => {
    // Found by the fuzzer: a quoted name after a comma made the header look comma-separated and broken.
    const error = await scanError('last, first; "UPNs" \rx;alice@contoso.com\r');
    expect(error.line).toBe(1);
    expect(error.message).toMatch(/the header has no user column \(found "last, first", "UPNs"\)/);
  });

  it('names a header without a user column before a broken row further down', async () => {
    // Found by the fuzzer: the header's problem was hidden behind a quote error on line 3.
    const error = await scanError('last, first;user id\r\nx;bob@contoso.com\r\n"1";"alice@contoso.com"\r\n');
    expect(error.line).toBe(1);
    expect(error.message).toMatch(/line 1: the header has no user column/);
  });

  it('refuses a user column named twice', async () => {
    const error = await scanError('upn,UserPrincipalName\nalice@contoso.com,bob@contoso.com\n');
    expect(error.message).toMatch(
      /names the userPrincipalName column more than once \("upn" and "UserPrincipalName"\)/,
    );
  });

  it('refuses an empty file', async () => {
    const error = await scanError('\n\n');
    expect(error.message).toMatch(/has no header line/);
  });
});

describe('scanUserCsv: row validation', () => {
  it('gives each invalid user a specific reason without repeating the row number', async () => {
    const rows = await scan(
      [
        'upn',
        'bob@',
        '@contoso.com',
        'alice',
        'a@b@contoso.com',
        '"alice smith@contoso.com"',
        'alice@contoso',
        'alice@contoso..com',
        '"=HYPERLINK(""http://x"")@contoso.com"',
        '+alice@contoso.com',
        '-alice@contoso.com',
        `${'a'.repeat(110)}@contoso.com`,
      ].join('\n'),
    );
    expect(rows.map((row) => (row.disposition === 'run' ? 'run' : row.reason))).toEqual([
      `"bob@" is not a valid userPrincipalName (nothing after the '@'; expected name@domain)`,
      `"@contoso.com" is not a valid userPrincipalName (starts with "@"; expected name@domain)`,
      `"alice" is not a valid userPrincipalName (has no '@'; expected name@domain)`,
      `"a@b@contoso.com" is not a valid userPrincipalName (has more than one '@'; expected name@domain)`,
      `"alice smith@contoso.com" is not a valid userPrincipalName (contains whitespace or a control character; expected name@domain)`,
      `"alice@contoso" is not a valid userPrincipalName (domain "contoso" has no '.'; expected name@domain)`,
      `"alice@contoso..com" is not a valid userPrincipalName (domain "contoso..com" has an empty part; expected name@domain)`,
      expect.stringMatching(
        /^"=HYPERLINK\(\\"http:\/\/x\\"\)@contoso.com" is not a valid userPrincipalName \(starts with "="/,
      ),
      expect.stringMatching(/starts with "\+"/),
      expect.stringMatching(/starts with "-"/),
      expect.stringMatching(/^"a{40}…" is not a valid userPrincipalName \(longer than 113 characters/),
    ]);
    expect(rows.every((row) => row.disposition === 'invalid' && !/row \d/.test(row.reason))).toBe(true);
    expect(rows[0]).toEqual({
      row: 2,
      disposition: 'invalid',
      user: 'bob@',
      reason: expect.any(String) as string,
    });
  });

  it('refuses a userPrincipalName with a semicolon, which would split its report row into a formula cell, naming the row', async () => {
    const rows = await scan('upn\nalice@contoso.com\na;=1+1;@contoso.com\n');
    expect(rows[1]).toEqual({
      row: 3,
      disposition: 'invalid',
      user: 'a;=1+1;@contoso.com',
      reason: `"a;=1+1;@contoso.com" is not a valid userPrincipalName (";" is not a character Entra ID allows before the '@'; expected name@domain)`,
    });
  });

  it('refuses the characters Entra ID does not allow in a userPrincipalName, and its length limits', async () => {
    const rows = await scan(
      [
        'upn',
        '"a,b@contoso.com"',
        '"o""neil@contoso.com"',
        'a+b@contoso.com',
        'a&b@contoso.com',
        'zoë@contoso.com',
        'a\uFF1D1@contoso.com',
        'alice.@contoso.com',
        'alice@con_toso.com',
        'alice@bücher.example',
        `${'a'.repeat(65)}@contoso.com`,
        `alice@${'d'.repeat(45)}.com`,
        "'-1@contoso.com",
      ].join('\n'),
    );
    expect(rows.map((row) => (row.disposition === 'run' ? 'run' : row.reason))).toEqual([
      expect.stringContaining(`"," is not a character Entra ID allows before the '@'`),
      expect.stringContaining(`"\\"" is not a character Entra ID allows before the '@'`),
      expect.stringContaining(`"+" is not a character Entra ID allows before the '@'`),
      expect.stringContaining(`"&" is not a character Entra ID allows before the '@'`),
      expect.stringContaining(`"ë" is not a character Entra ID allows before the '@'`),
      expect.stringContaining(`"\uFF1D" is not a character Entra ID allows before the '@'`),
      expect.stringContaining(`a '.' right before the '@'`),
      expect.stringContaining(`domain "con_toso.com" has "_"`),
      expect.stringContaining(`domain "bücher.example" has "ü"`),
      expect.stringContaining(`more than 64 characters before the '@'`),
      expect.stringContaining(`more than 48 characters after the '@'`),
      expect.stringContaining(`starts with "'-"`),
    ]);
  });

  it('refuses ids that are not GUIDs', async () => {
    const rows = await scan(`id\n${ALICE_ID}\n123\n{${BOB_ID}}\nalice@contoso.com\n`);
    expect(rows.map((row) => (row.disposition === 'run' ? 'run' : row.reason))).toEqual([
      'run',
      '"123" is not a valid id (expected a GUID like 00000000-0000-0000-0000-000000000000)',
      `"{${BOB_ID}}" is not a valid id (expected a GUID like 00000000-0000-0000-0000-000000000000)`,
      '"alice@contoso.com" is not a valid id (expected a GUID like 00000000-0000-0000-0000-000000000000)',
    ]);
  });

  it('trims surrounding whitespace and keeps the trimmed value', async () => {
    expect(await scan('upn\n"  alice@contoso.com\t"\n')).toEqual([
      { row: 2, disposition: 'run', user: 'alice@contoso.com', idKind: 'userPrincipalName' },
    ]);
  });

  it('marks later copies of a user as duplicates of the first, ignoring case', async () => {
    const rows = await scan(
      `upn,id\nalice@contoso.com,\nALICE@Contoso.com,\n,${ALICE_ID}\n,${ALICE_ID.toUpperCase()}\n Alice@contoso.COM ,\n`,
    );
    expect(rows).toEqual([
      { row: 2, disposition: 'run', user: 'alice@contoso.com', idKind: 'userPrincipalName' },
      { row: 3, disposition: 'duplicate', user: 'ALICE@Contoso.com', reason: 'duplicate of row 2' },
      { row: 4, disposition: 'run', user: ALICE_ID, idKind: 'id' },
      { row: 5, disposition: 'duplicate', user: ALICE_ID.toUpperCase(), reason: 'duplicate of row 4' },
      { row: 6, disposition: 'duplicate', user: 'Alice@contoso.COM', reason: 'duplicate of row 2' },
    ]);
  });
});

describe('scanUserCsv: broken files', () => {
  it('names the line where an unclosed quoted field starts', async () => {
    const error = await scanError('upn,note\na@contoso.com,x\nb@contoso.com,"oops\nc@contoso.com,y\n');
    expect(error.line).toBe(3);
    expect(error.message).toMatch(/line 3: a quoted field is not closed; check for a stray " character/);
  });

  it('names the line of a stray quote inside a field, on CRLF files too', async () => {
    const error = await scanError('upn,note\r\na@contoso.com,x\r\n\r\nb@contoso.com,it"s\r\n');
    expect(error.line).toBe(4);
    expect(error.message).toMatch(/line 4: a " appears inside a field that is not quoted/);
  });

  it('names the line of a quoted field followed by more text', async () => {
    const error = await scanError('upn\na@contoso.com\n"b@contoso.com"x\n');
    expect(error.line).toBe(3);
    expect(error.message).toMatch(/line 3: a quoted field is closed by a " that is followed by more text/);
  });

  it('yields nothing from a file that is broken further down', async () => {
    const path = await fixture('upn\na@contoso.com\nb@contoso.com\n"c@contoso.com\n');
    const seen: ScannedRow[] = [];
    await expect(
      (async () => {
        for await (const row of scanUserCsv(path)) seen.push(row);
      })(),
    ).rejects.toThrow(CsvInputError);
    expect(seen).toEqual([]);
  });
});

describe('scanUserCsv: limits', () => {
  it('refuses a file larger than maxBytes, naming the limit', async () => {
    const error = await scanError('upn\nalice@contoso.com\n', { maxBytes: 10 });
    expect(error.message).toMatch(/larger than the 10-byte limit/);
    expect(await scan('upn\nalice@contoso.com\n', { maxBytes: 22 })).toHaveLength(1);
  });

  it('refuses more than maxRows data rows, naming the limit; blank lines do not count', async () => {
    const text = 'upn\na@contoso.com\n\nb@contoso.com\nc@contoso.com\n';
    expect(await scan(text, { maxRows: 3 })).toHaveLength(3);
    const error = await scanError(text, { maxRows: 2 });
    expect(error.message).toMatch(/more than 2 data rows \(line 5 is row 3\)/);
    expect(error.line).toBe(5);
  });

  it('marks a row with a field over maxFieldLength invalid without echoing the whole value', async () => {
    const huge = `${'x'.repeat(5000)}@contoso.com`;
    const rows = await scan(`upn,note\n${huge},\nbob@contoso.com,${'n'.repeat(300)}\n`, {
      maxFieldLength: 200,
    });
    expect(rows).toEqual([
      {
        row: 2,
        disposition: 'invalid',
        user: `${'x'.repeat(40)}…`,
        reason: `field 1 is 5012 characters long (limit 200): "${'x'.repeat(40)}…"`,
      },
      {
        row: 3,
        disposition: 'invalid',
        user: 'bob@contoso.com',
        reason: `field 2 is 300 characters long (limit 200): "${'n'.repeat(40)}…"`,
      },
    ]);
  });
});

describe('validateUser', () => {
  it('accepts ordinary and guest UPNs and GUIDs in either case', () => {
    expect(validateUser('alice@contoso.com', 'userPrincipalName')).toBeUndefined();
    expect(validateUser("o'brien.a-b_c!d#e^f~g@sub-1.Contoso.co.uk", 'userPrincipalName')).toBeUndefined();
    expect(validateUser('_svc@contoso.com', 'userPrincipalName')).toBeUndefined();
    expect(
      validateUser('alice_fabrikam.com#EXT#@contoso.onmicrosoft.com', 'userPrincipalName'),
    ).toBeUndefined();
    expect(validateUser(ALICE_ID, 'id')).toBeUndefined();
    expect(validateUser(BOB_ID, 'id')).toBeUndefined();
  });

  it('shows control characters escaped in the reason', () => {
    expect(validateUser('ali\u0007ce@contoso.com', 'userPrincipalName')).toBe(
      '"ali\\u0007ce@contoso.com" is not a valid userPrincipalName (contains whitespace or a control character; expected name@domain)',
    );
  });
});

describe('sha256File', () => {
  it('returns the lower-case hex SHA-256 of the bytes', async () => {
    expect(await sha256File(await fixture('abc'))).toBe(
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
    expect(await sha256File(await fixture(''))).toBe(
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    );
  });
});

describe('scanUserCsv: generated files', () => {
  it.each([1, 42, 20240611])(
    'gives every non-blank row of 500 random rows exactly one disposition, in order (seed %i)',
    async (seed) => {
      const random = prng(seed);
      const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
      const invalidUsers = ['bob@', 'no-at-sign', '=cmd@x.com', 'a b@contoso.com', 'x@y', '@contoso.com'];
      const lineEnding = pick(['\n', '\r\n']);
      const records = ['note,upn'];
      const expected = new Map<number, ScannedRow['disposition']>();
      const firstSeen = new Set<string>();
      let nextLine = 2;

      for (let generated = 0; generated < 500; generated++) {
        const line = nextLine;
        const kind = random();
        if (kind < 0.1) {
          records.push(pick(['', '  ', ',', ' , ']));
        } else if (kind < 0.25) {
          records.push(`x,${pick(invalidUsers)}`);
          expected.set(line, 'invalid');
        } else {
          const name = `user${Math.floor(random() * 150)}@contoso.com`;
          const user = random() < 0.3 ? name.toUpperCase() : name;
          if (random() < 0.1) {
            records.push(`"first${lineEnding}second, third",${user}`);
            nextLine += 1;
          } else {
            records.push(`"n, ${generated}", ${user} `);
          }
          expected.set(line, firstSeen.has(name) ? 'duplicate' : 'run');
          firstSeen.add(name);
        }
        nextLine += 1;
      }

      const rows = await scan(records.join(lineEnding));
      expect(rows.map((row) => [row.row, row.disposition])).toEqual([...expected.entries()]);
      const numbers = rows.map((row) => row.row);
      expect(new Set(numbers).size).toBe(numbers.length);
      expect([...numbers].sort((a, b) => a - b)).toEqual(numbers);
    },
  );
});
