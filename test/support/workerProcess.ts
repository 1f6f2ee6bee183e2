/**
 * `bulk-reset worker` processes for the tests that kill, restart or read a worker as an operator runs it.
 * A module of its own because importing it registers an afterAll: only jest test files may load it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../temporal/devServer';
import { NODE_FLAGS } from '../../worker/nodeFlags';
import type { Stage } from './harness';

/** Every worker process this test file started; those still running when it ends are killed then. */
const started: ChildProcess[] = [];

afterAll(() => {
  for (const worker of started.splice(0))
    if (worker.exitCode === null && worker.signalCode === null) worker.kill('SIGKILL');
});

/**
 * `bulk-reset worker` in its own process against the stage (its SDK identity is `<pid>@<host>`). The last
 * 4,000 characters of its standard error are kept and printed if it exits with an error.
 */
export function spawnWorkerProcess(stage: Pick<Stage, 'env'>): ChildProcess {
  const worker = spawn(
    process.execPath,
    [...NODE_FLAGS, join(PROJECT_ROOT, 'dist', 'client', 'cli.js'), 'worker'],
    {
      env: stage.env,
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let errors = '';
  worker.stderr?.on('data', (chunk: Buffer) => {
    errors = `${errors}${chunk.toString()}`.slice(-4_000);
  });
  worker.on('exit', (code) => {
    if (code !== null && code !== 0) console.error(`worker ${worker.pid} exited with ${code}:\n${errors}`);
  });
  started.push(worker);
  return worker;
}
