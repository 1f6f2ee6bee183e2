/**
 * A job folder belongs to the run that claimed it: that run may prepare it again (a retry, or after a
 * crash half-way), every other run is refused, and folders prepared before claims existed stay usable
 * by their own job.
 */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  RowsChangedError,
  checkRowsUnchanged,
  JobFolderTakenError,
  checkJobOwner,
  claimJobFolder,
  jobPaths,
  prepareJobFiles,
  readRowsPage,
} from '../jobs/jobFiles';
import { readLedger } from '../jobs/report';

/** The deployment secret that keys user workflow ids (any 32 bytes here). */
const SECRET = Buffer.alloc(32, 7);

let dataDir: string;
let csvPath: string;
const first = { workflowId: 'incident-7', runId: 'run-first' };

beforeEach(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'job-files-'));
  csvPath = join(dataDir, 'users.csv');
  await writeFile(csvPath, 'userPrincipalName\nalice@contoso.com\nnot-a-user\nbob@contoso.com\n');
});

afterEach(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

async function snapshot(dir: string): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  for (const name of (await readdir(dir)).sort()) files[name] = await readFile(join(dir, name), 'utf8');
  return files;
}

test('a prepare retried in the same run, after a crash half-way, gets its claim back and finishes', async () => {
  const paths = jobPaths(dataDir, 'incident-7');
  await claimJobFolder(paths, 'incident-7', first);
  // What a worker that died mid-prepare leaves: half a row file, no prepared.json.
  await writeFile(`${paths.rows}.tmp`, '{"row":2,"user":"alice@contoso.com"');

  const again = await claimJobFolder(paths, 'incident-7', first);
  const prepared = await prepareJobFiles(again, csvPath, { userKeySecret: SECRET });

  expect(prepared).toMatchObject({ totalRows: 3, runnableRows: 2, skippedRows: 1 });
  const page = await readRowsPage(paths.rows, 0, 10);
  expect(page.rows.map((row) => row.user)).toEqual(['alice@contoso.com', 'bob@contoso.com']);
  // Once done, a retry whose completion was lost gets the same preparation back.
  expect(
    await prepareJobFiles(await claimJobFolder(paths, 'incident-7', first), csvPath, {
      userKeySecret: SECRET,
    }),
  ).toEqual(prepared);
  const owner = JSON.parse(await readFile(paths.owner, 'utf8')) as Record<string, string>;
  expect(owner).toMatchObject({ jobId: 'incident-7', ...first });
});

test('another run under the same id is refused the folder, told whose it is, and changes nothing', async () => {
  const paths = jobPaths(dataDir, 'incident-7');
  await prepareJobFiles(await claimJobFolder(paths, 'incident-7', first), csvPath, { userKeySecret: SECRET });
  const before = await snapshot(paths.dir);

  for (const other of [
    { workflowId: 'incident-7', runId: 'run-second' },
    { workflowId: 'someone-else', runId: 'run-first' },
  ]) {
    const refused = claimJobFolder(paths, 'incident-7', other);
    await expect(refused).rejects.toBeInstanceOf(JobFolderTakenError);
    await expect(refused).rejects.toThrow(
      new RegExp(
        `${paths.dir}.*belongs to job incident-7 \\(workflow incident-7, run run-first.*nothing was reset`,
      ),
    );
  }
  expect(await snapshot(paths.dir)).toEqual(before);
});

test('of two runs claiming one folder at once, exactly one wins', async () => {
  for (let attempt = 0; attempt < 20; attempt += 1) {
    const paths = jobPaths(dataDir, `race-${attempt}`);
    const claims = await Promise.allSettled([
      claimJobFolder(paths, `race-${attempt}`, { workflowId: `race-${attempt}`, runId: 'a' }),
      claimJobFolder(paths, `race-${attempt}`, { workflowId: `race-${attempt}`, runId: 'b' }),
    ]);
    expect(claims.filter((claim) => claim.status === 'fulfilled')).toHaveLength(1);
    const [refused] = claims.filter((claim) => claim.status === 'rejected');
    expect(refused.reason).toBeInstanceOf(JobFolderTakenError);
    expect(await readdir(paths.dir)).toEqual(['owner.json']);
  }
});

test('a folder prepared before claims existed is refused to a new job, and still serves its own', async () => {
  const paths = jobPaths(dataDir, 'incident-old');
  await mkdir(paths.dir, { recursive: true });
  await writeFile(paths.rows, '{"row":2,"user":"carol@contoso.com","key":"k"}\n');
  await writeFile(paths.prepared, '{"totalRows":1,"runnableRows":1,"skippedRows":0}');

  await expect(claimJobFolder(paths, 'incident-old', first)).rejects.toThrow(
    /records no owner; nothing was reset: job ids are used once/,
  );
  // The job that prepared it, running on across a deploy: its reads and appends carry on.
  await expect(checkJobOwner(paths, 'incident-old')).resolves.toBeUndefined();
  expect((await readRowsPage(paths.rows, 0, 10)).rows.map((row) => row.user)).toEqual(['carol@contoso.com']);
  expect(await readdir(paths.dir)).not.toContain('owner.json');
});

test("a claimed folder's files are refused to any other workflow, and open to the owner's continued runs", async () => {
  const paths = jobPaths(dataDir, 'incident-7');
  await prepareJobFiles(await claimJobFolder(paths, 'incident-7', first), csvPath, { userKeySecret: SECRET });

  await expect(checkJobOwner(paths, 'incident-7')).resolves.toBeUndefined();
  await expect(checkJobOwner(paths, 'someone-else')).rejects.toThrow(
    /belongs to job incident-7 .*not to workflow someone-else; nothing was read or written there/,
  );
  expect((await readLedger(paths.ledger)).map((outcome) => outcome.row)).toEqual([3]);
});

test('the rows check notices a change after an earlier check passed, even one that keeps the size', async () => {
  const rows = join(dataDir, 'pinned-rows.jsonl');
  await writeFile(rows, '{"row":2,"user":"alice@contoso.com"}\n');
  const pinned = createHash('sha256')
    .update(await readFile(rows))
    .digest('hex');
  await checkRowsUnchanged(rows, pinned);
  await checkRowsUnchanged(rows, pinned);
  await writeFile(rows, '{"row":2,"user":"mallo@contoso.com"}\n');
  await expect(checkRowsUnchanged(rows, pinned)).rejects.toThrow(RowsChangedError);
});
