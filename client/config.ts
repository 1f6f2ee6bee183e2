/**
 * The one configuration loader: environment variables (and Temporal's own config file/profile via
 * @temporalio/envconfig), with defaults that work on a laptop. Command-line flags override these.
 */
import { homedir, hostname, userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import { loadClientConnectConfig } from '@temporalio/envconfig';
import { NativeConnection } from '@temporalio/worker';
import { DEFAULT_GRAPH_BASE_URL } from '../activities/graphClient';
import type { CredentialConfig } from '../activities/credentials';
import { type CodecKeySource, dataConverterFor, loadCodecKeys } from './codec';
import { tracingPlugins } from './tracing';

export interface TemporalSettings {
  address: string;
  namespace: string;
  apiKey?: string;
  tls?: ReturnType<typeof loadClientConnectConfig>['connectionOptions']['tls'];
}

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
  /** The protected-accounts list (BULK_RESET_PROTECTED_USERS): users never reset, see activities/protectedUsers. */
  protectedUsersPath?: string;
  /** Where the payload encryption keys come from (BULK_RESET_CODEC_KEYS, else a key file). */
  codecKeys: CodecKeySource;
}

/** Graph's published identity write budget: 3,000 writes per 150 s per app and tenant. */
export const DEFAULT_WRITES_PER_SECOND = 20;

export function loadSettings(env: NodeJS.ProcessEnv = process.env): Settings {
  const { namespace, connectionOptions } = loadClientConnectConfig({ overrideEnvVars: definedOnly(env) });
  const dataDir = resolve(env.BULK_RESET_DATA_DIR ?? join(homedir(), '.bulk-reset'));
  return {
    temporal: {
      address: connectionOptions.address ?? 'localhost:7233',
      namespace: namespace ?? 'default',
      apiKey: connectionOptions.apiKey,
      tls: connectionOptions.tls,
    },
    taskQueue: env.BULK_RESET_TASK_QUEUE ?? 'bulk-reset',
    dataDir,
    graphBaseUrl: env.GRAPH_BASE_URL ?? DEFAULT_GRAPH_BASE_URL,
    writesPerSecond: parseWritesPerSecond(env.BULK_RESET_WRITES_PER_SECOND),
    maxUsers: env.BULK_RESET_MAX_USERS ? Number(env.BULK_RESET_MAX_USERS) : undefined,
    protectedUsersPath: env.BULK_RESET_PROTECTED_USERS ? resolve(env.BULK_RESET_PROTECTED_USERS) : undefined,
    codecKeys: {
      inline: env.BULK_RESET_CODEC_KEYS || undefined,
      file: resolve(env.BULK_RESET_CODEC_KEY_FILE ?? join(dataDir, 'codec-keys')),
    },
    credential: {
      graphToken: env.GRAPH_TOKEN || undefined,
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

function definedOnly(env: NodeJS.ProcessEnv): Record<string, string> {
  return Object.fromEntries(
    Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined),
  );
}

export function connectClient(temporal: TemporalSettings): Promise<Connection> {
  return Connection.connect({ address: temporal.address, apiKey: temporal.apiKey, tls: temporal.tls });
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

export function connectWorker(temporal: TemporalSettings): Promise<NativeConnection> {
  return NativeConnection.connect({ address: temporal.address, apiKey: temporal.apiKey, tls: temporal.tls });
}

/**
 * Who the operator is, as recorded on jobs and approvals: BULK_RESET_OPERATOR (an incident-response
 * runbook sets it to the person or automation on whose behalf it acts), else user@host.
 */
export function operatorIdentity(env: NodeJS.ProcessEnv = process.env): string {
  const named = env.BULK_RESET_OPERATOR?.trim();
  if (named) return named;
  return `${userInfo().username}@${hostname()}`;
}
