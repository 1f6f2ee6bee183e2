/**
 * The Node.js flags a bulk-reset process starts with. Every launcher passes them: the `bulk-reset`
 * wrapper at the repository's root, the CLI's `#!` line (the npm `bin`), the worker image's entry point,
 * and the benchmark's and tests' worker processes. test/launchers.test.ts holds each of them to this list,
 * and fails if this Node no longer accepts one of them.
 *
 * They keep V8's heaps near what they hold. A worker has two heaps (its main thread and the workflow
 * thread) and, left to V8's defaults on a machine with gigabytes of memory, each grows far past its
 * live objects: the young generation to 32 MB per semi-space, the old generation to up to four times
 * what survived the last full collection before the next one. Measured, `events` scenario, window 200,
 * 2 cores, worker peak RSS:
 *
 * | flags | 1,000 users | 3,000 users | 20,000 users |
 * | --- | --- | --- | --- |
 * | none | 669–723 MB | | 825 MB |
 * | `--max-semi-space-size=8` | 414 MB | 499–590 MB | 589 MB |
 * | both below | | 361 MB | 400 MB |
 *
 * with users per second and worker CPU per user the same within run-to-run noise: at 3,000 users 16.8
 * users/s and 42.9 worker CPU s per 1,000 with both (15.9–16.8 and 42.1–43.5 with the first alone); at
 * 20,000 users 15.1 users/s and 44.4 s with both, 15.7 and 41.0 s with none.
 *
 * - `--max-semi-space-size=8`: the young generation's semi-spaces at most 8 MB;
 * - `--heap-growing-percent=50`: the next full collection once the old generation is 1.5 times what
 *   the last one kept (a V8 flag: Node hands it over, and refuses to start if V8 does not know it).
 *
 * They must be given at start: V8 sizes a heap when the heap is created, so setting them from inside
 * the process would miss the main thread's.
 */
export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=8', '--heap-growing-percent=50'];
