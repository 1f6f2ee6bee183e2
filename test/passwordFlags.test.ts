/**
 * The password flags of `start`: what they allow, what they refuse, and what the operator is told.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { passwordChoiceFromFlags } from '../client/passwordFlags';
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
