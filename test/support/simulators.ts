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
