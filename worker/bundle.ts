/**
 * The workflow code, bundled ahead of time. A worker bundles `workflows/` with webpack when it starts
 * (seconds of CPU, and webpack in the image); the worker image instead runs this at build time:
 *
 *   node dist/worker/bundle.js /app/workflow-bundle.js
 *
 * and sets BULK_RESET_WORKFLOW_BUNDLE to the file, which the worker then loads as is.
 */
import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { fork } from 'node:child_process';
import { once } from 'node:events';
import {
  type BundleOptions,
  type LogLevel,
  type LogMetadata,
  type Logger,
  bundleWorkflowCode,
} from '@temporalio/worker';

/**
 * Where a prebuilt bundle is (BULK_RESET_WORKFLOW_BUNDLE); without it the worker bundles at start.
 */
export const WORKFLOW_BUNDLE_ENV = 'BULK_RESET_WORKFLOW_BUNDLE';

/**
 * How the worker's workflow code is bundled, ahead of time or not. The failure converter must be named
 * here: a prebuilt bundle does not pick it up from the worker's data converter, and without it failure
 * messages raised inside workflows would travel in plain text.
 */
export function workflowBundleOptions(logger?: BundleOptions['logger']): BundleOptions {
  return {
    workflowsPath: require.resolve('../workflows'),
    failureConverterPath: require.resolve('../temporal/failureConverter'),
    logger,
  };
}

/** Bundles the workflow code into `outPath` (code only: the SDK no longer loads a bundle's source map). */
export async function writeWorkflowBundle(
  outPath: string,
  logger?: BundleOptions['logger'],
): Promise<string> {
  const { code } = await bundleWorkflowCode(workflowBundleOptions(logger));
  const path = resolve(outPath);
  await writeFile(path, code);
  return path;
}

/** What bundleApart bundles beyond bulk-reset's own workflow code. */
export interface BundleApartOptions {
  workflowsPath?: string;
  workflowInterceptorModules?: string[];
}

/** What the bundling process (worker/bundleProcess.ts) hands back. */
export type BundleMessage =
  | { kind: 'log'; level: LogLevel; message: string; meta?: LogMetadata }
  | { kind: 'code'; code: string }
  | { kind: 'failed'; reason: string };

/**
 * The workflow code, bundled now in a short-lived process of its own, so that webpack's modules and the
 * memory it took never stay in the worker. Measured at 1,000 users with `--max-semi-space-size=8`, the
 * worker's peak RSS was 353 MB when it loaded a prebuilt bundle (what bundling apart leaves it with),
 * 414 MB when it bundled in a thread of its own, 527 MB when the SDK bundled on its main thread. The bundler's log records reach `logger` as they would
 * have. `workflowInterceptorModules` are those the worker's plugins add (tracing's): a worker given a
 * bundle ignores them, so they must be bundled in. `workflowsPath` names other workflows than
 * bulk-reset's (the benchmark's floor, bundled the same way so that the two compare).
 */
export async function bundleApart(logger: Logger, what: BundleApartOptions = {}): Promise<string> {
  const child = fork(require.resolve('./bundleProcess'), [JSON.stringify(what)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let code: string | undefined;
  let failure: string | undefined;
  child.on('message', (message: BundleMessage) => {
    if (message.kind === 'log') logger.log(message.level, message.message, message.meta);
    else if (message.kind === 'code') code = message.code;
    else failure = message.reason;
  });
  // Both: the last messages may still be on their way when the process has exited.
  const [[exitCode, signal]] = (await Promise.all([once(child, 'exit'), once(child, 'disconnect')])) as [
    [number | null, NodeJS.Signals | null],
    unknown,
  ];
  // Code and a clean exit, or it failed: a process that handed over code and then died is not trusted.
  if (code !== undefined && exitCode === 0) return code;
  const ended = `the bundling process ended (${signal ?? `exit code ${exitCode}`})`;
  throw new Error(
    `bundling the workflow code failed: ${failure ?? (code === undefined ? `${ended} without handing over the code` : `${ended} after handing over the code`)}`,
  );
}

if (require.main === module) {
  const out = process.argv[2];
  if (!out) {
    console.error('usage: node dist/worker/bundle.js <output file>, e.g. workflow-bundle.js');
    process.exitCode = 2;
  } else {
    writeWorkflowBundle(out).then(
      (path) =>
        console.log(`workflow bundle written to ${path}; run workers with ${WORKFLOW_BUNDLE_ENV}=${path}`),
      (error: unknown) => {
        console.error(
          `bundling the workflow code failed: ${error instanceof Error ? error.message : String(error)}`,
        );
        process.exitCode = 1;
      },
    );
  }
}
