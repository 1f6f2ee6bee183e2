/**
 * The one configuration loader: environment variables (and Temporal's own config file/profile via
 * @temporalio/envconfig), with defaults that work on a laptop. Command-line flags override these.
 */
import { homedir, hostname, userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import { loadClientConnectConfig } from '@temporalio/envconfig';
import { DEFAULT_GRAPH_BASE_URL } from '../graph/client';
import { type CredentialConfig, appCredentialFromEnv } from '../graph/credentials';
import { PrivateFileError, readPrivateFileSync } from '../secrets/privateFile';
import { type CodecKeySource, dataConverterFor, loadCodecKeys } from './codec';
import { tracingPlugins } from './tracing';
import { normaliseOperator } from '../workflows/types';

export interface TemporalSettings {
  address: string;
  namespace: string;
  /** Temporal Cloud API key. Not enumerable, so printing or serializing the settings leaves it out. */
  apiKey?: string;
  /** `false` or absent: plaintext. An API key turns TLS on unless TEMPORAL_TLS=false says otherwise. */
  tls?: ConnectOptions['tls'];
  /** gRPC headers on every call (TEMPORAL_GRPC_META_*, or the profile's grpc_meta). */
  metadata?: ConnectOptions['metadata'];
}

type ConnectOptions = ReturnType<typeof loadClientConnectConfig>['connectionOptions'];

export interface Settings {
  temporal: TemporalSettings;
  taskQueue: string;
  /** Job files, reports and the operator's sign-in live here. */
  dataDir: string;
  graphBaseUrl: string;
  credential: CredentialConfig;
  /** resetPassword requests per second for all workers together; 0 for no limit. */
  writesPerSecond: number;
  /** The blast-radius limit: `start` refuses more users than this without --allow-large. */
  maxUsers?: number;
  /** The protected-accounts list (BULK_RESET_PROTECTED_USERS): users never reset, see jobs/protectedUsers. */
  protectedUsersPath?: string;
  /** Where the payload encryption keys come from (BULK_RESET_CODEC_KEYS, else a key file). */
  codecKeys: CodecKeySource;
  /** The bearer token `codec-server` requires (BULK_RESET_CODEC_SERVER_TOKEN); none when unset. */
  codecServerToken?: string;
  /**
   * How `codec-server` verifies the Web UI's sign-in tokens (BULK_RESET_CODEC_SERVER_JWKS, _ISSUER,
   * _AUDIENCE; its flags override them); off when the JWKS is unset.
   */
  codecServerJwt: { jwks?: string; issuer?: string; audience?: string };
  /** Workflow code bundled ahead of time (BULK_RESET_WORKFLOW_BUNDLE, see worker/bundle); else bundled at start. */
  workflowBundlePath?: string;
  /** Where a worker serves Prometheus metrics (BULK_RESET_METRICS, `host:port` or a port); off when unset. */
  metrics?: string;
  /**
   * A worker logs errors in full, user names, Graph messages and stack traces included
   * (BULK_RESET_LOG_VERBOSE=1); by default they are summarised (see worker/logging).
   */
  verboseLogs: boolean;
  /**
   * The Temporal Web UI's address (BULK_RESET_WEB_UI, like `http://localhost:8233`): reports link each
   * user's row to its workflow there. No links when unset.
   */
  webUi?: string;
}

/** Graph's published identity write budget: 3,000 writes per 150 s per app and tenant. */
export const DEFAULT_WRITES_PER_SECOND = 20;

export function loadSettings(env: NodeJS.ProcessEnv = process.env): Settings {
  const dataDir = resolve(env.BULK_RESET_DATA_DIR ?? join(homedir(), '.bulk-reset'));
  return {
    temporal: loadTemporalSettings(env),
    taskQueue: env.BULK_RESET_TASK_QUEUE ?? 'bulk-reset',
    dataDir,
    graphBaseUrl: env.GRAPH_BASE_URL ?? DEFAULT_GRAPH_BASE_URL,
    writesPerSecond: parseWritesPerSecond(env.BULK_RESET_WRITES_PER_SECOND),
    maxUsers: env.BULK_RESET_MAX_USERS ? Number(env.BULK_RESET_MAX_USERS) : undefined,
    protectedUsersPath: env.BULK_RESET_PROTECTED_USERS ? resolve(env.BULK_RESET_PROTECTED_USERS) : undefined,
    workflowBundlePath: env.BULK_RESET_WORKFLOW_BUNDLE ? resolve(env.BULK_RESET_WORKFLOW_BUNDLE) : undefined,
    codecKeys: {
      inline: env.BULK_RESET_CODEC_KEYS || undefined,
      file: resolve(env.BULK_RESET_CODEC_KEY_FILE ?? join(dataDir, 'codec-keys')),
    },
    codecServerToken: env.BULK_RESET_CODEC_SERVER_TOKEN || undefined,
    codecServerJwt: {
      jwks: env.BULK_RESET_CODEC_SERVER_JWKS || undefined,
      issuer: env.BULK_RESET_CODEC_SERVER_ISSUER || undefined,
      audience: env.BULK_RESET_CODEC_SERVER_AUDIENCE || undefined,
    },
    metrics: env.BULK_RESET_METRICS?.trim() || undefined,
    verboseLogs: ['1', 'true', 'yes'].includes(env.BULK_RESET_LOG_VERBOSE?.trim().toLowerCase() ?? ''),
    webUi: env.BULK_RESET_WEB_UI?.trim() || undefined,
    credential: {
      graphToken: env.GRAPH_TOKEN || undefined,
      app: appCredentialFromEnv(env),
      tenantId: env.AZURE_TENANT_ID,
      clientId: env.AZURE_CLIENT_ID,
      authDir: join(dataDir, 'auth'),
      cacheKey: env.BULK_RESET_TOKEN_CACHE_KEY
        ? Buffer.from(env.BULK_RESET_TOKEN_CACHE_KEY, 'base64')
        : undefined,
    },
  };
}

function parseWritesPerSecond(value: string | undefined): number {
  if (value === undefined || value.trim() === '') return DEFAULT_WRITES_PER_SECOND;
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed < 0) {
    throw new Error(
      `BULK_RESET_WRITES_PER_SECOND must be a number of requests per second (0 for no limit), got "${value}"`,
    );
  }
  return parsed;
}

