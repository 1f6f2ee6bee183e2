/**
 * Files are written like secrets files: never through a symbolic link, never over an existing file
 * unless asked, through a temporary file nobody can have planted; and a key or token file that others
 * can read is refused with the `chmod` to run. Each test looks at the files on disk.
 */
import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import {
  chmod,
  lstat,
  mkdir,
  mkdtemp,
  readFile,
  readdir,
  rm,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { encryptedFileCache } from '../graph/credentials';
import { jobPaths } from '../jobs/jobFiles';
import { loadCodecKeys, newCodecKeyLine, rotateCodecKey } from '../temporal/codec';
import { loadTemporalSettings } from '../temporal/config';
import { PROJECT_ROOT } from '../temporal/devServer';

const runFile = promisify(execFile);

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** `bulk-reset <args>` in its own process; these commands need no Temporal. */
async function bulkReset(env: Record<string, string>, ...args: string[]): Promise<CliResult> {
  try {
    const { stdout, stderr } = await runFile(
      process.execPath,
      [join(PROJECT_ROOT, 'dist', 'client', 'cli.js'), ...args],
      {
        env: { PATH: process.env.PATH, HOME: directory, ...env },
      },
    );
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: failed.code ?? -1, stdout: failed.stdout ?? '', stderr: failed.stderr ?? '' };
  }
}

let directory: string;
beforeEach(async () => {
  directory = await mkdtemp(join(tmpdir(), 'bulk-reset-files-'));
});
afterEach(async () => {
  await rm(directory, { recursive: true, force: true });
});

const REPORT = 'row,user,status\r\n2,alice@contoso.com,succeeded\r\n';

describe('report --out', () => {
  const jobId = 'reset-files-1';
  let env: Record<string, string>;
  beforeEach(async () => {
    const dataDir = join(directory, 'data');
    const paths = jobPaths(dataDir, jobId);
    await mkdir(paths.dir, { recursive: true, mode: 0o700 });
    await writeFile(paths.reportCsv, REPORT, { mode: 0o600 });
    env = { BULK_RESET_DATA_DIR: dataDir };
  });

  test('refuses a symbolic link at --out and leaves what it points to untouched', async () => {
    const victim = join(directory, 'victim.txt');
    await writeFile(victim, 'not yours\n', { mode: 0o644 });
    const out = join(directory, 'report.csv');
    await symlink(victim, out);

    const result = await bulkReset(env, 'report', jobId, '--out', out);
    expect(await readFile(victim, 'utf8')).toBe('not yours\n');
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('symbolic link');
    // --force replaces a file, never what a link points to.
    expect((await bulkReset(env, 'report', jobId, '--out', out, '--force')).code).toBe(2);
    expect(await readFile(victim, 'utf8')).toBe('not yours\n');
    expect((await stat(victim)).mode & 0o777).toBe(0o644);
    expect((await lstat(out)).isSymbolicLink()).toBe(true);
  });

  test('refuses an existing file without --force, and replaces it (mode 0600) with it', async () => {
    const out = join(directory, 'report.csv');
    await writeFile(out, 'an earlier copy\n', { mode: 0o644 });

    const refused = await bulkReset(env, 'report', jobId, '--out', out);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('--force');
    expect(await readFile(out, 'utf8')).toBe('an earlier copy\n');

    const forced = await bulkReset(env, 'report', jobId, '--out', out, '--force');
    expect(forced.code).toBe(0);
    expect(await readFile(out, 'utf8')).toBe(REPORT);
    expect((await stat(out)).mode & 0o777).toBe(0o600);
    // Nothing is left beside it: the temporary file became the report.
    expect(await readdir(directory)).toEqual(expect.not.arrayContaining([expect.stringMatching(/\.tmp$/)]));
  });
});

