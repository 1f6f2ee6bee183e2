/**
 * The secrets file: where a job's new passwords go when the operator asked for them to be kept
 * (`--secrets-file`). One JSON line per accepted reset, after a header line that names the job and, when
 * the job has a recipient, the recipient's public key:
 *
 *   {"bulkResetSecrets":1,"jobId":"…","createdAt":"…","recipient":{"sha256":"…","publicKey":"-----BEGIN…"}}
 *   {"row":2,"user":"alice@contoso.com","attempt":1,"acceptedAt":"…","password":"…"}            no recipient
 *   {"row":3,"user":"bob@contoso.com","attempt":2,"acceptedAt":"…","sealed":{"key","iv","data","tag"}}
 *
 * A sealed password is AES-256-GCM encrypted under a fresh key per record, and that key is wrapped with
 * RSA-OAEP-SHA256 to the recipient: the worker (and the operator running it) can append but not read.
 * The row, user, attempt and time are bound to the ciphertext as additional data, so records cannot be
 * swapped. When a user's reset was sent more than once, the record with the highest attempt is the
 * password Graph applied last: the current one.
 *
 * The file is created with mode 0600 and O_EXCL, never through a symbolic link, and refused at every
 * append if its mode lets anyone else in. No password is ever logged here or put in an error.
 */
import {
  type KeyObject,
  constants,
  createHash,
  createPrivateKey,
  createPublicKey,
  privateDecrypt,
  publicEncrypt,
  randomBytes,
} from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { type FileHandle, open, readFile } from 'node:fs/promises';
import { openParts, sealParts } from './envelope';

/** The secrets file cannot be used: the job must not reset users whose passwords would be lost. */
export class SecretsFileError extends Error {
  override name = 'SecretsFileError';
}

interface SecretsHeader {
  bulkResetSecrets: 1;
  jobId: string;
  createdAt: string;
  recipient: { sha256: string; publicKey: string } | null;
}

export interface SecretRecord {
  row: number;
  user: string;
  /** Which request for the user Graph accepted (1 for the first). */
  attempt: number;
  password: string;
}

export interface CurrentSecret extends SecretRecord {
  acceptedAt: string;
}

interface StoredRecord {
  row: number;
  user: string;
  attempt: number;
  acceptedAt: string;
  password?: string;
  sealed?: { key: string; iv: string; data: string; tag: string };
}

const MIN_RSA_BITS = 2048;
const HEADER_LIMIT = 64 * 1024;

/** The recipient's RSA public key from PEM, refusing other kinds and keys under 2048 bits. */
export function recipientKey(pem: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch (error) {
    throw new SecretsFileError(
      `the secrets recipient is not a PEM public key (${(error as Error).message}); export it with \`openssl pkey -in private.pem -pubout\``,
    );
  }
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  if (key.asymmetricKeyType !== 'rsa' || bits < MIN_RSA_BITS) {
    throw new SecretsFileError(
      `the secrets recipient must be an RSA public key of at least ${MIN_RSA_BITS} bits (got ${key.asymmetricKeyType ?? 'unknown'}${bits ? `, ${bits} bits` : ''})`,
    );
  }
  return key;
}

/** SHA-256 of the key's DER SubjectPublicKeyInfo: how a recipient recognises their key. */
export function keyFingerprint(key: KeyObject): string {
  const publicKey = key.type === 'private' ? createPublicKey(key) : key;
  return createHash('sha256')
    .update(publicKey.export({ type: 'spki', format: 'der' }))
    .digest('hex');
}

/**
 * Creates the job's secrets file (mode 0600, O_EXCL) with its header. Run again for the same job (a
 * retried prepareJob) it accepts the file it made; any other existing file is refused, so a job never
 * writes into a file someone else prepared.
 */
