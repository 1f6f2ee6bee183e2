/**
 * `bulk-reset codec-server`: lets the Temporal Web UI show decrypted payloads to an operator who holds
 * the key. It speaks the UI's remote codec protocol (POST /decode and /encode with `{ payloads }` in
 * JSON, bytes in base64), answers only the UI's origin, and can require a bearer token.
 */
import { timingSafeEqual } from 'node:crypto';
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Payload, PayloadCodec } from '@temporalio/common';

export interface CodecServerOptions {
  codec: PayloadCodec;
  /** The Web UI's origins, e.g. http://localhost:8233: the only origins whose browser requests are answered. */
  allowedOrigins: string[];
  /** When set, requests must carry `Authorization: Bearer <token>`. */
  token?: string;
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

const MAX_BODY_BYTES = 4 * 1024 * 1024;

export async function startCodecServer(options: CodecServerOptions): Promise<CodecServer> {
  const allowedOrigins = new Set(options.allowedOrigins.map((origin) => origin.replace(/\/+$/, '')));
  const server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      if (!response.headersSent)
        answer(response, 400, { message: error instanceof Error ? error.message : 'bad request' });
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

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const origin = request.headers.origin?.replace(/\/+$/, '');
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
    if (options.token !== undefined && !bearerMatches(request.headers.authorization, options.token)) {
      answer(response, 401, { message: 'a bearer token is required' }, origin);
      return;
    }
    const body = JSON.parse(await readBody(request)) as { payloads?: JsonPayload[] };
    if (!Array.isArray(body.payloads)) throw new Error('the body must be {"payloads": [...]}');
    const payloads = body.payloads.map(fromJson);
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
    close: () => new Promise<void>((done) => server.close(() => done())),
  };
}

function bearerMatches(header: string | undefined, token: string): boolean {
  const given = Buffer.from(header ?? '');
  const wanted = Buffer.from(`Bearer ${token}`);
  return given.length === wanted.length && timingSafeEqual(given, wanted);
}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new Error(`the body is larger than ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function fromJson(payload: JsonPayload): Payload {
  return {
    metadata: Object.fromEntries(
      Object.entries(payload.metadata ?? {}).map(([key, value]) => [key, Buffer.from(value, 'base64')]),
    ),
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
