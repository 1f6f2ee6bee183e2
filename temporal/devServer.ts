/**
 * The local Temporal dev server (`temporal server start-dev`) for the demo and the tests.
 *
 * The CLI binary is found the way scripts/ensure-temporal.sh installs it: TEMPORAL_CLI_PATH, then
 * `temporal` on PATH, then the project's .tools/bin; if none exists the SDK downloads one (needs internet).
 */
import { accessSync, constants } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { JOB_ID_SEARCH_ATTRIBUTE, JOB_PHASE_SEARCH_ATTRIBUTE } from '../workflows/types';

export const PROJECT_ROOT = resolve(__dirname, '..', '..');

export function findTemporalCli(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const candidates = [
    env.TEMPORAL_CLI_PATH,
    ...(env.PATH ?? '').split(delimiter).map((dir) => (dir ? join(dir, 'temporal') : undefined)),
    join(PROJECT_ROOT, '.tools', 'bin', 'temporal'),
  ];
  return candidates.find((path): path is string => path !== undefined && isExecutable(path));
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export interface DevServerOptions {
  port?: number;
  /** Serve the Temporal Web UI on this port (the demo); headless when absent. */
  uiPort?: number;
  /** Keep state in this SQLite file across restarts; in memory when absent. */
  dbFilename?: string;
  /**
   * SQLite pragmas for the file (`--sqlite-pragma`); WAL_PRAGMAS when absent. `{}` keeps SQLite's own
   * defaults (a rollback journal synced at every commit), which the benchmark measures side by side.
   */
  sqlitePragmas?: Readonly<Record<string, string>>;
  /** The codec server the Web UI asks to decrypt payloads. */
  uiCodecEndpoint?: string;
  /** The server's own log level (default warn); a chaos run asks for never, as it makes errors on purpose. */
  logLevel?: 'debug' | 'info' | 'warn' | 'error' | 'never';
}

export interface DevServer {
  address: string;
  uiUrl?: string;
  stop(): Promise<void>;
}

/**
 * Write-ahead log, synced at checkpoints rather than at every commit. A killed server process loses
 * nothing (committed pages are in the log); a power cut may lose the last commits but never corrupts the
 * file. SQLite's defaults sync a rollback journal several times per commit, which left the dev server
 * waiting on the disk for most of a job (see the README's Performance section).
 */
export const WAL_PRAGMAS: Readonly<Record<string, string>> = {
  journal_mode: 'WAL',
  synchronous: 'NORMAL',
  busy_timeout: '5000',
};

/** The dev server's `--sqlite-pragma` arguments for a SQLite file (none in memory). */
export function sqlitePragmaArgs(options: Pick<DevServerOptions, 'dbFilename' | 'sqlitePragmas'>): string[] {
  if (options.dbFilename === undefined) return [];
  return Object.entries(options.sqlitePragmas ?? WAL_PRAGMAS).flatMap(([name, value]) => [
    '--sqlite-pragma',
    `${name}=${value}`,
  ]);
}

export async function startDevServer(options: DevServerOptions = {}): Promise<DevServer> {
  const path = findTemporalCli();
  const environment = await TestWorkflowEnvironment.createLocal({
    server: {
      executable: path ? { type: 'existing-path', path } : { type: 'cached-download' },
      port: options.port,
      ui: options.uiPort !== undefined,
      uiPort: options.uiPort,
      dbFilename: options.dbFilename,
      searchAttributes: [JOB_ID_SEARCH_ATTRIBUTE, JOB_PHASE_SEARCH_ATTRIBUTE],
      extraArgs: [
        ...(options.uiCodecEndpoint ? ['--ui-codec-endpoint', options.uiCodecEndpoint] : []),
        ...sqlitePragmaArgs(options),
      ],
      log: { format: 'pretty', level: options.logLevel ?? 'warn' },
    },
  });
  return {
    address: environment.address,
    uiUrl: options.uiPort !== undefined ? `http://localhost:${options.uiPort}` : undefined,
    stop: () => environment.teardown(),
  };
}
