/**
 * `bulk-reset plan` as an operator runs it: its own process, real HTTP to the Graph simulator, real
 * files. A plan reads the directory and writes nothing to it.
 */
import { access, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { usersSha256 } from '../jobs/jobFiles';
import { checkCsv } from '../client/jobs';
import { type PlanFile, planHash } from '../jobs/planFile';
import { type Stage, openStage, readJson, runCli as cli } from './support/harness';

const CSV = [
  'userPrincipalName,displayName',
  'ok.alice@contoso.test,Alice', // row 2: plain
  'missing.bob@contoso.test,Bob', // row 3: not in the directory
  'disabled.carol@contoso.test,Carol', // row 4
  'synced.dave@contoso.test,Dave', // row 5
  'admin.erin@contoso.test,Erin', // row 6: Global Administrator
  'ok.breakglass@contoso.test,Break glass', // row 7: protected by UPN
  'admin.frank@contoso.test,Frank', // row 8: protected by object id only
  'OK.ALICE@contoso.test,Alice again', // row 9: duplicate of row 2
  'not-a-user,Mistake', // row 10: invalid
].join('\n');

/** The users a plan of CSV resets when nobody but the break-glass accounts is protected. */
const RESET = [
  'ok.alice@contoso.test',
  'disabled.carol@contoso.test',
  'synced.dave@contoso.test',
  'admin.erin@contoso.test',
];

describe('bulk-reset plan', () => {
  let stage: Stage;
  let csvPath: string;
  let frankId: string;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    stage = await openStage();
    csvPath = await stage.writeCsv('users.csv', `${CSV}\n`);
    // The protected list names Frank by object id, which only Graph knows: ask it once, then forget the ask.
    const response = await fetch(`${stage.simulator.baseUrl}/users/admin.frank%40contoso.test`, {
      headers: { authorization: `Bearer ${stage.env.GRAPH_TOKEN}` },
    });
    frankId = ((await response.json()) as { id: string }).id;
    stage.simulator.resetCounters();
    const protectedList = join(stage.dataDir, 'protected.txt');
    await writeFile(protectedList, `# break-glass\nOK.BreakGlass@contoso.test\n${frankId}  # Frank\n`);
    env = { ...stage.env, BULK_RESET_PROTECTED_USERS: protectedList };
  });

  afterAll(async () => {
    await stage?.close();
  });

  test('decides every row from what the directory says, and writes nothing to Graph', async () => {
    const out = join(stage.dataDir, 'plan.json');
    const result = await cli(env, 'plan', csvPath, '--out', out, '--concurrency', '3');
    expect(result.stderr).not.toContain('bulk-reset:');
    expect(result.code).toBe(0);

    const plan = await readJson<PlanFile>(out);
    const csv = await checkCsv(csvPath);
    expect(plan.csv).toEqual({ path: csv.path, sha256: csv.sha256 });
    expect(Date.parse(plan.createdAt)).not.toBeNaN();
    const found = { exists: true, enabled: true, synced: false, adminRoles: [], protected: false };
    const notLookedUp = { exists: null, enabled: null, synced: null, adminRoles: [], protected: false };
    expect(plan.users).toEqual([
      { row: 2, user: 'ok.alice@contoso.test', ...ids('ok.alice@contoso.test'), ...found, decision: 'reset' },
      {
        row: 3,
        user: 'missing.bob@contoso.test',
        exists: false,
        enabled: null,
        synced: null,
        adminRoles: [],
        protected: false,
        decision: 'skip',
        reason: 'missing',
      },
      {
        row: 4,
        user: 'disabled.carol@contoso.test',
        ...ids('disabled.carol@contoso.test'),
        ...found,
        enabled: false,
        decision: 'reset',
      },
      {
        row: 5,
        user: 'synced.dave@contoso.test',
        ...ids('synced.dave@contoso.test'),
        ...found,
        synced: true,
        decision: 'reset',
      },
      {
        row: 6,
        user: 'admin.erin@contoso.test',
        ...ids('admin.erin@contoso.test'),
        ...found,
        adminRoles: ['Global Administrator'],
        decision: 'reset',
      },
      {
        row: 7,
        user: 'ok.breakglass@contoso.test',
        ...ids('ok.breakglass@contoso.test'),
        ...found,
        protected: true,
        decision: 'skip',
        reason: 'protected',
      },
      {
        row: 8,
        user: 'admin.frank@contoso.test',
        id: frankId,
        userPrincipalName: 'admin.frank@contoso.test',
        ...found,
        adminRoles: ['Global Administrator'],
        protected: true,
        decision: 'skip',
        reason: 'protected',
      },
      {
        row: 9,
        user: 'OK.ALICE@contoso.test',
        ...notLookedUp,
        decision: 'skip',
        reason: 'duplicate',
        detail: 'duplicate of row 2',
      },
      {
        row: 10,
        user: 'not-a-user',
        ...notLookedUp,
        decision: 'skip',
        reason: 'invalid',
        detail: expect.stringContaining("has no '@'") as unknown,
      },
    ]);
    expect(plan.summary).toEqual({
      rows: 9,
      reset: 4,
      skipped: 5,
      missing: 1,
      protected: 2,
      invalid: 1,
      duplicate: 1,
      disabled: 1,
      synced: 1,
      admin: 2,
    });
    // The fingerprint a job started from this plan recomputes (jobs/jobFiles).
    expect(plan.usersSha256).toBe(planHash(RESET));
    expect(plan.usersSha256).toBe(usersSha256(RESET));

    // Read only: not one POST. Each runnable row was looked up once (its user, then its roles); the
    // duplicate and the invalid row never reached Graph.
    const simulator = stage.simulator;
    expect(simulator.stats()).toMatchObject({ posts: 0, resetsAccepted: 0, requests: 13 });
    expect(simulator.user('missing.bob@contoso.test')?.gets).toBe(1);
    for (const user of [...RESET, 'ok.breakglass@contoso.test', 'admin.frank@contoso.test']) {
      expect({ user, gets: simulator.user(user)?.gets }).toEqual({ user, gets: 2 });
    }
    expect(simulator.users()).toHaveLength(7);
    expect(simulator.user('not-a-user')).toBeUndefined();

    expect((await stat(out)).mode & 0o777).toBe(0o600);
    const lines = result.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe(`${csv.path}: 9 rows, 4 to reset, 5 skipped`);
    expect(lines[lines.length - 1]).toBe(out);
    const rowLine = (user: string) => lines.find((line) => line.includes(` ${user} `)) ?? '';
    expect(rowLine('missing.bob@contoso.test')).toMatch(/skip: missing\s+not found in the directory/);
    expect(rowLine('disabled.carol@contoso.test')).toMatch(/reset\s+disabled/);
    expect(rowLine('synced.dave@contoso.test')).toMatch(/reset\s+synced from on-premises/);
    expect(rowLine('admin.erin@contoso.test')).toMatch(/reset\s+admin: Global Administrator/);
    expect(rowLine('ok.breakglass@contoso.test')).toMatch(/skip: protected\s+on the protected list/);
    expect(rowLine('admin.frank@contoso.test')).toMatch(/skip: protected/);
    expect(rowLine('ok.alice@contoso.test')).toBe('');
    expect(result.stderr).toContain(`bulk-reset start ${csv.path} --plan ${out}`);
  });

  test('gives another fingerprint when the users to reset change, and the same for the same users', async () => {
    const first = join(stage.dataDir, 'first.json');
    const again = join(stage.dataDir, 'again.json');
    const narrower = join(stage.dataDir, 'narrower.json');
    const protectedList = join(stage.dataDir, 'protected-more.txt');
    await writeFile(
      protectedList,
      'ok.breakglass@contoso.test\nadmin.frank@contoso.test\nadmin.erin@contoso.test\n',
    );

    expect((await cli(env, 'plan', csvPath, '--out', first)).code).toBe(0);
    expect((await cli(env, 'plan', csvPath, '--out', again)).code).toBe(0);
    const more = { ...env, BULK_RESET_PROTECTED_USERS: protectedList };
    expect((await cli(more, 'plan', csvPath, '--out', narrower)).code).toBe(0);

    const [a, b, c] = await Promise.all([first, again, narrower].map((path) => readJson<PlanFile>(path)));
    expect(b.usersSha256).toBe(a.usersSha256);
    expect(c.csv.sha256).toBe(a.csv.sha256);
    expect(c.users.find((user) => user.user === 'admin.erin@contoso.test')).toMatchObject({
      decision: 'skip',
      reason: 'protected',
    });
    expect(c.usersSha256).not.toBe(a.usersSha256);
    expect(c.usersSha256).toBe(planHash(RESET.filter((user) => user !== 'admin.erin@contoso.test')));
    expect(stage.simulator.stats().posts).toBe(0);
  });

  test('writes the plan beside the CSV by default', async () => {
    const result = await cli(env, 'plan', csvPath);
    expect(result.code).toBe(0);
    const path = join(stage.dataDir, 'users.plan.json');
    expect(result.stdout.trimEnd().split('\n').pop()).toBe(path);
    expect((await readJson<PlanFile>(path)).summary.reset).toBe(4);
  });

  test('refuses a protected list with a bad line before asking Graph anything', async () => {
    const badList = join(stage.dataDir, 'bad-protected.txt');
    await writeFile(badList, 'ok.breakglass@contoso.test\nbreakglass2\n');
    stage.simulator.resetCounters();
    const out = join(stage.dataDir, 'never.json');

    const result = await cli({ ...env, BULK_RESET_PROTECTED_USERS: badList }, 'plan', csvPath, '--out', out);

    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`${badList} has 1 line(s) that name no user`);
    expect(result.stderr).toContain('line 2: "breakglass2"');
    expect(stage.simulator.stats().requests).toBe(0);
    await expect(access(out)).rejects.toThrow();
  });

  /** Graph's object id and userPrincipalName of a user the simulator has seen. */
  function ids(user: string): { id: string; userPrincipalName: string } {
    const seen = stage.simulator.user(user);
    if (!seen) throw new Error(`the simulator never saw ${user}`);
    return { id: seen.id, userPrincipalName: user };
  }
});

