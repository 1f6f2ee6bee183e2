/** A seeded pseudo-random number generator for generated test inputs. */

/**
 * mulberry32: small, fast and good enough to drive generators; the same seed gives the same numbers, so a
 * failure can be reproduced from the seed. Each call of the returned function gives a number in [0, 1).
 */
export function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
