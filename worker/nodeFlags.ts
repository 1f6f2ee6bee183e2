/**
 * The Node.js flags a bulk-reset process starts with. Every launcher passes them: the `bulk-reset`
 * wrapper at the repository's root, the CLI's `#!` line (the npm `bin`), the worker image's entry point,
 * and the benchmark's and tests' worker processes. test/launchers.test.ts holds each of them to this list.
 *
 * `--max-semi-space-size=8`: caps each V8 heap's young generation at 8 MB per semi-space. Left to itself,
 * on a machine with gigabytes of memory, V8 lets it grow to 32 MB per semi-space, in each of the worker's
 * two heaps (its main thread and the workflow thread), and the worker's resident memory with it. Measured
 * at 1,000 users, window 200, on 2 cores: peak RSS 723 MB without it, 414 MB with it, with users per
 * second and worker CPU per user the same within run-to-run noise. It must be given at start: V8 sizes a
 * heap when the heap is created, so setting it from inside the process would miss the main thread's.
 */
export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=8'];
