/**
 * Temporal over mutual TLS, as with Temporal Cloud's certificate authentication: the CLI and a worker
 * configured only through the standard TEMPORAL_TLS_* variables reach the dev server through a TLS
 * endpoint that demands a client certificate from a CA made for this test, and are refused, with a
 * message that says so, without one.
 *
 * The dev server has no TLS of its own, so a small TLS terminator in this process stands in for the
 * cloud's frontend: it checks the client certificate and then relays the bytes to the dev server.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Server, type TLSSocket, createServer as createTlsServer } from 'node:tls';
import { promisify } from 'node:util';
import { loadSettings } from '../temporal/config';
import { createWorker } from '../worker';
import { type Stage, cli, openStage, testTemporalAddress, workflowBundle } from './support/harness';

const run = promisify(execFile);

interface Pki {
  dir: string;
  caCert: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  strangerCert: string;
  strangerKey: string;
}

/** A throwaway CA with a server certificate for localhost and a client certificate; plus a client of another CA. */
async function makePki(): Promise<Pki> {
  const dir = await mkdtemp(join(tmpdir(), 'bulk-reset-tls-'));
  const at = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => run('openssl', args, { cwd: dir });
  const newCa = async (name: string) => {
    await openssl(
      ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1'],
      ...['-keyout', at(`${name}.key`), '-out', at(`${name}.crt`), '-subj', `/CN=bulk-reset test ${name}`],
      ...['-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'],
    );
  };
  const issue = async (name: string, ca: string, subject: string, extensions: string) => {
    await writeFile(at(`${name}.ext`), extensions);
    await openssl(
      ...['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'],
      ...['-keyout', at(`${name}.key`), '-out', at(`${name}.csr`), '-subj', `/CN=${subject}`],
    );
    await openssl(
      ...['x509', '-req', '-in', at(`${name}.csr`), '-CA', at(`${ca}.crt`), '-CAkey', at(`${ca}.key`)],
      ...[
        '-set_serial',
        String(Date.now()),
        '-days',
        '1',
        '-out',
        at(`${name}.crt`),
        '-extfile',
        at(`${name}.ext`),
      ],
    );
  };
  const leaf = 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n';
  await newCa('ca');
  await newCa('other-ca');
  await issue(
    'server',
    'ca',
    'localhost',
    `${leaf}extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost\n`,
  );
  await issue('client', 'ca', 'bulk-reset-worker', `${leaf}extendedKeyUsage=clientAuth\n`);
  await issue('stranger', 'other-ca', 'bulk-reset-stranger', `${leaf}extendedKeyUsage=clientAuth\n`);
  return {
    dir,
    caCert: at('ca.crt'),
    serverCert: at('server.crt'),
    serverKey: at('server.key'),
    clientCert: at('client.crt'),
    clientKey: at('client.key'),
    strangerCert: at('stranger.crt'),
    strangerKey: at('stranger.key'),
  };
}

interface MtlsEndpoint {
  port: number;
  /** The subject of every client certificate the endpoint accepted. */
  accepted: string[];
  /** How many handshakes it refused. */
  refused(): number;
  close(): Promise<void>;
}

/** Terminates TLS, requires a client certificate signed by the test CA, relays to the dev server. */
async function startMtlsEndpoint(pki: Pki, upstream: string): Promise<MtlsEndpoint> {
  const separator = upstream.lastIndexOf(':');
  const upstreamHost = upstream.slice(0, separator);
  const upstreamPort = Number(upstream.slice(separator + 1));
  const accepted: string[] = [];
  let refused = 0;
  const server: Server = createTlsServer(
    {
      key: await readFile(pki.serverKey),
      cert: await readFile(pki.serverCert),
      ca: await readFile(pki.caCert),
      requestCert: true,
      rejectUnauthorized: true,
      ALPNProtocols: ['h2'],
    },
    (socket: TLSSocket) => {
      accepted.push(String(socket.getPeerCertificate().subject?.CN));
      const relay = netConnect(upstreamPort, upstreamHost);
      socket.pipe(relay).pipe(socket);
      socket.on('error', () => relay.destroy());
      relay.on('error', () => socket.destroy());
    },
  );
  server.on('tlsClientError', () => {
    refused += 1;
  });
  await new Promise<void>((ready) => server.listen(0, '127.0.0.1', ready));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('the TLS endpoint has no port');
  return {
    port: address.port,
    accepted,
    refused: () => refused,
    close: () => new Promise<void>((done) => server.close(() => done())),
  };
}

let pki: Pki;
let endpoint: MtlsEndpoint;
let stage: Stage;

/** The variables an operator sets for a Temporal endpoint with certificate authentication. */
function mtlsEnv(): Record<string, string> {
  return {
    TEMPORAL_ADDRESS: `localhost:${endpoint.port}`,
    TEMPORAL_TLS_CLIENT_CERT_PATH: pki.clientCert,
    TEMPORAL_TLS_CLIENT_KEY_PATH: pki.clientKey,
    TEMPORAL_TLS_SERVER_CA_CERT_PATH: pki.caCert,
  };
}

