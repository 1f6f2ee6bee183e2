/**
 * Who the codec server answers: the Web UI's origin when nothing else is configured, only the bearer
 * token when one is, only a verified sign-in token (or the token) with JWT checking; /encode only for
 * the token; and no request, however built, makes it hold more than a bounded body.
 *
 * JWT checking runs in the real `bulk-reset codec-server` process, started with its flags: jose is an
 * ES module that Jest cannot load without --experimental-vm-modules. The tokens are signed here with
 * node:crypto (RS256), independently of the library that verifies them.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { type KeyObject, createSign, generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Payload, defaultPayloadConverter } from '@temporalio/common';
import { EncryptionCodec, newCodecKeyLine, parseCodecKeys } from '../temporal/codec';
import { type CodecServer, MAX_BODY_BYTES, MAX_PAYLOADS, startCodecServer } from '../temporal/codecServer';
import { PROJECT_ROOT } from '../temporal/devServer';

const UI = 'http://localhost:8233';
const keyLine = newCodecKeyLine();
const codec = new EncryptionCodec(parseCodecKeys(keyLine, 'test'));

const asJson = (sealed: Payload) => ({
  metadata: Object.fromEntries(
    Object.entries(sealed.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v ?? []).toString('base64')]),
  ),
  data: Buffer.from(sealed.data ?? []).toString('base64'),
});

/** A request body holding one sealed payload whose plaintext names a user. */
async function sealedBody(): Promise<string> {
  const [sealed] = await codec.encode([defaultPayloadConverter.toPayload({ user: 'carol@contoso.com' })]);
  return JSON.stringify({ payloads: [asJson(sealed)] });
}

function post(url: string, headers: Record<string, string>, body: string): Promise<Response> {
  return fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body });
}

describe('the codec server, in process', () => {
  let server: CodecServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  test('a request without Origin or token gets a refusal, not plaintext', async () => {
    server = await startCodecServer({ codec, allowedOrigins: [UI] });
    const response = await post(`${server.url}/decode`, {}, await sealedBody());
    const text = await response.text();
    expect(response.status).toBe(403);
    expect(text).not.toContain('carol');
    expect((JSON.parse(text) as { message: string }).message).toContain('BULK_RESET_CODEC_SERVER_TOKEN');
    // The Web UI's own requests still decode.
    const fromUi = await post(`${server.url}/decode`, { Origin: UI }, await sealedBody());
    expect(fromUi.status).toBe(200);
    expect(
      Buffer.from(
        ((await fromUi.json()) as { payloads: { data: string }[] }).payloads[0].data,
        'base64',
      ).toString(),
    ).toContain('carol@contoso.com');
  });

  test('/encode is off without a token, and with one answers only that token', async () => {
    const body = JSON.stringify({ payloads: [asJson(defaultPayloadConverter.toPayload({ by: 'anyone' }))] });
    server = await startCodecServer({ codec, allowedOrigins: [UI] });
    const off = await post(`${server.url}/encode`, { Origin: UI }, body);
    expect(off.status).toBe(403);
    expect(((await off.json()) as { message: string }).message).toContain(
      'encode is off: start the codec server with a token',
    );
    expect((await post(`${server.url}/encode`, {}, body)).status).toBe(403);
    await server.close();

    server = await startCodecServer({ codec, allowedOrigins: [UI], token: 'cli-token' });
    expect((await post(`${server.url}/encode`, { Origin: UI }, body)).status).toBe(401);
    const sealed = await post(`${server.url}/encode`, { Authorization: 'Bearer cli-token' }, body);
    expect(sealed.status).toBe(200);
    const [payload] = ((await sealed.json()) as { payloads: ReturnType<typeof asJson>[] }).payloads;
    expect(Buffer.from(payload.metadata.encoding, 'base64').toString()).toBe('binary/encrypted');
  });

  test('the temporal CLI decodes with the token and no Origin', async () => {
    server = await startCodecServer({ codec, allowedOrigins: [UI], token: 'cli-token' });
    const response = await post(
      `${server.url}/decode`,
      { Authorization: 'Bearer cli-token' },
      await sealedBody(),
    );
    expect(response.status).toBe(200);
  });

  test('too many payloads or too large a body is refused with 413, and the server answers on', async () => {
    server = await startCodecServer({ codec, allowedOrigins: [UI] });
    const many = JSON.stringify({ payloads: new Array(MAX_PAYLOADS + 1).fill({}) });
    const tooMany = await post(`${server.url}/decode`, { Origin: UI }, many);
    expect(tooMany.status).toBe(413);
    expect(((await tooMany.json()) as { message: string }).message).toContain(`at most ${MAX_PAYLOADS}`);

    // The shape of the request that once grew the server past a gigabyte: refused before it is parsed.
    const tiny = JSON.stringify({ payloads: new Array(700_000).fill({}) });
    const manyTiny = await post(`${server.url}/decode`, { Origin: UI }, tiny);
    expect(manyTiny.status).toBe(413);
    expect(((await manyTiny.json()) as { message: string }).message).toContain(`more than ${MAX_PAYLOADS}`);

    const large = JSON.stringify({ payloads: [{ data: 'A'.repeat(MAX_BODY_BYTES) }] });
    const tooLarge = await post(`${server.url}/decode`, { Origin: UI }, large);
    expect(tooLarge.status).toBe(413);

    const fine = await post(`${server.url}/decode`, { Origin: UI }, await sealedBody());
    expect(fine.status).toBe(200);
  });
});

// ---------------------------------------------------------------------------------------------------------
// JWT checking, in the real command

const ISSUER = 'https://login.example.test/tenant/v2.0';
const AUDIENCE = 'api://temporal-ui';

