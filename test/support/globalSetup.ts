/**
 * Starts one real Temporal dev server for the whole test run; tests find it through
 * BULK_RESET_TEST_TEMPORAL_ADDRESS (set here, inherited by Jest's test processes).
 */
import { startDevServer, type DevServer } from '../../temporal/devServer';

export interface TestGlobals {
  bulkResetDevServer?: DevServer;
}

export default async function globalSetup(): Promise<void> {
  const server = await startDevServer();
  process.env.BULK_RESET_TEST_TEMPORAL_ADDRESS = server.address;
  (globalThis as TestGlobals).bulkResetDevServer = server;
}
