/**
 * `bulk-reset codec-server`: lets the Temporal Web UI show decrypted payloads to an operator who holds
 * the key. It speaks the UI's remote codec protocol (POST /decode and /encode with `{ payloads }` in
 * JSON, bytes in base64).
 *
 * Who gets an answer, checked before the body is read:
 * - a browser page of another origin never does (its `Origin` is not one of the UI's);
 * - with nothing configured, only requests that carry one of the UI's origins: that stops other web
 *   pages, not a local process, which can send any `Origin` it likes;
 * - with a token (BULK_RESET_CODEC_SERVER_TOKEN), only requests that carry it as a bearer token;
 * - with JWT checking (`--jwks`, `--issuer`, `--audience`), requests that carry the Web UI's sign-in
 *   token (the UI passes it when its codec setting "pass access token" is on), verified for signature,
 *   issuer, audience and expiry; the codec server's own token is still accepted beside it.
 * `/encode` seals anything it is sent with the deployment's key, and sealed payloads are what workers
 * trust to steer a job: it answers only the codec server's own token, and is off without one.
 */
import { timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Payload, PayloadCodec } from '@temporalio/common';

export interface JwtCheckOptions {
  /** The identity provider's signing keys: a JWKS file, or its https URL (http only on loopback). */
  jwks: string;
  /** The `iss` the tokens must carry: the identity provider the Web UI signs its users in with. */
  issuer: string;
  /** The `aud` the tokens must carry: the Web UI's own application, so tokens for other apps are refused. */
  audience: string;
}

export interface CodecServerOptions {
  codec: PayloadCodec;
  /** The Web UI's origins, e.g. http://localhost:8233: the only origins whose browser requests are answered. */
  allowedOrigins: string[];
  /** When set, requests must carry `Authorization: Bearer <token>` (or a valid sign-in token, with `jwt`). */
  token?: string;
  /** When set, a request must carry a sign-in token these settings verify (or the codec server's token). */
  jwt?: JwtCheckOptions;
  port?: number;
  /** Default 127.0.0.1: the browser that shows the UI runs on the operator's machine. */
  host?: string;
}

export interface CodecServer {
  url: string;
  close(): Promise<void>;
}

/** The JSON shape of a payload in the remote codec protocol. */
interface JsonPayload {
  metadata?: Record<string, string>;
  data?: string;
}

/**
 * One Temporal payload is at most 2 MiB (the server's default blob limit), 2.7 MiB in base64: a
 * request with the largest payload the UI can show fits.
 */
export const MAX_BODY_BYTES = 4 * 1024 * 1024;
/**
 * The Web UI sends one request per payload list of an event (an input, a result: one or a few
 * payloads), and the `temporal` CLI does the same; a thousand leaves room and bounds what one
 * request can make the server build.
 */
export const MAX_PAYLOADS = 1_000;
/** Temporal's own payloads carry two or three metadata entries. */
export const MAX_METADATA_ENTRIES = 32;

/** A request refused with its HTTP status and a message that says what to do. */
class Refusal extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Who a request was found to be: only the codec server's own token may encode. */
type Caller = 'token-holder' | 'signed-in' | 'web-ui-origin';

