/**
 * The thread the worker bundles its workflow code in (worker/bundle.ts, `bundleInThread`). Webpack is
 * loaded and run here only: its modules and the heap it grows go away with the thread, instead of
 * staying in the worker's main heap for as long as the worker runs. Hands back the code, the bundler's
 * log records, or the reason it failed.
 */
import { parentPort } from 'node:worker_threads';
import { DefaultLogger, type LogMetadata, bundleWorkflowCode } from '@temporalio/worker';
import { type BundleThreadMessage, workflowBundleOptions } from './bundle';

const port = parentPort;
if (!port) throw new Error('worker/bundleThread.js runs as a worker thread, started by bundleInThread');
const post = (message: BundleThreadMessage): void => port.postMessage(message);

const logger = new DefaultLogger('TRACE', ({ level, message, meta }) => {
  // Only what survives the copy to the main thread: the bundler's records are plain data.
  post({ kind: 'log', level, message, meta: meta && (JSON.parse(JSON.stringify(meta)) as LogMetadata) });
});
bundleWorkflowCode(workflowBundleOptions(logger)).then(
  ({ code }) => post({ kind: 'code', code }),
  (error: unknown) =>
    post({ kind: 'failed', reason: error instanceof Error ? error.message : String(error) }),
);
