/**
 * Where Graph tokens come from.
 *
 * resetPassword accepts only delegated tokens (a signed-in administrator), so an unattended worker
 * cannot use a client secret. Instead the operator signs in once with a device code (`bulk-reset
 * login`); the authentication record and MSAL's token cache are kept on disk, the cache encrypted
 * with AES-256-GCM, and the worker refreshes tokens silently from them. It never prompts: when the
 * refresh token is gone the worker's requests fail as `auth` errors and the operator signs in again.
 *
 * `--method password-profile` also works app-only, with no one signed in: an application's own credential,
 * chosen by configuration (BULK_RESET_GRAPH_AUTH, see {@link AppCredentialKind}), through @azure/identity,
 * never prompting. resetPassword is never sent with one (graph/client refuses it at the write).
 *
 * Tests and the simulator use a static token instead (GRAPH_TOKEN).
 */
import { randomBytes } from 'node:crypto';
import { open as openEnvelope, seal as sealEnvelope } from '../secrets/envelope';
import { mkdir, readFile, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { AccessToken, AuthenticationRecord, GetTokenOptions, TokenCredential } from '@azure/identity';
import { PrivateFileError, readPrivateFile, writePrivateFile } from '../secrets/privateFile';
import { tokenFacts } from './tokenClaims';

/**
 * @azure/identity is loaded only when an operator sign-in is used: the simulator, the tests and the
 * demo never need it, and it is the heaviest thing the worker would otherwise load at start.
 */
const azureIdentity = () => import('@azure/identity');

/**
 * An application's own credential, strongest first:
 * - `certificate`: a client certificate (PEM with its private key): the recommended one;
 * - `managed-identity`: the Azure host's identity (system-assigned, or user-assigned by AZURE_CLIENT_ID);
 * - `workload-identity`: a Kubernetes service account token federated with the app (AZURE_FEDERATED_TOKEN_FILE);
 * - `client-secret`: a shared secret: the weakest (it can be copied and used from anywhere until it expires).
 */
export type AppCredentialKind = 'certificate' | 'managed-identity' | 'workload-identity' | 'client-secret';

export const APP_CREDENTIAL_KINDS: readonly AppCredentialKind[] = [
  'certificate',
  'managed-identity',
  'workload-identity',
  'client-secret',
];

/** How the app-only credential is configured (BULK_RESET_GRAPH_AUTH and Azure's usual variables). */
export interface AppCredentialConfig {
  kind: AppCredentialKind;
  /** AZURE_CLIENT_CERTIFICATE_PATH: a PEM file holding the certificate and its private key. */
  certificatePath?: string;
  /** AZURE_CLIENT_CERTIFICATE_PASSWORD: the private key's passphrase, if it has one. */
  certificatePassword?: string;
  /** AZURE_CLIENT_SECRET. */
  clientSecret?: string;
  /** AZURE_FEDERATED_TOKEN_FILE (workload identity). */
  federatedTokenFile?: string;
  /** AZURE_AUTHORITY_HOST: the sign-in host of a national cloud; default Azure's public one. */
  authorityHost?: string;
}

export interface CredentialConfig {
  /** A fixed bearer token: for the simulator and tests only. */
  graphToken?: string;
  /** An application's own credential instead of the operator's sign-in (`--method password-profile` only). */
  app?: AppCredentialConfig;
  tenantId?: string;
  /** The operator's own public-client app registration (delegated UserAuthenticationMethod.ReadWrite.All). */
  clientId?: string;
  /** Folder for the authentication record and the encrypted token cache (created 0700). */
  authDir: string;
  /** 32-byte key for the token cache; when absent a key file is created beside the cache (mode 0600). */
  cacheKey?: Buffer;
}

/** A credential that always hands out the same token; the simulator accepts it, Graph would not. */
export class StaticTokenCredential implements TokenCredential {
  constructor(private readonly token: string) {}
  getToken(): Promise<AccessToken> {
    return Promise.resolve({ token: this.token, expiresOnTimestamp: Date.now() + 60 * 60 * 1000 });
  }
}

const RECORD_FILE = 'authentication-record.json';
const CACHE_FILE = 'token-cache.bin';
const KEY_FILE = 'token-cache.key';

/**
 * The credential the worker uses. Never prompts. It follows `bulk-reset login`: when the sign-in on disk is
 * replaced (another account, or the same one again), the next request uses it, so a job held for a sign-in
 * carries on without restarting the workers.
 */
export async function createCredential(config: CredentialConfig): Promise<TokenCredential> {
  if (config.graphToken) return new StaticTokenCredential(config.graphToken);
  if (config.app) return appCredential(config.app, config);
  const credential = new ReloadingCredential(join(config.authDir, RECORD_FILE), () =>
    operatorCredential(config),
  );
  // Once now, so a worker started before anyone signed in stops at once with what to do.
  await credential.current();
  return credential;
}

/**
 * Whether these settings give Graph an application's own credential rather than an operator's sign-in:
 * BULK_RESET_GRAPH_AUTH names one, or the fixed GRAPH_TOKEN is an app-only token (its claims say so).
 */
export function isAppOnlyConfig(config: CredentialConfig): boolean {
  if (config.graphToken !== undefined) return tokenFacts(config.graphToken).identity === 'app';
  return config.app !== undefined;
}

/**
 * The application's credential the configuration names. None of them prompts: a credential that cannot
 * get a token fails the request as `auth`, and the user's workflow holds until it works again.
 */
export async function appCredential(
  app: AppCredentialConfig,
  { tenantId, clientId }: Pick<CredentialConfig, 'tenantId' | 'clientId'>,
): Promise<TokenCredential> {
  const identity = await azureIdentity();
  const options = app.authorityHost ? { authorityHost: app.authorityHost } : {};
  const need = (value: string | undefined, name: string): string => {
    if (value) return value;
    throw new Error(`BULK_RESET_GRAPH_AUTH=${app.kind} needs ${name} (see README: app-only credentials)`);
  };
  switch (app.kind) {
    case 'certificate':
      return new identity.ClientCertificateCredential(
        need(tenantId, 'AZURE_TENANT_ID'),
        need(clientId, 'AZURE_CLIENT_ID'),
        {
          certificatePath: need(app.certificatePath, 'AZURE_CLIENT_CERTIFICATE_PATH'),
          ...(app.certificatePassword && { certificatePassword: app.certificatePassword }),
        },
        options,
      );
    case 'managed-identity':
      return clientId
        ? new identity.ManagedIdentityCredential({ clientId, ...options })
        : new identity.ManagedIdentityCredential(options);
    case 'workload-identity':
      return new identity.WorkloadIdentityCredential({
        tenantId: need(tenantId, 'AZURE_TENANT_ID'),
        clientId: need(clientId, 'AZURE_CLIENT_ID'),
        tokenFilePath: need(app.federatedTokenFile, 'AZURE_FEDERATED_TOKEN_FILE'),
        ...options,
      });
    case 'client-secret':
      return new identity.ClientSecretCredential(
        need(tenantId, 'AZURE_TENANT_ID'),
        need(clientId, 'AZURE_CLIENT_ID'),
        need(app.clientSecret, 'AZURE_CLIENT_SECRET'),
        options,
      );
  }
}

/** BULK_RESET_GRAPH_AUTH and the variables of the credential it names; undefined: the operator's sign-in. */
export function appCredentialFromEnv(env: NodeJS.ProcessEnv): AppCredentialConfig | undefined {
  const kind = env.BULK_RESET_GRAPH_AUTH?.trim() || 'operator';
  if (kind === 'operator') return undefined;
  if (!(APP_CREDENTIAL_KINDS as readonly string[]).includes(kind)) {
    throw new Error(
      `BULK_RESET_GRAPH_AUTH is operator (the default: a signed-in operator) or an app-only credential: ${APP_CREDENTIAL_KINDS.join(', ')}; not "${kind}"`,
    );
  }
  return {
    kind: kind as AppCredentialKind,
    certificatePath: env.AZURE_CLIENT_CERTIFICATE_PATH || undefined,
    certificatePassword: env.AZURE_CLIENT_CERTIFICATE_PASSWORD || undefined,
    clientSecret: env.AZURE_CLIENT_SECRET || undefined,
    federatedTokenFile: env.AZURE_FEDERATED_TOKEN_FILE || undefined,
    authorityHost: env.AZURE_AUTHORITY_HOST || undefined,
  };
}

async function operatorCredential(config: CredentialConfig): Promise<TokenCredential> {
  const { tenantId, clientId } = requireAppRegistration(config);
  const { DeviceCodeCredential, deserializeAuthenticationRecord } = await azureIdentity();
  let record: AuthenticationRecord;
  try {
    record = deserializeAuthenticationRecord(await readFile(join(config.authDir, RECORD_FILE), 'utf8'));
  } catch {
    throw new Error(
      `no operator sign-in found in ${config.authDir}; run \`bulk-reset login\` first (or set GRAPH_TOKEN for the simulator)`,
    );
  }
  await installEncryptedCache(config);
  return new DeviceCodeCredential({
    tenantId,
    clientId,
    authenticationRecord: record,
    disableAutomaticAuthentication: true,
    tokenCachePersistenceOptions: { enabled: true, name: 'bulk-reset' },
  });
}

/**
 * A credential rebuilt whenever a file it depends on (the authentication record `login` writes) changes:
 * the file's identity, size and modification time are compared before each token request.
 */
export class ReloadingCredential implements TokenCredential {
  private loaded?: { stamp: string; credential: Promise<TokenCredential> };

  constructor(
    private readonly path: string,
    private readonly build: () => Promise<TokenCredential>,
  ) {}

  /** The credential for the file as it is now; built again only when the file changed. */
  async current(): Promise<TokenCredential> {
    const stamp = await fileStamp(this.path);
    let loaded = this.loaded;
    if (loaded?.stamp !== stamp) {
      const credential = this.build();
      loaded = { stamp, credential };
      this.loaded = loaded;
      // A failed build is not kept: the next request tries again.
      credential.catch(() => {
        if (this.loaded?.credential === credential) this.loaded = undefined;
      });
    }
    return loaded.credential;
  }

  async getToken(scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken | null> {
    return (await this.current()).getToken(scopes, options);
  }
}

async function fileStamp(path: string): Promise<string> {
  try {
    const { ino, size, mtimeMs } = await stat(path);
    return `${ino}:${size}:${mtimeMs}`;
  } catch {
    return 'missing';
  }
}

/** Signs the operator in with a device code and keeps what the worker needs to refresh on its own. */
export async function login(
  config: CredentialConfig,
  scopes: string[],
  showPrompt: (message: string) => void,
): Promise<{ username: string; tenantId: string }> {
  const { tenantId, clientId } = requireAppRegistration(config);
  const { DeviceCodeCredential, serializeAuthenticationRecord } = await azureIdentity();
  await installEncryptedCache(config);
  const credential = new DeviceCodeCredential({
    tenantId,
    clientId,
    userPromptCallback: (info) => showPrompt(info.message),
    tokenCachePersistenceOptions: { enabled: true, name: 'bulk-reset' },
  });
  const record = await credential.authenticate(scopes);
  if (!record) throw new Error('sign-in did not complete');
  await writeAuthFile(join(config.authDir, RECORD_FILE), serializeAuthenticationRecord(record), {
    replace: true,
  });
  return { username: record.username, tenantId: record.tenantId };
}

function requireAppRegistration(config: CredentialConfig): { tenantId: string; clientId: string } {
  if (!config.tenantId || !config.clientId) {
    throw new Error(
      'AZURE_TENANT_ID and AZURE_CLIENT_ID must name your tenant and a public-client app registration ' +
        'with the delegated permission UserAuthenticationMethod.ReadWrite.All (see README: sign-in)',
    );
  }
  return { tenantId: config.tenantId, clientId: config.clientId };
}

/** The part of MSAL's cache-plugin contract we implement (kept structural to avoid a deep import). */
interface CacheContext {
  cacheHasChanged: boolean;
  tokenCache: { serialize(): string; deserialize(cache: string): void };
}
interface CachePlugin {
  beforeCacheAccess(context: CacheContext): Promise<void>;
  afterCacheAccess(context: CacheContext): Promise<void>;
}
interface CachePluginContext {
  cachePluginControl: { setPersistence(factory: () => Promise<CachePlugin>): void };
}

let installedFor: string | undefined;

async function installEncryptedCache(config: CredentialConfig): Promise<void> {
  if (installedFor === config.authDir) return;
  const key = config.cacheKey ?? (await loadOrCreateKey(join(config.authDir, KEY_FILE)));
  if (key.length !== 32)
    throw new Error('the token cache key must be 32 bytes (base64 in BULK_RESET_TOKEN_CACHE_KEY)');
  const plugin = encryptedFileCache(join(config.authDir, CACHE_FILE), key);
  const { useIdentityPlugin } = await azureIdentity();
  useIdentityPlugin((context) => {
    (context as CachePluginContext).cachePluginControl.setPersistence(() => Promise.resolve(plugin));
  });
  installedFor = config.authDir;
}

/** MSAL's serialized cache, sealed with AES-256-GCM: `iv(12) | tag(16) | ciphertext`. */
export function encryptedFileCache(path: string, key: Buffer): CachePlugin {
  return {
    async beforeCacheAccess(context) {
      let sealed: Buffer;
      try {
        sealed = await readPrivateFile(path, 'the token cache');
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return; // no cache yet
        throw error;
      }
      context.tokenCache.deserialize(openSealed(sealed, key));
    },
    async afterCacheAccess(context) {
      if (!context.cacheHasChanged) return;
      await writeAuthFile(path, seal(context.tokenCache.serialize(), key), { replace: true });
    },
  };
}

/** Seals the token cache (see {@link encryptedFileCache}) with the one envelope, no additional data. */
export function seal(plaintext: string, key: Buffer): Buffer {
  return sealEnvelope(key, plaintext);
}

/** Opens a token cache that {@link seal} wrote. */
export function openSealed(sealed: Buffer, key: Buffer): string {
  return openEnvelope(key, sealed).toString('utf8');
}

/**
 * The cache key from its file, made on first use. Only a missing file makes a new key: a key that
 * cannot be read (or is refused for its mode) must not be replaced, or the cache it opens is lost.
 */
async function loadOrCreateKey(path: string): Promise<Buffer> {
  try {
    return await readKey(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const key = randomBytes(32);
  try {
    await writeAuthFile(path, key.toString('base64'), { replace: false });
  } catch (error) {
    if (error instanceof PrivateFileError && error.problem === 'exists') return readKey(path); // made meanwhile
    throw error;
  }
  return key;
}

async function readKey(path: string): Promise<Buffer> {
  return Buffer.from((await readPrivateFile(path, 'the token cache key')).toString('utf8').trim(), 'base64');
}

/** A file of the sign-in folder (created 0700), written the one safe way (see privateFile). */
async function writeAuthFile(
  path: string,
  data: string | Buffer,
  options: { replace: boolean },
): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await writePrivateFile(path, data, options);
}
