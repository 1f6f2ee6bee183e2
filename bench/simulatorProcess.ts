/**
 * The Graph simulator in a process of its own, forked by the benchmark: neither side shares an event
 * loop with it (the baseline runs in the benchmark's process), and its CPU is measured apart.
 *
 * This file is both ends: `startSimulatorProcess` forks it, and when run as the child it serves the
 * simulator and answers over the IPC channel.
 */
import { type ChildProcess, fork } from 'node:child_process';
import {
  type GraphSimulator,
  type SimulatorOptions,
  type SimulatorStats,
  startGraphSimulator,
} from '../simulator/graphSimulator';

type ToSimulator = { type: 'start'; options: SimulatorOptions } | { type: 'stats' } | { type: 'close' };

type FromSimulator =
  | { type: 'started'; baseUrl: string }
  | { type: 'stats'; stats: SimulatorStats }
  | { type: 'closed' }
  | { type: 'error'; message: string };

export interface SimulatorProcess {
  readonly baseUrl: string;
  readonly pid: number;
  stats(): Promise<SimulatorStats>;
  /** Closes the simulator and waits for its process to end; safe to call twice. */
  stop(): Promise<void>;
}

/** Sends one message and waits for the answer of the expected type. */
function request<T extends FromSimulator['type']>(
  child: ChildProcess,
  message: ToSimulator,
  expected: T,
): Promise<Extract<FromSimulator, { type: T }>> {
  return new Promise((resolve, reject) => {
    const onMessage = (raw: unknown): void => {
      const reply = raw as FromSimulator;
      done();
      if (reply.type === expected) resolve(reply as Extract<FromSimulator, { type: T }>);
      else
        reject(
          new Error(
            `graph simulator process: ${reply.type === 'error' ? reply.message : `unexpected ${reply.type}`}`,
          ),
        );
    };
    const onExit = (code: number | null, signal: string | null): void => {
      done();
      reject(new Error(`the graph simulator process ended (${signal ?? `exit code ${code}`})`));
    };
    const done = (): void => {
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    child.on('message', onMessage);
    child.on('exit', onExit);
    child.send(message);
  });
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

export async function startSimulatorProcess(options: SimulatorOptions): Promise<SimulatorProcess> {
  const child = fork(__filename, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  let started: { baseUrl: string };
  try {
    started = await request(child, { type: 'start', options }, 'started');
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  let stopping: Promise<void> | undefined;
  return {
    baseUrl: started.baseUrl,
    pid: child.pid as number,
    stats: async () => (await request(child, { type: 'stats' }, 'stats')).stats,
    stop: () => {
      stopping ??= (async () => {
        if (child.connected) {
          const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
          await request(child, { type: 'close' }, 'closed').catch(() => child.kill('SIGKILL'));
          clearTimeout(timer);
        }
        await exited(child);
      })();
      return stopping;
    },
  };
}

/** The child's side: one simulator, driven by the parent until it closes it or goes away. */
function serve(): void {
  let simulator: GraphSimulator | undefined;
  const reply = (message: FromSimulator): void => {
    process.send?.(message);
  };
  const handle = async (message: ToSimulator): Promise<void> => {
    switch (message.type) {
      case 'start':
        simulator = await startGraphSimulator(message.options);
        reply({ type: 'started', baseUrl: simulator.baseUrl });
        return;
      case 'stats':
        if (!simulator) throw new Error('not started');
        reply({ type: 'stats', stats: simulator.stats() });
        return;
      case 'close':
        await simulator?.close();
        reply({ type: 'closed' });
        process.disconnect();
        return;
    }
  };
  process.on('message', (message) => {
    handle(message as ToSimulator).catch((error: unknown) =>
      reply({ type: 'error', message: error instanceof Error ? error.message : String(error) }),
    );
  });
  // The benchmark went away (or closed us): nothing is left to serve.
  process.on('disconnect', () => process.exit(0));
}

if (require.main === module) serve();
