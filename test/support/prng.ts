/**
 * A seeded pseudo-random number generator for generated test inputs (mulberry32, the benchmark's): the
 * same seed gives the same numbers, so a failure can be reproduced from the seed. Each call of the
 * returned function gives a number in [0, 1).
 */
export { mulberry32 as prng } from '../../bench/random';