beforeAll(async () => {
  pki = await makePki();
  endpoint = await startMtlsEndpoint(pki, testTemporalAddress());
  // The stage's own client and worker connect with the same variables, through the endpoint.
  stage = await openStage({}, { env: mtlsEnv() });
  await stage.startWorker();
});

afterAll(async () => {
  await stage?.close();
  await endpoint?.close();
  if (pki) await rm(pki.dir, { recursive: true, force: true });
});

test('the settings turn the TEMPORAL_TLS_* variables into a client certificate and a CA, TLS on', async () => {
  const { temporal } = loadSettings(mtlsEnv());
  expect(temporal.address).toBe(`localhost:${endpoint.port}`);
  const tls = temporal.tls;
  if (typeof tls !== 'object' || tls === null) throw new Error(`TLS is off: ${String(tls)}`);
  expect(tls.clientCertPair?.crt).toEqual(await readFile(pki.clientCert));
  expect(tls.clientCertPair?.key).toEqual(await readFile(pki.clientKey));
  expect(tls.serverRootCACertificate).toEqual(await readFile(pki.caCert));
});

test('a worker and the CLI connect with the client certificate: start --wait resets every user, status reads it back', async () => {
  const csv = await stage.writeCsv(
    'users.csv',
    'userPrincipalName\nok.tls-ann@contoso.test\nok.tls-ben@contoso.test\nok.tls-cy@contoso.test\n',
  );
  const started = await cli(stage, 'start', csv, '--wait', '--min-wait', '100ms', '--default-wait', '200ms');
  expect(started.stderr).not.toContain('bulk-reset:');
  expect(started.code).toBe(0);
  const jobId = started.stdout.split('\n').find((line) => line.startsWith('reset-')) as string;
  expect(jobId).toBeDefined();

  const status = await cli(stage, 'status', jobId, '--json');
  expect(status.code).toBe(0);
  expect(JSON.parse(status.stdout)).toMatchObject({ state: 'completed', summary: { total: 3 } });

  // Ground truth: Graph saw the three resets, and every connection the endpoint let through
  // presented the test CA's client certificate.
  for (const user of ['ok.tls-ann@contoso.test', 'ok.tls-ben@contoso.test', 'ok.tls-cy@contoso.test']) {
    expect(stage.simulator.user(user)?.resetsAccepted).toBe(1);
  }
  expect(endpoint.accepted.length).toBeGreaterThanOrEqual(3); // stage client, worker, CLI processes
  expect(new Set(endpoint.accepted)).toEqual(new Set(['bulk-reset-worker']));
});

describe('without a valid client certificate', () => {
  /** The stage's variables less the client certificate (empty counts as unset). */
  const withoutCert = (): NodeJS.ProcessEnv => ({
    ...stage.env,
    TEMPORAL_TLS_CLIENT_CERT_PATH: '',
    TEMPORAL_TLS_CLIENT_KEY_PATH: '',
  });

  test('the CLI fails with exit code 2 and says the connection to Temporal was refused', async () => {
    const before = endpoint.refused();
    const status = await cli({ ...stage, env: withoutCert() }, 'status', 'reset-any');
    expect(status.code).toBe(2);
    expect(status.stderr).toContain(
      `cannot connect to Temporal at localhost:${endpoint.port} (TLS without a client certificate)`,
    );
    expect(status.stderr).toContain('set TEMPORAL_TLS_CLIENT_CERT_PATH');
    expect(endpoint.refused()).toBeGreaterThan(before);
  });

  test('a worker does not start and says why', async () => {
    const before = endpoint.refused();
    const settings = loadSettings(withoutCert());
    await expect(createWorker(settings, { workflowBundle: await workflowBundle() })).rejects.toThrow(
      `cannot connect to Temporal at localhost:${endpoint.port} (TLS without a client certificate)`,
    );
    expect(endpoint.refused()).toBeGreaterThan(before);
  });

  test('a certificate from another CA is refused too', async () => {
    const before = endpoint.refused();
    const status = await cli(
      {
        ...stage,
        env: {
          ...stage.env,
          TEMPORAL_TLS_CLIENT_CERT_PATH: pki.strangerCert,
          TEMPORAL_TLS_CLIENT_KEY_PATH: pki.strangerKey,
        },
      },
      'status',
      'reset-any',
    );
    expect(status.code).toBe(2);
    expect(status.stderr).toContain(
      `cannot connect to Temporal at localhost:${endpoint.port} (TLS with a client certificate)`,
    );
    expect(endpoint.refused()).toBeGreaterThan(before);
    expect(endpoint.accepted).not.toContain('bulk-reset-stranger');
  });
});