export async function startCodecServer(options: CodecServerOptions): Promise<CodecServer> {
  const allowedOrigins = new Set(options.allowedOrigins.map((origin) => origin.replace(/\/+$/, '')));
  const verifyJwt = options.jwt ? await jwtVerifier(options.jwt) : undefined;
  const server = createServer((request, response) => {
    const origin = request.headers.origin?.replace(/\/+$/, '');
    handle(request, response, origin).catch((error: unknown) => {
      if (response.headersSent) return;
      if (error instanceof Refusal) {
        answer(response, error.status, { message: error.message }, origin);
      } else {
        answer(response, 400, { message: error instanceof Error ? error.message : 'bad request' }, origin);
      }
    });
  });

  function answer(response: ServerResponse, status: number, body?: unknown, origin?: string): void {
    const cors =
      origin !== undefined && allowedOrigins.has(origin)
        ? {
            'Access-Control-Allow-Origin': origin,
            'Access-Control-Allow-Methods': 'POST, OPTIONS',
            'Access-Control-Allow-Headers': 'Content-Type, X-Namespace, Authorization',
            'Access-Control-Allow-Credentials': 'true',
          }
        : {};
    response.writeHead(status, {
      ...cors,
      Vary: 'Origin',
      'Content-Type': 'application/json',
      'Cache-Control': 'no-store',
    });
    response.end(body === undefined ? undefined : JSON.stringify(body));
  }

  /** Who the caller is, or a refusal; nothing of the body has been read yet. */
  async function identify(request: IncomingMessage, origin: string | undefined): Promise<Caller> {
    const bearer = /^Bearer (\S+)$/i.exec(request.headers.authorization ?? '')?.[1];
    if (bearer !== undefined && options.token !== undefined && sameSecret(bearer, options.token)) {
      return 'token-holder';
    }
    if (bearer !== undefined && verifyJwt) {
      const problem = await verifyJwt(bearer);
      if (problem === undefined) return 'signed-in';
      throw new Refusal(401, `the access token was refused (${problem}): sign in to the Web UI again`);
    }
    if (options.token !== undefined || verifyJwt) {
      throw new Refusal(
        401,
        verifyJwt
          ? 'a bearer token is required: the Web UI sign-in token (turn on its codec setting "pass access token") or the codec server token'
          : 'a bearer token is required: the codec server token (temporal ... --codec-auth "Bearer TOKEN")',
      );
    }
    if (origin === undefined) {
      throw new Refusal(
        403,
        'this codec server answers only the Web UI (a request with its Origin): to decode from the temporal CLI, ' +
          'start the codec server with a token (BULK_RESET_CODEC_SERVER_TOKEN) and pass --codec-auth "Bearer TOKEN"',
      );
    }
    return 'web-ui-origin';
  }

  async function handle(
    request: IncomingMessage,
    response: ServerResponse,
    origin: string | undefined,
  ): Promise<void> {
    if (origin !== undefined && !allowedOrigins.has(origin)) {
      answer(response, 403, { message: `origin ${origin} is not allowed` });
      return;
    }
    if (request.method === 'OPTIONS') {
      answer(response, 204, undefined, origin);
      return;
    }
    const path = new URL(request.url ?? '/', 'http://codec').pathname;
    if (request.method !== 'POST' || (path !== '/decode' && path !== '/encode')) {
      answer(response, 404, { message: 'POST /decode or /encode' }, origin);
      return;
    }
    if (path === '/encode' && options.token === undefined) {
      throw new Refusal(
        403,
        'encode is off: start the codec server with a token (BULK_RESET_CODEC_SERVER_TOKEN) to seal payloads',
      );
    }
    const caller = await identify(request, origin);
    if (path === '/encode' && caller !== 'token-holder') {
      throw new Refusal(401, 'encode needs the codec server token as the bearer token');
    }
    const payloads = parsePayloads(await readBody(request, response));
    const result =
      path === '/decode' ? await options.codec.decode(payloads) : await options.codec.encode(payloads);
    answer(response, 200, { payloads: result.map(toJson) }, origin);
  }

  await new Promise<void>((ready, fail) => {
    server.once('error', fail);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => ready());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${options.host ?? '127.0.0.1'}:${port}`,
    close: () =>
      new Promise<void>((done) => {
        server.close(() => done());
        server.closeIdleConnections();
      }),
  };
}

/**
 * A function that says why a JWT is not acceptable, or nothing when it is. jose is loaded only when
 * JWT checking is configured: it is an ES module, which a plain codec server does not need to load.
 */
async function jwtVerifier(check: JwtCheckOptions): Promise<(token: string) => Promise<string | undefined>> {
  const { createLocalJWKSet, createRemoteJWKSet, jwtVerify } = await import('jose');
  let keys: Parameters<typeof jwtVerify>[1];
  if (/^https?:\/\//i.test(check.jwks)) {
    const url = new URL(check.jwks);
    if (url.protocol !== 'https:' && !['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname)) {
      throw new Error(`--jwks ${check.jwks}: the signing keys must come over https (http only on loopback)`);
    }
    keys = createRemoteJWKSet(url);
  } else {
    let text: string;
    try {
      text = await readFile(check.jwks, 'utf8');
    } catch (error) {
      // No `cause`: the CLI prints the innermost cause, and this message (which has it) says what to do.
      // eslint-disable-next-line preserve-caught-error
      throw new Error(
        `--jwks ${check.jwks} cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)}): give the identity provider's JWKS file or URL`,
      );
    }
    try {
      keys = createLocalJWKSet(JSON.parse(text) as Parameters<typeof createLocalJWKSet>[0]);
    } catch (error) {
      // eslint-disable-next-line preserve-caught-error
      throw new Error(
        `--jwks ${check.jwks} is not a JSON Web Key Set (${(error as Error).message}): give the identity provider's JWKS ({"keys": [...]})`,
      );
    }
  }
  return async (token) => {
    try {
      await jwtVerify(token, keys, {
        issuer: check.issuer,
        audience: check.audience,
        requiredClaims: ['exp'],
      });
      return undefined;
    } catch (error) {
      // jose's messages name the failed check ("exp" claim timestamp check failed), never the token.
      return error instanceof Error ? error.message : 'invalid token';
    }
  };
}