interface SigningKey {
  kid: string;
  privateKey: KeyObject;
  jwk: Record<string, unknown>;
}

function signingKey(): SigningKey {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const kid = randomBytes(4).toString('hex');
  return { kid, privateKey, jwk: { ...publicKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' } };
}

/** An RS256 JWT: what an identity provider hands the Web UI after a sign-in. */
function jwt(key: SigningKey, claims: Record<string, unknown>): string {
  const now = Math.floor(Date.now() / 1000);
  const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const signed = `${part({ alg: 'RS256', typ: 'JWT', kid: key.kid })}.${part({
    iss: ISSUER,
    aud: AUDIENCE,
    sub: 'operator-1',
    iat: now,
    exp: now + 600,
    ...claims,
  })}`;
  return `${signed}.${createSign('RSA-SHA256').update(signed).sign(key.privateKey).toString('base64url')}`;
}

interface Command {
  child: ChildProcessWithoutNullStreams;
  url: string;
}

/** `bulk-reset codec-server --port 0 ...` until it prints its address; rejects with its output if it exits. */
function startCommand(args: string[], env: Record<string, string> = {}): Promise<Command> {
  const child = spawn(
    process.execPath,
    [join(PROJECT_ROOT, 'dist', 'client', 'cli.js'), 'codec-server', '--port', '0', ...args],
    { env: { PATH: process.env.PATH, HOME: scratch, BULK_RESET_CODEC_KEYS: keyLine, ...env } },
  );
  return new Promise((found, fail) => {
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const match = /codec server at (http:\/\/\S+),/.exec(output);
      if (match) found({ child, url: match[1] });
    });
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.once('exit', (code) => fail(Object.assign(new Error(output), { exitCode: code })));
  });
}

async function stop(command: Command | undefined): Promise<void> {
  if (!command || command.child.exitCode !== null) return;
  const exited = new Promise((done) => command.child.once('exit', done));
  command.child.kill('SIGTERM');
  await exited;
}

let scratch: string;
let key: SigningKey;
let jwksFile: string;

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'bulk-reset-codec-server-'));
  key = signingKey();
  jwksFile = join(scratch, 'jwks.json');
  await writeFile(jwksFile, JSON.stringify({ keys: [key.jwk] }));
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

describe('codec-server with --jwks, --issuer and --audience', () => {
  let command: Command | undefined;
  afterEach(async () => {
    await stop(command);
    command = undefined;
  });

  test('decodes for a valid sign-in token and refuses Origin alone, expired, foreign and forged tokens', async () => {
    command = await startCommand(['--jwks', jwksFile, '--issuer', ISSUER, '--audience', AUDIENCE]);
    const decode = (headers: Record<string, string>) =>
      sealedBody().then((body) => post(`${command?.url}/decode`, { Origin: UI, ...headers }, body));

    const signedIn = await decode({ Authorization: `Bearer ${jwt(key, {})}` });
    expect(signedIn.status).toBe(200);
    expect(await signedIn.text()).not.toContain('"message"');

    const refused = {
      originOnly: (await decode({})).status,
      expired: (
        await decode({ Authorization: `Bearer ${jwt(key, { exp: Math.floor(Date.now() / 1000) - 60 })}` })
      ).status,
      otherAudience: (await decode({ Authorization: `Bearer ${jwt(key, { aud: 'api://graph' })}` })).status,
      otherIssuer: (await decode({ Authorization: `Bearer ${jwt(key, { iss: 'https://evil.test' })}` }))
        .status,
      noExpiry: (await decode({ Authorization: `Bearer ${jwt(key, { exp: undefined })}` })).status,
      otherKey: (await decode({ Authorization: `Bearer ${jwt({ ...signingKey(), kid: key.kid }, {})}` }))
        .status,
    };
    expect(refused).toEqual({
      originOnly: 401,
      expired: 401,
      otherAudience: 401,
      otherIssuer: 401,
      noExpiry: 401,
      otherKey: 401,
    });

    // A sign-in lets the UI read, not seal: /encode stays with the codec server token, off here.
    const encode = await post(
      `${command.url}/encode`,
      { Origin: UI, Authorization: `Bearer ${jwt(key, {})}` },
      JSON.stringify({ payloads: [] }),
    );
    expect(encode.status).toBe(403);
  });

  test('reads the signing keys from a JWKS URL, and takes its settings from the environment', async () => {
    const jwks: Server = createServer((_request, response) => {
      response.writeHead(200, { 'Content-Type': 'application/json' });
      response.end(JSON.stringify({ keys: [key.jwk] }));
    });
    await new Promise<void>((ready) => jwks.listen(0, '127.0.0.1', ready));
    try {
      const jwksUrl = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/keys`;
      command = await startCommand([], {
        BULK_RESET_CODEC_SERVER_JWKS: jwksUrl,
        BULK_RESET_CODEC_SERVER_ISSUER: ISSUER,
        BULK_RESET_CODEC_SERVER_AUDIENCE: AUDIENCE,
      });
      const body = await sealedBody();
      const signedIn = await post(`${command.url}/decode`, { Authorization: `Bearer ${jwt(key, {})}` }, body);
      expect(signedIn.status).toBe(200);
      expect((await post(`${command.url}/decode`, { Origin: UI }, body)).status).toBe(401);
    } finally {
      await stop(command);
      jwks.closeAllConnections();
      await new Promise((done) => jwks.close(done));
    }
  });

  test('--jwks without --issuer and --audience is refused at start', async () => {
    await expect(startCommand(['--jwks', jwksFile])).rejects.toMatchObject({
      exitCode: 2,
      message: expect.stringContaining('--jwks needs --issuer and --audience') as unknown,
    });
  });
});