/**
 * Where Temporal is and how to authenticate, through @temporalio/envconfig: the standard TEMPORAL_*
 * variables (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS,
 * TEMPORAL_TLS_CLIENT_CERT_PATH/_KEY_PATH, TEMPORAL_TLS_SERVER_CA_CERT_PATH, TEMPORAL_TLS_SERVER_NAME,
 * TEMPORAL_GRPC_META_*) over the profile (TEMPORAL_PROFILE) of the TOML config file
 * (TEMPORAL_CONFIG_FILE, else ~/.config/temporalio/temporal.toml). One addition of ours:
 * TEMPORAL_API_KEY_FILE, a file holding the API key (a Docker or Kubernetes secret), so the key need
 * not sit in the environment.
 */
export function loadTemporalSettings(env: NodeJS.ProcessEnv = process.env): TemporalSettings {
  // An empty variable counts as unset (Compose passes `${VAR:-}` as ""): an empty TEMPORAL_API_KEY
  // must not turn TLS on against a plaintext server.
  const given = nonEmpty(env);
  const keyFile = given.TEMPORAL_API_KEY_FILE;
  if (keyFile !== undefined && given.TEMPORAL_API_KEY !== undefined) {
    throw new Error('TEMPORAL_API_KEY and TEMPORAL_API_KEY_FILE are both set; keep one of them');
  }
  if (keyFile !== undefined) given.TEMPORAL_API_KEY = readApiKeyFile(keyFile);
  if (/^(1|true)$/i.test(given.TEMPORAL_TLS_DISABLE_HOST_VERIFICATION ?? '')) {
    throw new Error(
      'TEMPORAL_TLS_DISABLE_HOST_VERIFICATION is not supported: set TEMPORAL_TLS_SERVER_NAME to the name ' +
        "in the server's certificate instead",
    );
  }
  const { namespace, connectionOptions } = loadClientConnectConfig({ overrideEnvVars: given });
  const { address, apiKey, tls, metadata } = connectionOptions;
  if (tls === false && apiKey !== undefined) {
    throw new Error(
      'a Temporal API key is set but TEMPORAL_TLS=false (or the profile disables TLS): the key would travel ' +
        'in plaintext; remove TEMPORAL_TLS=false',
    );
  }
  if (tls === false && hasTlsFiles(given)) {
    throw new Error(
      'TEMPORAL_TLS_* certificate settings are given but TEMPORAL_TLS=false: remove one or the other',
    );
  }
  const settings: TemporalSettings = {
    address: address ?? 'localhost:7233',
    namespace: namespace ?? 'default',
    tls,
    metadata: metadata && Object.keys(metadata).length > 0 ? metadata : undefined,
  };
  if (apiKey !== undefined) {
    Object.defineProperty(settings, 'apiKey', { value: apiKey, enumerable: false, writable: true });
  }
  return settings;
}

