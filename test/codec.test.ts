/**
 * The payload codec and its server: AES-256-GCM with key ids and rotation, and the Web UI's remote codec
 * protocol over real HTTP, answering only the UI's origin and, when asked, only a bearer token.
 */
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Payload, defaultPayloadConverter } from '@temporalio/common';
import {
  EncryptionCodec,
  KEY_ID_METADATA,
  loadCodecKeys,
  newCodecKeyLine,
  parseCodecKeys,
  rotateCodecKey,
} from '../temporal/codec';
import { type CodecServer, startCodecServer } from '../temporal/codecServer';

const payload = (value: unknown): Payload => defaultPayloadConverter.toPayload(value);
const valueOf = (sealed: Payload): unknown => defaultPayloadConverter.fromPayload(sealed);

let directory: string;
beforeEach(async () => {
  directory = await mkdtemp(join(tmpdir(), 'codec-'));
});
afterEach(async () => {
  await rm(directory, { recursive: true, force: true });
});

describe('EncryptionCodec', () => {
  const keys = parseCodecKeys(`${newCodecKeyLine()}\n${newCodecKeyLine()}`, 'test');

  test('seals a payload so that nothing of it is readable, and opens it again', async () => {
    const codec = new EncryptionCodec(keys);
    const original = payload({ user: 'alice@contoso.com', reason: 'Insufficient privileges' });
    const [sealed] = await codec.encode([original]);
    expect(Buffer.from(sealed.data ?? []).toString('latin1')).not.toContain('alice');
    expect(Buffer.from(sealed.metadata?.[KEY_ID_METADATA] ?? []).toString()).toBe(keys[0].id);
    const [opened] = await codec.decode([sealed]);
    expect(valueOf(opened)).toEqual({ user: 'alice@contoso.com', reason: 'Insufficient privileges' });
  });

  test('after a rotation new payloads use the new key and old ones still open', async () => {
    const before = new EncryptionCodec([keys[1]]);
    const [old] = await before.encode([payload('sealed before')]);
    const after = new EncryptionCodec(keys);
    const [fresh] = await after.encode([payload('sealed after')]);
    expect(Buffer.from(fresh.metadata?.[KEY_ID_METADATA] ?? []).toString()).toBe(keys[0].id);
    expect((await after.decode([old, fresh])).map(valueOf)).toEqual(['sealed before', 'sealed after']);
  });

  test('refuses a payload sealed with a key it does not have, or altered in transit', async () => {
    const [sealed] = await new EncryptionCodec([keys[0]]).encode([payload('x')]);
    await expect(new EncryptionCodec([keys[1]]).decode([sealed])).rejects.toThrow(`key "${keys[0].id}"`);
    const tampered = {
      ...sealed,
      data: Buffer.from(sealed.data ?? []).map((byte, index) => (index === 40 ? byte ^ 1 : byte)),
    };
    await expect(new EncryptionCodec(keys).decode([tampered])).rejects.toThrow();
  });

  test('leaves payloads it did not seal alone', async () => {
    const plain = payload('plain');
    expect(await new EncryptionCodec(keys).decode([plain])).toEqual([plain]);
  });

  test('key lists are checked: length, ids, duplicates', () => {
    expect(() => parseCodecKeys('k1:c2hvcnQ=', 'env')).toThrow('must be 32 bytes');
    expect(() => parseCodecKeys(`bad id:${Buffer.alloc(32).toString('base64')}`, 'env')).toThrow(
      'key id "bad id"',
    );
    const line = newCodecKeyLine();
    expect(() => parseCodecKeys(`${line},${line}`, 'env')).toThrow('appears twice');
    expect(() => parseCodecKeys('# only a comment, nothing else', 'env')).toThrow('holds no key');
  });
});

describe('the key file', () => {
  test('is created on first use with mode 0600, and rotation puts a new key first and keeps the old', async () => {
    const file = join(directory, 'keys', 'codec-keys');
    const [first] = await loadCodecKeys({ file });
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await loadCodecKeys({ file }))[0].id).toBe(first.id);
    const id = await rotateCodecKey(file);
    expect((await loadCodecKeys({ file })).map((key) => key.id)).toEqual([id, first.id]);
    expect(await readFile(file, 'utf8')).toMatch(/^# /);
  });
});

describe('the codec server', () => {
  const UI = 'http://localhost:8233';
  let server: CodecServer;
  let codec: EncryptionCodec;

  beforeEach(async () => {
    codec = new EncryptionCodec(await loadCodecKeys({ file: join(directory, 'codec-keys') }));
    server = await startCodecServer({ codec, allowedOrigins: [UI], token: 'ui-token' });
  });
  afterEach(async () => {
    await server.close();
  });

  const asJson = (sealed: Payload) => ({
    metadata: Object.fromEntries(
      Object.entries(sealed.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v ?? []).toString('base64')]),
    ),
    data: Buffer.from(sealed.data ?? []).toString('base64'),
  });

  test('decodes for the Web UI with the token, and answers its CORS preflight', async () => {
    const [sealed] = await codec.encode([payload({ user: 'bob@contoso.com' })]);
    const preflight = await fetch(`${server.url}/decode`, { method: 'OPTIONS', headers: { Origin: UI } });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe(UI);
    const response = await fetch(`${server.url}/decode`, {
      method: 'POST',
      headers: {
        Origin: UI,
        Authorization: 'Bearer ui-token',
        'Content-Type': 'application/json',
        'X-Namespace': 'default',
      },
      body: JSON.stringify({ payloads: [asJson(sealed)] }),
    });
    expect(response.status).toBe(200);
    const { payloads } = (await response.json()) as {
      payloads: { metadata: Record<string, string>; data: string }[];
    };
    expect(JSON.parse(Buffer.from(payloads[0].data, 'base64').toString())).toEqual({
      user: 'bob@contoso.com',
    });
  });

  test('refuses another origin and a missing or wrong token', async () => {
    const [sealed] = await codec.encode([payload('secret')]);
    const body = JSON.stringify({ payloads: [asJson(sealed)] });
    const evil = await fetch(`${server.url}/decode`, {
      method: 'POST',
      headers: { Origin: 'http://evil.test', Authorization: 'Bearer ui-token' },
      body,
    });
    expect(evil.status).toBe(403);
    expect(evil.headers.get('access-control-allow-origin')).toBeNull();
    expect(
      (await fetch(`${server.url}/decode`, { method: 'POST', headers: { Origin: UI }, body })).status,
    ).toBe(401);
    const wrong = await fetch(`${server.url}/decode`, {
      method: 'POST',
      headers: { Origin: UI, Authorization: 'Bearer nope' },
      body,
    });
    expect(wrong.status).toBe(401);
    expect(await wrong.text()).not.toContain('secret');
  });
});
