/**
 * The CSV's newPassword column (password mode `csv`): required and checked per row in that mode, refused
 * in the others, never quoted in a reason, and read by the worker only from the file the job was started on.
 */
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { CsvInputError, type ScannedRow, readCsvPasswords, scanUserCsv } from '../jobs/csvReader';
import { csvFilesForTests } from './support/csvFiles';

/** Writes a CSV file for one test; the folder is removed after the last. */
const fixture = csvFilesForTests('csv-passwords-');

async function scan(path: string, passwordColumn: 'require' | 'refuse' | 'ignore'): Promise<ScannedRow[]> {
  const rows: ScannedRow[] = [];
  for await (const row of scanUserCsv(path, { passwordColumn })) rows.push(row);
  return rows;
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

const LONG = `Z${'y'.repeat(300)}`;
const TEXT = [
  'userPrincipalName,newPassword',
  'alice@contoso.test,Alice-Pass-1!',
  'bob@contoso.test,',
  `carol@contoso.test,${LONG}`,
  'dave@contoso.test,"Comma, and ""quote"""',
].join('\n');

test('in csv mode every runnable row carries its password and an empty cell is an error naming the row', async () => {
  const rows = await scan(await fixture(TEXT), 'require');
  expect(rows).toEqual([
    {
      row: 2,
      disposition: 'run',
      user: 'alice@contoso.test',
      idKind: 'userPrincipalName',
      newPassword: 'Alice-Pass-1!',
    },
    {
      row: 3,
      disposition: 'invalid',
      user: 'bob@contoso.test',
      reason: expect.stringContaining('no newPassword value') as unknown,
    },
    {
      row: 4,
      disposition: 'invalid',
      user: 'carol@contoso.test',
      reason: expect.stringContaining('longer than') as unknown,
    },
    {
      row: 5,
      disposition: 'run',
      user: 'dave@contoso.test',
      idKind: 'userPrincipalName',
      newPassword: 'Comma, and "quote"',
    },
  ]);
  expect(JSON.stringify(rows.filter((row) => row.disposition !== 'run'))).not.toContain('yyyy');
});

test('a password longer than any field allowed is named by its field number, never quoted', async () => {
  const huge = `S3cret-${'q'.repeat(2_000)}`;
  const rows = await scan(await fixture(`upn,newPassword\nerin@contoso.test,${huge}\n`), 'require');
  expect(rows[0]).toMatchObject({
    disposition: 'invalid',
    reason: expect.stringContaining('field 2 is') as unknown,
  });
  expect(JSON.stringify(rows)).not.toContain('S3cret');
});

test('csv mode without a newPassword column is refused before any row runs', async () => {
  const path = await fixture('userPrincipalName\nalice@contoso.test\n');
  await expect(scan(path, 'require')).rejects.toThrow(
    /line 1: password mode csv needs exactly one newPassword column/,
  );
});

test('in the other modes a newPassword column is refused, so nobody believes those passwords were set', async () => {
  const path = await fixture(TEXT);
  const refused = scan(path, 'refuse');
  await expect(refused).rejects.toThrow(CsvInputError);
  await expect(scan(path, 'refuse')).rejects.toThrow(
    /start it with --password csv to use them, or remove the column/,
  );
  // A plan only needs the users: it ignores the column and carries no password.
  const ignored = await scan(path, 'ignore');
  expect(ignored.filter((row) => row.disposition === 'run')).toHaveLength(4);
  expect(JSON.stringify(ignored)).not.toContain('Alice-Pass');
});

test('the worker reads the passwords only from the very file the job was started with', async () => {
  const path = await fixture(TEXT);
  const passwords = await readCsvPasswords(path, sha256(TEXT));
  expect([...passwords.entries()]).toEqual([
    [2, 'Alice-Pass-1!'],
    [5, 'Comma, and "quote"'],
  ]);
  await writeFile(path, TEXT.replace('Alice-Pass-1!', 'Attacker-Pass-1!'));
  await expect(readCsvPasswords(path, sha256(TEXT))).rejects.toThrow(/changed after the job was started/);
  await expect(readCsvPasswords(path, sha256(TEXT))).rejects.not.toThrow(/Attacker/);
});