export async function createSecretsFile(path: string, jobId: string, recipientPem?: string): Promise<void> {
  const recipient = recipientPem === undefined ? null : recipientKey(recipientPem);
  const header: SecretsHeader = {
    bulkResetSecrets: 1,
    jobId,
    createdAt: new Date().toISOString(),
    recipient: recipient && {
      sha256: keyFingerprint(recipient),
      publicKey: recipient.export({ type: 'spki', format: 'pem' }).toString(),
    },
  };
  let file: FileHandle;
  try {
    file = await open(
      path,
      fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW,
      0o600,
    );
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'EEXIST') {
      throw new SecretsFileError(
        `the secrets file ${path} cannot be created on this worker (${code ?? 'error'})`,
      );
    }
    const existing = await openChecked(path);
    try {
      const found = await readHeader(existing, path);
      if (found.jobId !== jobId || found.recipient?.sha256 !== header.recipient?.sha256) {
        throw new SecretsFileError(
          `the secrets file ${path} already exists and belongs to ${found.jobId === jobId ? 'another recipient' : `job ${found.jobId}`}; nothing was reset: give each job a new secrets file`,
        );
      }
    } finally {
      await existing.close();
    }
    return;
  }
  try {
    // The mode given to open() is filtered by the umask; make sure it is exactly 0600.
    await file.chmod(0o600);
    await file.write(`${JSON.stringify(header)}\n`);
    await file.sync();
  } finally {
    await file.close();
  }
}

/** Opens an existing secrets file for reading and appending, refusing links, other owners and wide modes. */
async function openChecked(path: string): Promise<FileHandle> {
  let file: FileHandle;
  try {
    file = await open(path, fsConstants.O_RDWR | fsConstants.O_APPEND | fsConstants.O_NOFOLLOW);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new SecretsFileError(
      code === 'ENOENT'
        ? `the secrets file ${path} does not exist on this worker; with several workers it must be on a volume they all share`
        : `the secrets file ${path} cannot be opened on this worker (${code === 'ELOOP' ? 'it is a symbolic link' : (code ?? 'error')})`,
    );
  }
  try {
    const stats = await file.stat();
    const problem = !stats.isFile()
      ? 'is not a regular file'
      : (stats.mode & 0o077) !== 0
        ? `has mode ${(stats.mode & 0o777).toString(8).padStart(4, '0')}, which lets others read it (must be 0600)`
        : typeof process.getuid === 'function' && stats.uid !== process.getuid()
          ? 'belongs to another account'
          : undefined;
    if (problem)
      throw new SecretsFileError(`the secrets file ${path} ${problem}; no password was written to it`);
    return file;
  } catch (error) {
    await file.close();
    throw error;
  }
}

async function readHeader(file: FileHandle, path: string): Promise<SecretsHeader> {
  const buffer = Buffer.alloc(HEADER_LIMIT);
  const { bytesRead } = await file.read(buffer, 0, buffer.length, 0);
  const text = buffer.subarray(0, bytesRead).toString('utf8');
  const newline = text.indexOf('\n');
  return parseHeader(newline === -1 ? text : text.slice(0, newline), path);
}

function parseHeader(line: string, path: string): SecretsHeader {
  let header: Partial<SecretsHeader> | undefined;
  try {
    header = JSON.parse(line) as Partial<SecretsHeader>;
  } catch {
    header = undefined;
  }
  if (header?.bulkResetSecrets !== 1 || typeof header.jobId !== 'string') {
    throw new SecretsFileError(`${path} is not a bulk-reset secrets file; nothing was written to it`);
  }
  return header as SecretsHeader;
}

/** An open secrets file of one job, checked before the reset is sent so a bad file stops it early. */
export interface SecretsWriter {
  /** Appends one accepted password (sealed to the recipient, if the job has one) as a single write. */
  append(record: SecretRecord): Promise<void>;
  close(): Promise<void>;
}

export async function openSecretsWriter(path: string, jobId: string): Promise<SecretsWriter> {
  const file = await openChecked(path);
  let recipient: KeyObject | undefined;
  try {
    const header = await readHeader(file, path);
    if (header.jobId !== jobId) {
      throw new SecretsFileError(`the secrets file ${path} belongs to job ${header.jobId}, not ${jobId}`);
    }
    recipient = header.recipient ? recipientKey(header.recipient.publicKey) : undefined;
  } catch (error) {
    await file.close();
    throw error;
  }
  return {
    async append({ row, user, attempt, password }) {
      const acceptedAt = new Date().toISOString();
      const stored: StoredRecord = { row, user, attempt, acceptedAt };
      if (recipient) stored.sealed = seal(password, recipient, additionalData(jobId, stored));
      else stored.password = password;
      await file.write(`${JSON.stringify(stored)}\n`);
      await file.sync();
    },
    close: () => file.close(),
  };
}

