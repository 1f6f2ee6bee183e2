/** The error a call failed with, for tests that look inside it. */

/**
 * Awaits `call` and gives back the error it failed with, which must be a `kind`; fails the test, saying
 * `what` was expected to fail, if it succeeded.
 */
export async function rejectionOf<E extends Error>(
  call: Promise<unknown>,
  kind: abstract new (...args: never[]) => E,
  what: string,
): Promise<E> {
  try {
    await call;
  } catch (error) {
    expect(error).toBeInstanceOf(kind);
    return error as E;
  }
  throw new Error(`expected ${what} to fail`);
}
