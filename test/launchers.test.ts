/**
 * Every way bulk-reset is started passes the Node flags of worker/nodeFlags.ts (a bounded young
 * generation, which is most of the worker's resident memory otherwise). The worker image's entry point
 * is held to them in workerImage.e2e.test.ts.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PROJECT_ROOT } from '../temporal/devServer';
import { NODE_FLAGS } from '../worker/nodeFlags';

const run = promisify(execFile);

test('the flags are Node options this Node accepts, and not empty', async () => {
  expect(NODE_FLAGS.length).toBeGreaterThan(0);
  // Node refuses an option it does not know (exit code 9) rather than ignore it.
  const { stdout } = await run(process.execPath, [...NODE_FLAGS, '-p', 'JSON.stringify(process.execArgv)']);
  expect(JSON.parse(stdout)).toEqual(expect.arrayContaining([...NODE_FLAGS]));
});

test('the checkout wrapper `./bulk-reset` runs node with them', async () => {
  const wrapper = await readFile(join(PROJECT_ROOT, 'bulk-reset'), 'utf8');
  const exec = wrapper.split('\n').filter((line) => /^exec node\b/.test(line));
  expect(exec).toEqual([`exec node ${NODE_FLAGS.join(' ')} "$root/dist/client/cli.js" "$@"`]);
});

test('the npm bin (the built CLI) starts with them from its #! line, and that line runs here', async () => {
  const cli = join(PROJECT_ROOT, 'dist', 'client', 'cli.js');
  const [first] = (await readFile(cli, 'utf8')).split('\n', 1);
  expect(first).toBe(`#!/usr/bin/env -S node ${NODE_FLAGS.join(' ')}`);
  // What the kernel would run for `bulk-reset --version`: env splits the line and finds node on PATH.
  const { stdout } = await run('/usr/bin/env', ['-S', `node ${NODE_FLAGS.join(' ')}`, cli, '--version'], {
    env: { ...process.env, PATH: `${join(process.execPath, '..')}:${process.env.PATH ?? ''}` },
  });
  expect(stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
});