function additionalData(jobId: string, record: StoredRecord): Buffer {
  return Buffer.from(
    JSON.stringify([jobId, record.row, record.user, record.attempt, record.acceptedAt]),
    'utf8',
  );
}

function seal(password: string, recipient: KeyObject, aad: Buffer): NonNullable<StoredRecord['sealed']> {
  const key = randomBytes(32);
  const { iv, tag, ciphertext } = sealParts(key, password, aad);
  const wrapped = publicEncrypt(
    { key: recipient, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' },
    key,
  );
  key.fill(0);
  return {
    key: wrapped.toString('base64'),
    iv: iv.toString('base64'),
    data: ciphertext.toString('base64'),
    tag: tag.toString('base64'),
  };
}

function unseal(sealed: NonNullable<StoredRecord['sealed']>, privateKey: KeyObject, aad: Buffer): string {
  const key = privateDecrypt(
    { key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' },
    Buffer.from(sealed.key, 'base64'),
  );
  try {
    const parts = {
      iv: Buffer.from(sealed.iv, 'base64'),
      tag: Buffer.from(sealed.tag, 'base64'),
      ciphertext: Buffer.from(sealed.data, 'base64'),
    };
    return openParts(key, parts, aad).toString('utf8');
  } finally {
    key.fill(0);
  }
}

/** A private key from PEM (optionally passphrase-protected), for `bulk-reset secrets decrypt`. */
export function privateKeyFrom(pem: string, passphrase?: string): KeyObject {
  try {
    return createPrivateKey({ key: pem, passphrase });
  } catch (error) {
    throw new SecretsFileError(
      `the key is not a usable PEM private key (${(error as Error).message}); an encrypted key needs BULK_RESET_SECRETS_KEY_PASSPHRASE`,
    );
  }
}

/**
 * The current password of every user in the secrets file: the record with the highest attempt (a later
 * line wins a tie), in row order. A sealed file needs the recipient's private key.
 */
export async function readCurrentSecrets(path: string, privateKey?: KeyObject): Promise<CurrentSecret[]> {
  const lines = (await readFile(path, 'utf8')).split('\n').filter((line) => line.trim() !== '');
  const header = parseHeader(lines[0] ?? '', path);
  if (header.recipient) {
    if (!privateKey) {
      throw new SecretsFileError(
        `${path} is encrypted to the key ${header.recipient.sha256}; give the recipient's private key with --key`,
      );
    }
    if (keyFingerprint(privateKey) !== header.recipient.sha256) {
      throw new SecretsFileError(
        `${path} is encrypted to the key ${header.recipient.sha256}, not to this one (${keyFingerprint(privateKey)})`,
      );
    }
  }
  const current = new Map<string, CurrentSecret>();
  lines.slice(1).forEach((line, index) => {
    let stored: StoredRecord;
    try {
      stored = JSON.parse(line) as StoredRecord;
    } catch {
      throw new SecretsFileError(`${path} line ${index + 2} is not a record (cut off by a crash?)`);
    }
    // In a file with a recipient only sealed records count: a plain one would be someone else's writing.
    const password = header.recipient
      ? stored.sealed && unseal(stored.sealed, privateKey as KeyObject, additionalData(header.jobId, stored))
      : stored.password;
    if (typeof password !== 'string') {
      throw new SecretsFileError(`${path} line ${index + 2} holds no password`);
    }
    const key = stored.user.toLowerCase();
    const before = current.get(key);
    if (!before || stored.attempt >= before.attempt) {
      current.set(key, {
        row: stored.row,
        user: stored.user,
        attempt: stored.attempt,
        acceptedAt: stored.acceptedAt,
        password,
      });
    }
  });
  return [...current.values()].sort((a, b) => a.row - b.row);
}
