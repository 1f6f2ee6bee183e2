import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import {
  ProtectedUsersError,
  isProtected,
  loadProtectedUsers,
  parseProtectedUsers,
} from '../jobs/protectedUsers';
import { loadSettings } from '../temporal/config';
import { rejectionOf } from './support/rejection';

const BREAK_GLASS_ID = '3f2504e0-4f89-41d3-9a0c-0305e82c3301';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bulk-reset-protected-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function listFile(name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text, { mode: 0o600 });
  return path;
}

/** The error a load failed with; fails the test when the load succeeds. */
async function loadFailure(path: string): Promise<ProtectedUsersError> {
  return rejectionOf(loadProtectedUsers(path), ProtectedUsersError, 'loading the protected list');
}

describe('loadProtectedUsers', () => {
  it('reads one UPN or object id per line, skipping blank lines and comments', async () => {
    const path = await listFile(
      'list.txt',
      [
        '# break-glass accounts: never reset in bulk',
        '',
        'BreakGlass1@Contoso.com',
        `  ${BREAK_GLASS_ID}   # the second one, by object id`,
        '   ',
        '# ceo@contoso.com is commented out',
      ].join('\n'),
    );

    const list = await loadProtectedUsers(path);

    expect(list.path).toBe(path);
    expect([...list.entries].sort()).toEqual([BREAK_GLASS_ID, 'breakglass1@contoso.com']);
    expect(isProtected(list, 'ceo@contoso.com')).toBe(false);
  });

  it('reads a file saved on Windows: UTF-8 BOM and CRLF line ends', async () => {
    const path = await listFile('windows.txt', '\uFEFFalice@contoso.com\r\nbob@contoso.com\r\n');
    const list = await loadProtectedUsers(path);
    expect([...list.entries]).toEqual(['alice@contoso.com', 'bob@contoso.com']);
  });

  it("keeps a guest's #EXT# UPN whole: only a '#' at the start or after whitespace starts a comment", async () => {
    const guest = 'alice_fabrikam.com#EXT#@contoso.onmicrosoft.com';
    const list = await loadProtectedUsers(await listFile('guests.txt', `${guest} # external admin\n`));
    expect(isProtected(list, guest.toUpperCase())).toBe(true);
    expect(list.entries.size).toBe(1);
  });

  it('accepts an empty file as a list that protects nobody', async () => {
    const list = await loadProtectedUsers(await listFile('empty.txt', ''));
    expect(list.entries.size).toBe(0);
    expect(isProtected(list, 'anyone@contoso.com')).toBe(false);
  });

  it('refuses a list with a line that names no user, naming the file and every bad line', async () => {
    const path = await listFile(
      'typos.txt',
      ['ok@contoso.com', 'bob', 'carol@contoso', '# fine', 'dave@contoso.com eve@contoso.com'].join('\n'),
    );

    const error = await loadFailure(path);

    expect(error.message).toContain(path);
    expect(error.message).toContain('3 line(s)');
    expect(error.message).toContain('line 2: "bob" is neither a userPrincipalName');
    expect(error.message).toContain('line 3: "carol@contoso" is not a valid userPrincipalName');
    expect(error.message).toContain('line 5:');
    expect(error.message).toContain('whitespace');
    expect(error.message).not.toContain('line 1:');
  });

  it('lists at most ten bad lines and says how many more there are', () => {
    const text = Array.from({ length: 13 }, (_, index) => `not-a-user-${index}`).join('\n');
    expect(() => parseProtectedUsers('big.txt', text)).toThrow(/line 10: .*\n {2}\.\.\. and 3 more$/s);
  });

  it('refuses a list that cannot be read, rather than protecting nobody', async () => {
    const path = join(dir, 'no-such-list.txt');
    const error = await loadFailure(path);
    expect(error.message).toContain(`${path} cannot be read (ENOENT)`);
    expect(error.message).toContain('BULK_RESET_PROTECTED_USERS');
  });
});

describe('isProtected', () => {
  const list = parseProtectedUsers('inline', `breakglass@contoso.com\n${BREAK_GLASS_ID.toUpperCase()}\n`);

  it('matches a CSV value case-insensitively, by UPN or by object id', () => {
    expect(isProtected(list, 'BREAKGLASS@contoso.com')).toBe(true);
    expect(isProtected(list, ` ${BREAK_GLASS_ID} `)).toBe(true);
    expect(isProtected(list, 'alice@contoso.com')).toBe(false);
  });

  it("matches a user listed by id whose CSV row names it by UPN, once Graph's names are known", () => {
    expect(isProtected(list, 'second@contoso.com')).toBe(false);
    expect(isProtected(list, { id: BREAK_GLASS_ID, userPrincipalName: 'second@contoso.com' })).toBe(true);
    expect(isProtected(list, { userPrincipalName: 'BreakGlass@Contoso.com' })).toBe(true);
    expect(isProtected(list, { id: '00000000-0000-0000-0000-000000000001', userPrincipalName: '' })).toBe(
      false,
    );
  });
});

describe('BULK_RESET_PROTECTED_USERS', () => {
  it('names the list in the settings as an absolute path, and is absent when unset or empty', () => {
    expect(loadSettings({ BULK_RESET_PROTECTED_USERS: 'lists/protected.txt' }).protectedUsersPath).toBe(
      join(process.cwd(), 'lists', 'protected.txt'),
    );
    expect(loadSettings({}).protectedUsersPath).toBeUndefined();
    expect(loadSettings({ BULK_RESET_PROTECTED_USERS: '' }).protectedUsersPath).toBeUndefined();
  });
});
