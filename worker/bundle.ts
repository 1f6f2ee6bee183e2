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
import { Worker as Thread } from 'node:worker_threads';
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

/** What the bundling thread (worker/bundleThread.ts) hands back. */
export type BundleThreadMessage =
  | { kind: 'log'; level: LogLevel; message: string; meta?: LogMetadata }
  | { kind: 'code'; code: string }
  | { kind: 'failed'; reason: string };

/**
 * The workflow code, bundled now in a thread of its own that ends once it has handed the code over, so
 * that webpack's modules and heap do not stay in the worker for its whole life: measured at 1,000 users,
 * the worker's peak resident memory is about 170 MB lower than when the SDK bundles on its main thread.
 * The bundler's log records reach `logger` as they would have.
 */
export async function bundleInThread(logger: Logger): Promise<string> {
  const thread = new Thread(require.resolve('./bundleThread'));
  try {
    return await new Promise<string>((resolvePromise, reject) => {
      thread.on('message', (message: BundleThreadMessage) => {
        if (message.kind === 'log') logger.log(message.level, message.message, message.meta);
        else if (message.kind === 'code') resolvePromise(message.code);
        else reject(new Error(`bundling the workflow code failed: ${message.reason}`));
      });
      thread.once('error', reject);
      thread.once('exit', (code) => {
        reject(
          new Error(`the workflow bundling thread ended (exit code ${code}) without handing over the code`),
        );
      });
    });
  } finally {
    await thread.terminate();
  }
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