test("waits out Graph's throttling (Retry-After) and still looks every user up", async () => {
  const stage = await openStage({ readBudget: { reads: 2, perSeconds: 1 } });
  try {
    const users = ['ok.a', 'admin.b', 'synced.c', 'missing.d'].map((name) => `${name}@contoso.test`);
    const csvPath = await stage.writeCsv('throttled.csv', `upn\n${users.join('\n')}\n`);
    const out = join(stage.dataDir, 'plan.json');

    const result = await cli(stage.env, 'plan', csvPath, '--out', out, '--concurrency', '1');

    expect(result.stderr).not.toContain('bulk-reset:');
    expect(result.code).toBe(0);
    const plan = await readJson<PlanFile>(out);
    expect(plan.users.map((user) => [user.user, user.decision, user.reason])).toEqual([
      ['ok.a@contoso.test', 'reset', undefined],
      ['admin.b@contoso.test', 'reset', undefined],
      ['synced.c@contoso.test', 'reset', undefined],
      ['missing.d@contoso.test', 'skip', 'missing'],
    ]);
    expect(plan.users[1].adminRoles).toEqual(['Global Administrator']);
    const stats = stage.simulator.stats();
    expect(stats.throttled).toBeGreaterThan(0);
    // No request came back before the Retry-After it was given had passed.
    expect(stats.earlyRequests).toBe(0);
    expect(stats.posts).toBe(0);
  } finally {
    await stage.close();
  }
});
