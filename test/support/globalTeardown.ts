import type { TestGlobals } from './globalSetup';

export default async function globalTeardown(): Promise<void> {
  await (globalThis as TestGlobals).bulkResetDevServer?.stop();
}