describe('the codec key file', () => {
  /** A codec key file `file` that is a symbolic link to `real`, which holds `original`. */
  async function codecKeysBehindLink(): Promise<{ real: string; original: string; file: string }> {
    const real = join(directory, 'real-codec-keys');
    const original = `${newCodecKeyLine()}\n`;
    await writeFile(real, original, { mode: 0o600 });
    const file = join(directory, 'codec-keys');
    await symlink(real, file);
    return { real, original, file };
  }

  test('is refused when others can read it, with the chmod to run', async () => {
    const file = join(directory, 'codec-keys');
    await writeFile(file, `${newCodecKeyLine()}\n`, { mode: 0o600 });
    await chmod(file, 0o644);
    await expect(loadCodecKeys({ file })).rejects.toThrow(`chmod 600 ${file}`);
  });

  test('is not rotated through a symbolic link: the file it points to keeps its keys', async () => {
    const { real, original, file } = await codecKeysBehindLink();

    await expect(rotateCodecKey(file)).rejects.toThrow('symbolic link');
    expect(await readFile(real, 'utf8')).toBe(original);
    expect((await lstat(file)).isSymbolicLink()).toBe(true);
  });

  test('codec-key rotate through a symbolic link exits 2 and changes nothing', async () => {
    const { real, original, file } = await codecKeysBehindLink();

    const result = await bulkReset({ BULK_RESET_CODEC_KEY_FILE: file }, 'codec-key', 'rotate');
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('symbolic link');
    expect(await readFile(real, 'utf8')).toBe(original);
  });
});

describe('the token cache', () => {
  const key = Buffer.alloc(32, 7);
  const changed = (serialized: string) => ({
    cacheHasChanged: true,
    tokenCache: { serialize: () => serialized, deserialize: () => undefined },
  });

  test('is written with mode 0600 through a fresh temporary file, whatever waits at a predictable name', async () => {
    const path = join(directory, 'token-cache.bin');
    // What a local attacker could plant where the old code wrote its temporary file.
    const victim = join(directory, 'victim.txt');
    await writeFile(victim, 'not yours\n', { mode: 0o644 });
    await symlink(victim, `${path}.${process.pid}.tmp`);

    await encryptedFileCache(path, key).afterCacheAccess(changed('{"AccessToken":{}}'));
    expect(await readFile(victim, 'utf8')).toBe('not yours\n');
    expect((await lstat(path)).isFile()).toBe(true);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
  });

  test('is not written through a symbolic link at its own path', async () => {
    const victim = join(directory, 'victim.txt');
    await writeFile(victim, 'not yours\n', { mode: 0o600 });
    const path = join(directory, 'token-cache.bin');
    await symlink(victim, path);

    await expect(encryptedFileCache(path, key).afterCacheAccess(changed('{}'))).rejects.toThrow(
      'symbolic link',
    );
    expect(await readFile(victim, 'utf8')).toBe('not yours\n');
    expect((await lstat(path)).isSymbolicLink()).toBe(true);
  });

  test('is refused when others can read it, with the chmod to run', async () => {
    const path = join(directory, 'token-cache.bin');
    await encryptedFileCache(path, key).afterCacheAccess(changed('{}'));
    await chmod(path, 0o644);
    await expect(encryptedFileCache(path, key).beforeCacheAccess(changed('{}'))).rejects.toThrow(
      `chmod 600 ${path}`,
    );
  });

  test('login refuses a cache key that others can read, and keeps it instead of making a new one', async () => {
    const dataDir = join(directory, 'data');
    const keyFile = join(dataDir, 'auth', 'token-cache.key');
    await mkdir(join(dataDir, 'auth'), { recursive: true, mode: 0o700 });
    const cacheKey = Buffer.alloc(32, 9).toString('base64');
    await writeFile(keyFile, cacheKey, { mode: 0o600 });
    await chmod(keyFile, 0o644);

    const result = await bulkReset(
      { BULK_RESET_DATA_DIR: dataDir, AZURE_TENANT_ID: 'contoso.test', AZURE_CLIENT_ID: 'client-id' },
      'login',
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`chmod 600 ${keyFile}`);
    expect(await readFile(keyFile, 'utf8')).toBe(cacheKey);
  });
});

describe('other secret files', () => {
  test('TEMPORAL_API_KEY_FILE is refused when others can read it, with the chmod to run', async () => {
    const file = join(directory, 'api-key');
    await writeFile(file, 'tmprl-api-key\n', { mode: 0o600 });
    await chmod(file, 0o640);
    expect(() => loadTemporalSettings({ TEMPORAL_API_KEY_FILE: file })).toThrow(`chmod 600 ${file}`);
  });

  test('secrets decrypt refuses a private key that others can read', async () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const keyFile = join(directory, 'private.pem');
    await writeFile(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    await chmod(keyFile, 0o644);
    const secrets = join(directory, 'secrets.jsonl');
    await writeFile(secrets, '{"bulkResetSecrets":1,"jobId":"reset-x","createdAt":"","recipient":null}\n', {
      mode: 0o600,
    });

    const result = await bulkReset({}, 'secrets', 'decrypt', '--key', keyFile, secrets);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`chmod 600 ${keyFile}`);
  });
});
