/** Graph simulators for the tests that talk HTTP to one directly, without a stage. */
import {
  type GraphSimulator,
  type SimulatorOptions,
  startGraphSimulator,
} from '../../simulator/graphSimulator';
import { sharedForTests } from './shared';

/** One simulator with these options for every test of the file (or describe block). */
export function useSimulator(options: SimulatorOptions): GraphSimulator {
  return sharedForTests(
    'simulator',
    () => startGraphSimulator(options),
    (simulator) => simulator.close(),
  );
}

/**
 * A `start(options)` that gives the running test a simulator of its own, on these defaults; every
 * simulator a test started is closed after it.
 */
export function simulatorPerTest(
  defaults: SimulatorOptions,
): (options?: Partial<SimulatorOptions>) => Promise<GraphSimulator> {
  let running: GraphSimulator[] = [];
  afterEach(async () => {
    await Promise.all(running.map((simulator) => simulator.close()));
    running = [];
  });
  return async (options = {}) => {
    const simulator = await startGraphSimulator({ ...defaults, ...options });
    running.push(simulator);
    return simulator;
  };
}

/**
 * A write budget of `writesPerSecond`, counted over four seconds, for the tests of the workers' pacing.
 * Graph counts its write budget over 150 s, so a bucket a few seconds deep is nearer to Graph than a
 * one-second one; and a worker that stalls for a moment on a busy machine, then sends what it held back,
 * is not taken for one that paces too fast. The rate is the same; workers pacing at twice it still run
 * into 429s within seconds.
 */
export function graphShapedWriteBudget(writesPerSecond: number): { writes: number; perSeconds: number } {
  const seconds = 4;
  return { writes: writesPerSecond * seconds, perSeconds: seconds };
}
