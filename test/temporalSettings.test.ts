/**
 * From the operator's variables (and Temporal's config file) to the options every client and worker
 * connects with: Temporal Cloud by API key or by client certificate, a self-hosted cluster, a laptop.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { connectionFailure, connectionOptions, loadSettings, loadTemporalSettings } from '../temporal/config';

const CLOUD = 'bulk-reset-prod.a1b2c.tmprl.cloud:7233';
const API_KEY = 'tmprl-api-key-for-tests-0123456789';

let dir: string;
const file = (name: string) => join(dir, name);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bulk-reset-settings-'));
  await writeFile(file('client.pem'), 'client certificate bytes');
  await writeFile(file('client.key'), 'client key bytes');
  await writeFile(file('ca.pem'), 'server CA bytes');
  // A key file is refused when others can read it (see privateFiles.test).
  await writeFile(file('api-key'), `${API_KEY}\n`, { mode: 0o600 });
  await writeFile(file('empty-key'), '\n', { mode: 0o600 });
  await writeFile(
    file('temporal.toml'),
    [
      '[profile.default]',
      'address = "localhost:7233"',
      '',
      '[profile.cloud]',
      `address = "${CLOUD}"`,
      'namespace = "bulk-reset-prod.a1b2c"',
      `api_key = "${API_KEY}"`,
      '',
      '[profile.cloud-mtls]',
      `address = "${CLOUD}"`,
      'namespace = "bulk-reset-prod.a1b2c"',
      '[profile.cloud-mtls.tls]',
      `client_cert_path = "${file('client.pem')}"`,
      `client_key_path = "${file('client.key')}"`,
      '',
    ].join('\n'),
  );
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('without settings: the local dev server, namespace default, plaintext', () => {
  const temporal = loadTemporalSettings({});
  expect(temporal).toEqual({
    address: 'localhost:7233',
    namespace: 'default',
    tls: undefined,
    metadata: undefined,
  });
  expect(temporal.apiKey).toBeUndefined();
});

test('an API key turns TLS on, and is passed to the connection', () => {
  const temporal = loadTemporalSettings({
    TEMPORAL_ADDRESS: CLOUD,
    TEMPORAL_NAMESPACE: 'bulk-reset-prod.a1b2c',
    TEMPORAL_API_KEY: API_KEY,
  });
  expect(temporal).toMatchObject({ address: CLOUD, namespace: 'bulk-reset-prod.a1b2c', tls: true });
  expect(connectionOptions(temporal)).toEqual({
    address: CLOUD,
    apiKey: API_KEY,
    tls: true,
    metadata: undefined,
  });
});

test('the API key never shows when the settings are printed or serialized', () => {
  const settings = loadSettings({ TEMPORAL_ADDRESS: CLOUD, TEMPORAL_API_KEY: API_KEY });
  expect(settings.temporal.apiKey).toBe(API_KEY);
  expect(JSON.stringify(settings)).not.toContain(API_KEY);
  expect(inspect(settings, { depth: 10 })).not.toContain(API_KEY);
  expect(JSON.stringify({ ...settings.temporal })).not.toContain(API_KEY);
  const failure = connectionFailure(settings.temporal, new Error('14 UNAVAILABLE: handshake failed'));
  expect(failure.message).toBe(
    `cannot connect to Temporal at ${CLOUD} (TLS with an API key): 14 UNAVAILABLE: handshake failed; ` +
      'check TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE and that the API key is valid and not expired',
  );
  expect(failure.message).not.toContain(API_KEY);
});

test('TEMPORAL_API_KEY_FILE reads the key from a file (a mounted secret), trimmed', () => {
  const temporal = loadTemporalSettings({ TEMPORAL_ADDRESS: CLOUD, TEMPORAL_API_KEY_FILE: file('api-key') });
  expect(temporal.apiKey).toBe(API_KEY);
  expect(temporal.tls).toBe(true);
});

test('a missing or empty key file, or a key given twice, is refused with what to do', () => {
  expect(() => loadTemporalSettings({ TEMPORAL_API_KEY_FILE: file('nope') })).toThrow(
    `TEMPORAL_API_KEY_FILE=${file('nope')} cannot be read (ENOENT)`,
  );
  expect(() => loadTemporalSettings({ TEMPORAL_API_KEY_FILE: file('empty-key') })).toThrow('is empty');
  expect(() =>
    loadTemporalSettings({ TEMPORAL_API_KEY: API_KEY, TEMPORAL_API_KEY_FILE: file('api-key') }),
  ).toThrow('TEMPORAL_API_KEY and TEMPORAL_API_KEY_FILE are both set; keep one of them');
});

test('an API key is never sent in plaintext: TEMPORAL_TLS=false with a key is refused', () => {
  expect(() => loadTemporalSettings({ TEMPORAL_API_KEY: API_KEY, TEMPORAL_TLS: 'false' })).toThrow(
    'the key would travel in plaintext',
  );
});

test('empty variables count as unset: an empty TEMPORAL_API_KEY does not turn TLS on', () => {
  const temporal = loadTemporalSettings({
    TEMPORAL_ADDRESS: 'temporal:7233',
    TEMPORAL_API_KEY: '',
    TEMPORAL_TLS_CLIENT_CERT_PATH: '',
  });
  expect(temporal).toEqual({
    address: 'temporal:7233',
    namespace: 'default',
    tls: undefined,
    metadata: undefined,
  });
  expect(temporal.apiKey).toBeUndefined();
});

test('mTLS: the client certificate and key, the server CA and the server name become the TLS options', () => {
  const temporal = loadTemporalSettings({
    TEMPORAL_ADDRESS: CLOUD,
    TEMPORAL_TLS_CLIENT_CERT_PATH: file('client.pem'),
    TEMPORAL_TLS_CLIENT_KEY_PATH: file('client.key'),
    TEMPORAL_TLS_SERVER_CA_CERT_PATH: file('ca.pem'),
    TEMPORAL_TLS_SERVER_NAME: 'frontend.internal',
  });
  expect(temporal.apiKey).toBeUndefined();
  expect(temporal.tls).toEqual({
    clientCertPair: { crt: Buffer.from('client certificate bytes'), key: Buffer.from('client key bytes') },
    serverRootCACertificate: Buffer.from('server CA bytes'),
    serverNameOverride: 'frontend.internal',
  });
});

test('TEMPORAL_TLS=true alone: TLS against the system trust store', () => {
  expect(loadTemporalSettings({ TEMPORAL_TLS: 'true' }).tls).toMatchObject({ clientCertPair: undefined });
});

test('certificates with TEMPORAL_TLS=false, or host verification switched off, are refused', () => {
  expect(() =>
    loadTemporalSettings({ TEMPORAL_TLS: 'false', TEMPORAL_TLS_CLIENT_CERT_PATH: file('client.pem') }),
  ).toThrow('TEMPORAL_TLS=false');
  expect(() => loadTemporalSettings({ TEMPORAL_TLS_DISABLE_HOST_VERIFICATION: 'true' })).toThrow(
    'set TEMPORAL_TLS_SERVER_NAME',
  );
});

test("a profile of Temporal's config file is used, and the variables override it", () => {
  const cloud = loadTemporalSettings({
    TEMPORAL_CONFIG_FILE: file('temporal.toml'),
    TEMPORAL_PROFILE: 'cloud',
  });
  expect(cloud).toMatchObject({ address: CLOUD, namespace: 'bulk-reset-prod.a1b2c', tls: true });
  expect(cloud.apiKey).toBe(API_KEY);

  const overridden = loadTemporalSettings({
    TEMPORAL_CONFIG_FILE: file('temporal.toml'),
    TEMPORAL_PROFILE: 'cloud',
    TEMPORAL_NAMESPACE: 'bulk-reset-staging.a1b2c',
  });
  expect(overridden.namespace).toBe('bulk-reset-staging.a1b2c');

  const mtls = loadTemporalSettings({
    TEMPORAL_CONFIG_FILE: file('temporal.toml'),
    TEMPORAL_PROFILE: 'cloud-mtls',
  });
  expect(mtls.tls).toMatchObject({
    clientCertPair: { crt: Buffer.from('client certificate bytes'), key: Buffer.from('client key bytes') },
  });

  expect(() =>
    loadTemporalSettings({ TEMPORAL_CONFIG_FILE: file('temporal.toml'), TEMPORAL_PROFILE: 'nope' }),
  ).toThrow("Profile 'nope' not found");
});

test('TEMPORAL_GRPC_META_* headers go on every call', () => {
  const temporal = loadTemporalSettings({ TEMPORAL_GRPC_META_X_TENANT_ROUTE: 'emea' });
  expect(connectionOptions(temporal).metadata).toEqual({ 'x-tenant-route': 'emea' });
});

test('the codec server token is read with the other settings; empty means none', () => {
  expect(loadSettings({ BULK_RESET_CODEC_SERVER_TOKEN: 's3cret-token' }).codecServerToken).toBe(
    's3cret-token',
  );
  expect(loadSettings({ BULK_RESET_CODEC_SERVER_TOKEN: '' }).codecServerToken).toBeUndefined();
});
