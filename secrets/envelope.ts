/**
 * The one AES-256-GCM envelope. Three things are sealed with it, each in its own byte layout that must
 * never change (histories, token caches and secrets files already on disk have to keep opening):
 * - Temporal payloads (temporal/codec.ts): `iv | tag | ciphertext`, the key id as additional data;
 * - the Graph token cache (graph/credentials.ts): `iv | tag | ciphertext`, no additional data;
 * - each password in a secrets file (secrets/secretsFile.ts): iv, tag and ciphertext as separate base64
 *   fields, under a fresh key wrapped for the recipient, the record's identity as additional data.
 * So the shared part is the cipher itself: a 32-byte key, a random 12-byte IV, a 16-byte tag, optional
 * additional data bound in. {@link sealParts}/{@link openParts} give the three parts, {@link seal}/
 * {@link open} the concatenated `iv | tag | ciphertext` form.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

const ALGORITHM = 'aes-256-gcm';
export const KEY_BYTES = 32;
export const IV_BYTES = 12;
export const TAG_BYTES = 16;

export interface SealedParts {
  iv: Buffer;
  tag: Buffer;
  ciphertext: Buffer;
}

function checkKey(key: Uint8Array): void {
  if (key.length !== KEY_BYTES) {
    throw new Error(
      `an AES-256-GCM key is ${KEY_BYTES} bytes, not ${key.length}: the key is damaged or not one`,
    );
  }
}

/** Seals `plaintext` under `key` with a fresh IV; `aad` is authenticated but not encrypted. */
export function sealParts(key: Uint8Array, plaintext: Uint8Array | string, aad?: Uint8Array): SealedParts {
  checkKey(key);
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv(ALGORITHM, key, iv);
  if (aad) cipher.setAAD(aad);
  const body = typeof plaintext === 'string' ? Buffer.from(plaintext, 'utf8') : plaintext;
  const ciphertext = Buffer.concat([cipher.update(body), cipher.final()]);
  return { iv, tag: cipher.getAuthTag(), ciphertext };
}

/**
 * Opens what {@link sealParts} sealed. Throws when the key, the additional data or any byte differs
 * (altered or forged): callers say which of their things did not open.
 */
export function openParts(key: Uint8Array, parts: SealedParts, aad?: Uint8Array): Buffer {
  checkKey(key);
  const decipher = createDecipheriv(ALGORITHM, key, parts.iv);
  if (aad) decipher.setAAD(aad);
  decipher.setAuthTag(parts.tag);
  return Buffer.concat([decipher.update(parts.ciphertext), decipher.final()]);
}

/** {@link sealParts} as one buffer: `iv(12) | tag(16) | ciphertext`. */
export function seal(key: Uint8Array, plaintext: Uint8Array | string, aad?: Uint8Array): Buffer {
  const { iv, tag, ciphertext } = sealParts(key, plaintext, aad);
  return Buffer.concat([iv, tag, ciphertext]);
}

/** Opens `iv(12) | tag(16) | ciphertext` as {@link seal} wrote it. */
export function open(key: Uint8Array, sealed: Uint8Array, aad?: Uint8Array): Buffer {
  const bytes = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
  if (bytes.length < IV_BYTES + TAG_BYTES)
    throw new Error('the sealed bytes are too short to hold an IV and a tag');
  return openParts(
    key,
    {
      iv: bytes.subarray(0, IV_BYTES),
      tag: bytes.subarray(IV_BYTES, IV_BYTES + TAG_BYTES),
      ciphertext: bytes.subarray(IV_BYTES + TAG_BYTES),
    },
    aad,
  );
}
