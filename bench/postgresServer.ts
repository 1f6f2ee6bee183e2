/**
 * `--store postgres`: the benchmark's Temporal server is the real, multi-service server on PostgreSQL
 * that scripts/temporal-postgres.sh runs (as test/postgres.e2e.test.ts does), in a state folder of its
 * own that is destroyed afterwards. Measures what the dev server's single SQLite connection costs.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PROJECT_ROOT } from '../temporal/devServer';
import { treeCpuSeconds } from './processStats';

const SCRIPT = join(PROJECT_ROOT, 'scripts', 'temporal-postgres.sh');

export interface PostgresServer {
  address: string;
  /** CPU seconds so far of the Temporal server process and the whole PostgreSQL cluster. */
  cpuSeconds(): number;
  destroy(): Promise<void>;
}

export async function startPostgresServer(): Promise<PostgresServer> {
  // Under /var/tmp, which the postgres user can walk into, unlike the benchmark's private temp folder.
  const state = join('/var/tmp', `bulk-reset-bench-pg-${randomBytes(4).toString('hex')}`);
  const run = async (command: string) => {
    const { stdout } = await promisify(execFile)('bash', [SCRIPT, command], {
      env: { ...process.env, BULK_RESET_TEMPORAL_PG_DIR: state },
      maxBuffer: 16 * 2 ** 20,
    });
    return stdout.trim().split('\n').pop() ?? '';
  };
  const address = await run('start');
  const pidIn = (file: string) => Number(readFileSync(join(state, file), 'utf8').split('\n')[0]);
  const server = pidIn('server/server.pid');
  const postmaster = pidIn('pg/postmaster.pid');
  return {
    address,
    cpuSeconds: () => treeCpuSeconds(server) + treeCpuSeconds(postmaster),
    destroy: async () => {
      await run('destroy');
    },
  };
}
