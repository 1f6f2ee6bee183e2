/**
 * The secrets file: created 0600 and never taken over, one current password per user, and sealed to a
 * recipient so that only the private key opens it.
 */
import { generateKeyPairSync } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  SecretsFileError,
  createSecretsFile,
  openSecretsWriter,
  privateKeyFrom,
  readCurrentSecrets,
  recipientKey,
} from '../secrets/secretsFile';

let directory: string;
let count = 0;
const recipient = generateKeyPairSync('rsa', { modulusLength: 2048 });
const publicPem = recipient.publicKey.export({ type: 'spki', format: 'pem' }).toString();
const privatePem = recipient.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'secrets-file-'));
});

afterAll(async () => {
  await rm(directory, { recursive: true, force: true });
});

function newPath(): string {
  count += 1;
  return join(directory, `secrets-${count}.jsonl`);
}

async function write(
  path: string,
  jobId: string,
  records: [number, string, number, string][],
): Promise<void> {
  const writer = await openSecretsWriter(path, jobId);
  try {
    for (const [row, user, attempt, password] of records)
      await writer.append({ row, user, attempt, password });
  } finally {
    await writer.close();
  }
}

test('the file is created with mode 0600 whatever the umask, and holds the passwords written', async () => {
  const path = newPath();
  const umask = process.umask(0o000);
  try {
    await createSecretsFile(path, 'job-1');
  } finally {
    process.umask(umask);
  }
  expect((await stat(path)).mode & 0o777).toBe(0o600);
  await write(path, 'job-1', [
    [2, 'alice@contoso.test', 1, 'Alice-pw-1!'],
    [3, 'bob@contoso.test', 1, 'Bob,"pw"'],
  ]);
  expect(await readCurrentSecrets(path)).toEqual([
    expect.objectContaining({ row: 2, user: 'alice@contoso.test', attempt: 1, password: 'Alice-pw-1!' }),
    expect.objectContaining({ row: 3, user: 'bob@contoso.test', attempt: 1, password: 'Bob,"pw"' }),
  ]);
});

test('after a resend the highest accepted attempt is the current password, whatever the line order', async () => {
  const path = newPath();
  await createSecretsFile(path, 'job-2');
  await write(path, 'job-2', [
    [2, 'alice@contoso.test', 2, 'second'],
    [2, 'alice@contoso.test', 1, 'first, written late'],
    [4, 'carol@contoso.test', 1, 'carol'],
  ]);
  const current = await readCurrentSecrets(path);
  expect(current.map((secret) => [secret.user, secret.password])).toEqual([
    ['alice@contoso.test', 'second'],
    ['carol@contoso.test', 'carol'],
  ]);
});

test('an existing file is never taken over; the same job preparing again keeps its own', async () => {
  const path = newPath();
  await createSecretsFile(path, 'job-3');
  await expect(createSecretsFile(path, 'job-3')).resolves.toBeUndefined();
  await expect(createSecretsFile(path, 'job-other')).rejects.toThrow(
    /already exists and belongs to job job-3/,
  );
  await expect(createSecretsFile(path, 'job-3', publicPem)).rejects.toThrow(/another recipient/);
  const foreign = newPath();
  await writeFile(foreign, 'user,password\n', { mode: 0o600 });
  await expect(createSecretsFile(foreign, 'job-3')).rejects.toThrow(/not a bulk-reset secrets file/);
  await expect(openSecretsWriter(path, 'job-other')).rejects.toThrow(/belongs to job job-3/);
});

test('a file others can read, or a symbolic link, is refused before anything is written', async () => {
  const path = newPath();
  await createSecretsFile(path, 'job-4');
  await chmod(path, 0o644);
  await expect(openSecretsWriter(path, 'job-4')).rejects.toThrow(/mode 0644.*must be 0600/);
  await chmod(path, 0o600);
  const link = newPath();
  await symlink(path, link);
  await expect(openSecretsWriter(link, 'job-4')).rejects.toThrow(/symbolic link/);
  await expect(createSecretsFile(link, 'job-4')).rejects.toThrow(SecretsFileError);
  await expect(openSecretsWriter(newPath(), 'job-4')).rejects.toThrow(/does not exist on this worker/);
  expect((await readFile(path, 'utf8')).split('\n').filter(Boolean)).toHaveLength(1);
});

test('sealed to a recipient, the file holds no password and opens only with the private key', async () => {
  const path = newPath();
  await createSecretsFile(path, 'job-5', publicPem);
  await write(path, 'job-5', [
    [2, 'alice@contoso.test', 1, 'Sealed-Alice-9#'],
    [2, 'alice@contoso.test', 2, 'Sealed-Alice-10#'],
  ]);
  const raw = await readFile(path, 'utf8');
  expect(raw).not.toContain('Sealed-Alice');
  await expect(readCurrentSecrets(path)).rejects.toThrow(/encrypted to the key .*--key/);
  const stranger = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  await expect(readCurrentSecrets(path, stranger)).rejects.toThrow(/not to this one/);
  const opened = await readCurrentSecrets(path, privateKeyFrom(privatePem));
  expect(opened.map((secret) => secret.password)).toEqual(['Sealed-Alice-10#']);
});

test('a sealed record moved to another user does not open', async () => {
  const path = newPath();
  await createSecretsFile(path, 'job-6', publicPem);
  await write(path, 'job-6', [[2, 'alice@contoso.test', 1, 'for-alice']]);
  const lines = (await readFile(path, 'utf8')).split('\n');
  lines[1] = lines[1].replace('alice@contoso.test', 'mallory@contoso.test');
  await writeFile(path, lines.join('\n'));
  await expect(readCurrentSecrets(path, privateKeyFrom(privatePem))).rejects.toThrow();
});

test('only RSA recipient keys of 2048 bits or more are accepted', () => {
  expect(() => recipientKey(publicPem)).not.toThrow();
  const small = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({
    type: 'spki',
    format: 'pem',
  });
  expect(() => recipientKey(small.toString())).toThrow(/at least 2048 bits/);
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({
    type: 'spki',
    format: 'pem',
  });
  expect(() => recipientKey(ec.toString())).toThrow(/RSA public key/);
  expect(() => recipientKey('not a key')).toThrow(/not a PEM public key/);
});
