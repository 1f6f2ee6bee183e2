/** One resource for every test of a file or describe block, opened before the first and closed after the last. */

/**
 * Opens `open()` in a beforeAll and closes it in an afterAll of the enclosing file or describe block. What
 * it returns stands for the resource once it is open, so a test reads `stage.simulator` or `sim.baseUrl`
 * as if it had opened it itself, and the file says in one line what its tests run on. Call it at the top
 * level of the file or of a describe block; a hook that uses the resource must be declared after it.
 */
export function sharedForTests<T extends object>(
  what: string,
  open: () => Promise<T>,
  close: (resource: T) => Promise<void>,
): T {
  let current: T | undefined;
  beforeAll(async () => {
    current = await open();
  });
  afterAll(async () => {
    if (current) await close(current);
  });
  const opened = (use: string): T => {
    if (!current) {
      throw new Error(
        `the shared ${what} is not open: use ${use} inside a test, or in a hook declared after it`,
      );
    }
    return current;
  };
  // Every read goes to the open resource, so `{ ...stage, env }` copies it too.
  return new Proxy({} as T, {
    get: (_target, key) => Reflect.get(opened(`${what}.${String(key)}`), key) as unknown,
    has: (_target, key) => Reflect.has(opened(`the ${what}`), key),
    ownKeys: () => Reflect.ownKeys(opened(`the ${what}`)),
    getOwnPropertyDescriptor: (_target, key) => Reflect.getOwnPropertyDescriptor(opened(`the ${what}`), key),
  });
}