function sameSecret(given: string, wanted: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(wanted);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The body, refused unread when its declared size is over the limit, and cut off when it grows past it. */
async function readBody(request: IncomingMessage, response: ServerResponse): Promise<string> {
  const tooLarge = () => {
    // The rest is drained, not kept, so the client reads the answer; the connection closes after.
    response.shouldKeepAlive = false;
    request.resume();
    return new Refusal(
      413,
      `the body is larger than ${MAX_BODY_BYTES} bytes: send fewer payloads per request`,
    );
  };
  if (Number(request.headers['content-length'] ?? 0) > MAX_BODY_BYTES) throw tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw tooLarge();
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * The most objects and arrays a body of MAX_PAYLOADS payloads holds: the body, its list, and per
 * payload itself and its metadata. Counted in the text before parsing, so a body of a million empty
 * objects is refused before JSON.parse builds them (it would take about 150 MB for a 4 MiB body).
 */
const MAX_OPENINGS = 2 + 2 * MAX_PAYLOADS;

/** `{ payloads: [...] }`, checked for shape and size before any payload is built. */
function parsePayloads(text: string): Payload[] {
  let openings = 0;
  for (let index = 0; index < text.length; index += 1) {
    const code = text.charCodeAt(index);
    if (code === 0x7b /* { */ || code === 0x5b /* [ */) openings += 1;
  }
  if (openings > MAX_OPENINGS) {
    throw new Refusal(413, `more than ${MAX_PAYLOADS} payloads in one request: send fewer per request`);
  }
  const body = JSON.parse(text) as { payloads?: unknown };
  if (!Array.isArray(body?.payloads)) throw new Refusal(400, 'the body must be {"payloads": [...]}');
  if (body.payloads.length > MAX_PAYLOADS) {
    throw new Refusal(
      413,
      `${body.payloads.length} payloads in one request; at most ${MAX_PAYLOADS}: send fewer per request`,
    );
  }
  return body.payloads.map((payload: unknown, index) => fromJson(payload, index));
}

function fromJson(value: unknown, index: number): Payload {
  const payload = value as JsonPayload | null;
  if (
    typeof payload !== 'object' ||
    payload === null ||
    (payload.data !== undefined && typeof payload.data !== 'string') ||
    (payload.metadata !== undefined && (typeof payload.metadata !== 'object' || payload.metadata === null))
  ) {
    throw new Refusal(400, `payload ${index}: expected {"metadata": {name: base64}, "data": base64}`);
  }
  const metadata = Object.entries(payload.metadata ?? {});
  if (metadata.some(([, entry]) => typeof entry !== 'string')) {
    throw new Refusal(400, `payload ${index}: expected {"metadata": {name: base64}, "data": base64}`);
  }
  if (metadata.length > MAX_METADATA_ENTRIES) {
    throw new Refusal(
      413,
      `payload ${index} has ${metadata.length} metadata entries; at most ${MAX_METADATA_ENTRIES}`,
    );
  }
  return {
    metadata: Object.fromEntries(metadata.map(([key, entry]) => [key, Buffer.from(entry, 'base64')])),
    data: Buffer.from(payload.data ?? '', 'base64'),
  };
}

function toJson(payload: Payload): JsonPayload {
  return {
    metadata: Object.fromEntries(
      Object.entries(payload.metadata ?? {}).map(([key, value]) => [
        key,
        Buffer.from(value ?? new Uint8Array()).toString('base64'),
      ]),
    ),
    data: Buffer.from(payload.data ?? new Uint8Array()).toString('base64'),
  };
}
