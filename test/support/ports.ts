/** Ports for tests that need an address nothing answers on, or one a server they start will take. */
import { createServer } from 'node:net';

/** A localhost port nothing listens on: taken from the OS, then released. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((listening) => server.listen(0, '127.0.0.1', listening));
  const address = server.address();
  await new Promise((closed) => server.close(closed));
  if (address === null || typeof address === 'string') throw new Error('no TCP port');
  return address.port;
}