function readApiKeyFile(path: string): string {
  let key: string;
  try {
    key = readPrivateFileSync(path, 'the Temporal API key file (TEMPORAL_API_KEY_FILE)')
      .toString('utf8')
      .trim();
  } catch (error) {
    if (error instanceof PrivateFileError) throw error;
    throw new Error(
      `TEMPORAL_API_KEY_FILE=${path} cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)}): ` +
        'point it at the file that holds the Temporal Cloud API key',
      { cause: error },
    );
  }
  if (key === '')
    throw new Error(`TEMPORAL_API_KEY_FILE=${path} is empty: put the Temporal Cloud API key in it`);
  return key;
}

function hasTlsFiles(env: Record<string, string>): boolean {
  return ['CLIENT_CERT', 'CLIENT_KEY', 'SERVER_CA_CERT'].some(
    (name) =>
      env[`TEMPORAL_TLS_${name}_PATH`] !== undefined || env[`TEMPORAL_TLS_${name}_DATA`] !== undefined,
  );
}

function nonEmpty(env: NodeJS.ProcessEnv): Record<string, string> {
  return Object.fromEntries(
    Object.entries(env).filter(
      // An empty TEMPORAL_GRPC_META_<name> keeps its envconfig meaning: remove the profile's header.
      (entry): entry is [string, string] =>
        entry[1] !== undefined && (entry[1] !== '' || entry[0].startsWith('TEMPORAL_GRPC_META_')),
    ),
  );
}

/** What both connection kinds take: the same address, key, TLS and headers for clients and workers. */
export function connectionOptions(
  temporal: TemporalSettings,
): Pick<ConnectOptions, 'address' | 'apiKey' | 'tls' | 'metadata'> {
  return {
    address: temporal.address,
    apiKey: temporal.apiKey,
    tls: temporal.tls,
    metadata: temporal.metadata,
  };
}

export function connectClient(temporal: TemporalSettings): Promise<Connection> {
  return Connection.connect(connectionOptions(temporal)).catch((error: unknown) => {
    throw connectionFailure(temporal, error);
  });
}

/** A failed connection, said with what was tried and which settings to check. */
export function connectionFailure(temporal: TemporalSettings, error: unknown): Error {
  const tls = temporal.tls;
  const how = !tls
    ? 'plaintext'
    : temporal.apiKey !== undefined
      ? 'TLS with an API key'
      : typeof tls === 'object' && tls.clientCertPair
        ? 'TLS with a client certificate'
        : 'TLS without a client certificate';
  const hint =
    how === 'plaintext'
      ? 'check TEMPORAL_ADDRESS, and whether the server wants TLS (TEMPORAL_TLS=true, or an API key)'
      : how === 'TLS with an API key'
        ? 'check TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE and that the API key is valid and not expired'
        : how === 'TLS with a client certificate'
          ? 'check that the server trusts the client certificate (TEMPORAL_TLS_CLIENT_CERT_PATH) and that ' +
            'TEMPORAL_TLS_SERVER_CA_CERT_PATH / TEMPORAL_TLS_SERVER_NAME match the server'
          : 'if the server requires a client certificate, set TEMPORAL_TLS_CLIENT_CERT_PATH and ' +
            'TEMPORAL_TLS_CLIENT_KEY_PATH (or TEMPORAL_API_KEY for an API key)';
  const reason = error instanceof Error ? error.message : String(error);
  // The reason is in the message, not only the cause: the CLI prints the innermost cause of an error.
  return new Error(`cannot connect to Temporal at ${temporal.address} (${how}): ${reason}; ${hint}`);
}

/** The data converter every client and worker of these settings shares: payloads encrypted. */
export async function dataConverter(settings: Settings): Promise<DataConverter> {
  return dataConverterFor(await loadCodecKeys(settings.codecKeys));
}

/** A client of the settings' namespace that encrypts what it sends and decrypts what it reads. */
export async function createClient(settings: Settings): Promise<Client> {
  return new Client({
    connection: await connectClient(settings.temporal),
    namespace: settings.temporal.namespace,
    dataConverter: await dataConverter(settings),
    plugins: tracingPlugins(),
  });
}

/**
 * Who the operator is, as recorded on jobs and approvals: BULK_RESET_OPERATOR (an incident-response
 * runbook sets it to the person or automation on whose behalf it acts), else user@host.
 */
export function operatorIdentity(env: NodeJS.ProcessEnv = process.env): string {
  const named = normaliseOperator(env.BULK_RESET_OPERATOR ?? '');
  if (named) return named;
  return normaliseOperator(`${userInfo().username}@${hostname()}`);
}
