/** CSV files on disk for the tests that read one the way the worker does. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A temporary folder for this file's tests, made before the first and removed after the last. The
 * function it returns writes `content` there as a new file (`users-1.csv`, `users-2.csv`, ...) and
 * gives its path.
 */
export function csvFilesForTests(prefix: string): (content: string | Buffer) => Promise<string> {
  let directory: string | undefined;
  let count = 0;
  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), prefix));
  });
  afterAll(async () => {
    if (directory) await rm(directory, { recursive: true, force: true });
  });
  return async (content) => {
    if (!directory) throw new Error('the CSV folder is made in beforeAll: write files inside a test');
    count += 1;
    const path = join(directory, `users-${count}.csv`);
    await writeFile(path, content);
    return path;
  };
}
