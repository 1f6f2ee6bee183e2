/**
 * The one configuration loader: environment variables (and Temporal's own config file/profile via
 * @temporalio/envconfig), with defaults that work on a laptop. Command-line flags override these.
 */
import { homedir, hostname, userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import { Connection } from '@temporalio/client';
import { loadClientConnectConfig } from '@temporalio/envconfig';
import { NativeConnection } from '@temporalio/worker';
import { DEFAULT_GRAPH_BASE_URL } from '../activities/graphClient';
import type { CredentialConfig } from '../activities/credentials';

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
