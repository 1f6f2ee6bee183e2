import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AccessToken, TokenCredential } from '@azure/identity';
import { ReloadingCredential } from '../graph/credentials';

/** Hands out tokens named after the sign-in file's content when it was built. */
function builderOf(path: string, builds: string[]) {
  return async (): Promise<TokenCredential> => {
    const account = (await readFile(path, 'utf8')).trim();
    builds.push(account);
    return {
      getToken: (): Promise<AccessToken> =>
        Promise.resolve({ token: `token-of-${account}`, expiresOnTimestamp: Date.now() + 60_000 }),
    };
  };
}

describe('ReloadingCredential', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bulk-reset-credential-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('follows a new sign-in written to disk without being recreated, and builds only when the file changed', async () => {
    const path = join(dir, 'authentication-record.json');
    await writeFile(path, 'first-operator');
    const builds: string[] = [];
    const credential = new ReloadingCredential(path, builderOf(path, builds));

    expect((await credential.getToken('scope'))?.token).toBe('token-of-first-operator');
    expect((await credential.getToken('scope'))?.token).toBe('token-of-first-operator');
    expect(builds).toEqual(['first-operator']);

    // What `bulk-reset login` does: the record is replaced (here by another account).
    await writeFile(path, 'second-operator-account');
    expect((await credential.getToken('scope'))?.token).toBe('token-of-second-operator-account');
    expect(builds).toEqual(['first-operator', 'second-operator-account']);
  });

  it('tries again after a failed build instead of keeping the failure', async () => {
    const path = join(dir, 'authentication-record.json');
    let failures = 1;
    const credential = new ReloadingCredential(path, () =>
      failures-- > 0
        ? Promise.reject(new Error('no operator sign-in found; run `bulk-reset login` first'))
        : Promise.resolve<TokenCredential>({
            getToken: () => Promise.resolve({ token: 'after-login', expiresOnTimestamp: 0 }),
          }),
    );
    await expect(credential.getToken('scope')).rejects.toThrow(/bulk-reset login/);
    expect((await credential.getToken('scope'))?.token).toBe('after-login');
  });
});
