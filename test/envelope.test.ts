/**
 * The one AES-256-GCM envelope (secrets/envelope.ts) replaced three hand-written copies without
 * changing a byte: a payload, a token cache and a secrets file sealed by the code before it still open.
 * The fixture (test/fixtures/sealed/before-envelope.json) was written by that code and must not be
 * re-made: it is the proof.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSealed, seal as sealTokenCache } from '../graph/credentials';
import { open, openParts, seal, sealParts } from '../secrets/envelope';
import { privateKeyFrom, readCurrentSecrets } from '../secrets/secretsFile';
import { EncryptionCodec } from '../temporal/codec';
import { PROJECT_ROOT } from '../temporal/devServer';

interface BeforeEnvelope {
  secretsFile: { privateKeyPem: string; text: string };
  tokenCache: { key: string; sealed: string };
  codec: { keyId: string; key: string; payload: { metadata: Record<string, string>; data: string } };
}

let before: BeforeEnvelope;
let directory: string;

beforeAll(async () => {
  const path = join(PROJECT_ROOT, 'test', 'fixtures', 'sealed', 'before-envelope.json');
  before = JSON.parse(await readFile(path, 'utf8')) as BeforeEnvelope;
  directory = await mkdtemp(join(tmpdir(), 'envelope-'));
});

afterAll(async () => {
  await rm(directory, { recursive: true, force: true });
});

test('a Temporal payload sealed before the envelope still opens with its key', async () => {
  const { keyId, key, payload } = before.codec;
  const codec = new EncryptionCodec([{ id: keyId, key: Buffer.from(key, 'base64') }]);
  const sealed = {
    metadata: Object.fromEntries(
      Object.entries(payload.metadata).map(([name, value]) => [name, Buffer.from(value, 'base64')]),
    ),
    data: Buffer.from(payload.data, 'base64'),
  };
  const [opened] = await codec.decode([sealed]);
  expect(Buffer.from(opened.data ?? []).toString('utf8')).toBe('{"before":"envelope"}');
  expect(Buffer.from(opened.metadata?.encoding ?? []).toString('utf8')).toBe('json/plain');
});

test('a token cache sealed before the envelope still opens, and one sealed now has the same layout', () => {
  const key = Buffer.from(before.tokenCache.key, 'base64');
  const old = Buffer.from(before.tokenCache.sealed, 'base64');
  expect(openSealed(old, key)).toBe('{"AccessToken":{"sealed":"before the envelope"}}');
  // iv(12) | tag(16) | ciphertext, no additional data: the envelope's open reads the old bytes as they are.
  expect(open(key, old).toString('utf8')).toBe('{"AccessToken":{"sealed":"before the envelope"}}');
  expect(sealTokenCache('abc', key)).toHaveLength(12 + 16 + 3);
});

test('a secrets file written before the envelope still opens with the private key', async () => {
  const path = join(directory, 'secrets.jsonl');
  await writeFile(path, before.secretsFile.text, { mode: 0o600 });
  const secrets = await readCurrentSecrets(path, privateKeyFrom(before.secretsFile.privateKeyPem));
  expect(secrets.map(({ row, user, attempt, password }) => ({ row, user, attempt, password }))).toEqual([
    { row: 2, user: 'alice@contoso.com', attempt: 1, password: 'Sealed-Before-Envelope-1!' },
  ]);
});

test('the envelope refuses other additional data, a changed byte and a key of the wrong size', () => {
  const key = Buffer.alloc(32, 7);
  const sealed = seal(key, 'secret', Buffer.from('k1'));
  expect(open(key, sealed, Buffer.from('k1')).toString('utf8')).toBe('secret');
  expect(() => open(key, sealed, Buffer.from('k2'))).toThrow();
  expect(() => open(key, sealed)).toThrow();
  const flipped = Buffer.from(sealed);
  flipped[flipped.length - 1] ^= 1;
  expect(() => open(key, flipped, Buffer.from('k1'))).toThrow();
  expect(() => seal(Buffer.alloc(16), 'secret')).toThrow(/32 bytes/);
  const parts = sealParts(key, 'secret');
  expect([parts.iv.length, parts.tag.length]).toEqual([12, 16]);
  expect(openParts(key, parts).toString('utf8')).toBe('secret');
});
