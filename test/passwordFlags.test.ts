/**
 * The password flags of `start`: what they allow, what they refuse, and what the operator is told.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { createSecretsFile, openSecretsWriter } from '../secrets/secretsFile';
import { decryptSecrets, passwordChoiceFromFlags } from '../client/passwordFlags';
import type { PasswordMode } from '../workflows/types';

let directory: string;

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'password-flags-'));
});

afterAll(async () => {
  await rm(directory, { recursive: true, force: true });
});

test('graph is the default, and without a secrets file the operator hears that nobody gets the passwords', async () => {
  const choice = await passwordChoiceFromFlags({});
  expect(choice.settings).toEqual({ mode: 'graph' });
  expect(choice.notices.join('\n')).toContain('Temporary Access Pass');
});

test('generated passwords are 20 characters unless asked otherwise; under 16 is refused', async () => {
  expect((await passwordChoiceFromFlags({ password: 'generated' })).settings).toEqual({
    mode: 'generated',
    length: 20,
  });
  expect((await passwordChoiceFromFlags({ password: 'generated', passwordLength: 32 })).settings.length).toBe(
    32,
  );
  for (const length of [15, 8, 257, 20.5]) {
    await expect(passwordChoiceFromFlags({ password: 'generated', passwordLength: length })).rejects.toThrow(
      /--password-length must be a whole number from 16 to 256/,
    );
  }
  await expect(passwordChoiceFromFlags({ passwordLength: 20 })).rejects.toThrow(
    /goes with --password generated/,
  );
  await expect(passwordChoiceFromFlags({ password: 'random' as PasswordMode })).rejects.toThrow(
    /graph, generated, csv/,
  );
});

test('csv mode is allowed with a clear warning', async () => {
  const choice = await passwordChoiceFromFlags({ password: 'csv' });
  expect(choice.settings.mode).toBe('csv');
  expect(choice.notices[0]).toMatch(/^WARNING: .*plain text/);
});

test('a secrets file is made absolute and must not exist; a recipient needs a file and an RSA key', async () => {
  const recipient = join(directory, 'public.pem');
  await writeFile(
    recipient,
    generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }),
  );
  const fresh = join(directory, 'secrets.jsonl');
  const choice = await passwordChoiceFromFlags({
    password: 'generated',
    secretsFile: fresh,
    secretsRecipient: recipient,
  });
  expect(choice.settings.secretsFile).toBe(fresh);
  expect(choice.recipientPem).toContain('BEGIN PUBLIC KEY');
  expect(choice.notices.join('\n')).toContain("on the worker's host, encrypted");

  const existing = join(directory, 'old.jsonl');
  await writeFile(existing, '');
  await expect(passwordChoiceFromFlags({ secretsFile: existing })).rejects.toThrow(/already exists/);
  await expect(passwordChoiceFromFlags({ secretsRecipient: recipient })).rejects.toThrow(
    /goes with --secrets-file/,
  );
  const notAKey = join(directory, 'not-a-key.pem');
  await writeFile(notAKey, 'hello');
  await expect(passwordChoiceFromFlags({ secretsFile: fresh, secretsRecipient: notAKey })).rejects.toThrow(
    /not a PEM public key/,
  );
});

/**
 * The README's rule for reading a password cell (section "Passwords"), applied as a person would: one
 * ' was added before a = + - @ | (or a form of them such as the full-width ＝) at the start of the cell
 * or after a comma, semicolon, tab or line break (with spaces between or not), counting the 's already
 * there; remove that one.
 */
function passwordAsTheReadmeSays(cell: string): string {
  return cell.replace(
    /(^|[,;\t\r\n])([\s,;]*)'(?='*(.))/gu,
    (found: string, boundary: string, spaces: string, next: string) =>
      ['=', '+', '-', '@', '|'].includes(next.normalize('NFKC')) ? `${boundary}${spaces}` : found,
  );
}

test('secrets decrypt writes no password as a formula, and the README tells how to read each one exactly', async () => {
  const secretsPath = join(directory, 'formulas.jsonl');
  await createSecretsFile(secretsPath, 'job-formulas');
  const passwords = [
    // Generated passwords start with one of these about once in eighteen.
    '=1+1*cmd|A0Bc7',
    '+Xy7#kLm2',
    '-Xy7#kLm2',
    '@SUM(A1)x9Y',
    // Passwords of --password csv are whatever the operator wrote.
    '\uFF1D1+1Ab9!',
    "'=already-quoted9A",
    "''-two-quotes9A",
    'semi;=colon9A',
    'comma, -spaced9A',
    "plain'quote=9A",
    'Plain-Pass-9A',
  ];
  const writer = await openSecretsWriter(secretsPath, 'job-formulas');
  for (const [index, password] of passwords.entries()) {
    await writer.append({ row: index + 2, user: `user${index + 2}@contoso.com`, attempt: 1, password });
  }
  await writer.close();

  const outPath = join(directory, 'formulas.csv');
  const notices: string[] = [];
  const spy = jest.spyOn(console, 'error').mockImplementation((message: string) => notices.push(message));
  try {
    expect(await decryptSecrets(secretsPath, { out: outPath })).toBe(0);
  } finally {
    spy.mockRestore();
  }
  const text = await readFile(outPath, 'utf8');
  const records: string[][] = parse(text);
  const cells = records.slice(1);
  expect(cells.map(([, user]) => user)).toEqual(passwords.map((_, index) => `user${index + 2}@contoso.com`));

  // No cell, however a spreadsheet splits the file, starts a formula.
  const pieces = text.split(/[,;\r\n]/).map((piece) => piece.replace(/^[\s"]+/, ''));
  expect(pieces.filter((piece) => /^[=+\-@|]/.test(piece.normalize('NFKC')))).toEqual([]);
  expect(cells[0][2]).toBe("'=1+1*cmd|A0Bc7");

  // Following the README gives back every password exactly; the operator is told when that matters.
  expect(cells.map(([, , cell]) => passwordAsTheReadmeSays(cell))).toEqual(passwords);
  expect(notices.join('\n')).toMatch(/9 of the 11 passwords .*a ' was added/);
});
