/**
 * The process the worker bundles its workflow code in (worker/bundle.ts, `bundleApart`). Webpack is
 * loaded and run here only, and all the memory it took goes back to the system when this process ends,
 * instead of staying in the worker's heap (or in the allocator's arenas, as a thread's would) for as long
 * as the worker runs. Hands back the code, the bundler's log records, or the reason it failed, and ends.
 *
 *   node dist/worker/bundleProcess.js '<BundleApartOptions as JSON>'   (started by bundleApart, with IPC)
 */
import { DefaultLogger, type LogMetadata, bundleWorkflowCode } from '@temporalio/worker';
import { type BundleApartOptions, type BundleMessage, workflowBundleOptions } from './bundle';

const send = (message: BundleMessage): Promise<void> =>
  new Promise((resolve, reject) => {
    if (!process.send) {
      reject(new Error('worker/bundleProcess.js is started by bundleApart, with an IPC channel'));
      return;
    }
    process.send(message, undefined, {}, (error) => (error ? reject(error) : resolve()));
  });

/** Set once the answer is sent: the channel is then closed from this side, which is no reason to fail. */
let answered = false;
// The worker that asked is gone before the answer: nobody to hand the code to.
process.once('disconnect', () => {
  if (!answered) process.exit(1);
});

const logger = new DefaultLogger('TRACE', ({ level, message, meta }) => {
  // Only what survives the copy to the worker: the bundler's records are plain data.
  void send({ kind: 'log', level, message, meta: meta && (JSON.parse(JSON.stringify(meta)) as LogMetadata) });
});
const { workflowsPath, workflowInterceptorModules } = JSON.parse(
  process.argv[2] ?? '{}',
) as BundleApartOptions;
bundleWorkflowCode({
  ...(workflowsPath ? { workflowsPath, logger } : workflowBundleOptions(logger)),
  workflowInterceptorModules,
})
  .then(
    ({ code }) => send({ kind: 'code', code }),
    (error: unknown) =>
      send({ kind: 'failed', reason: error instanceof Error ? error.message : String(error) }),
  )
  .finally(() => {
    answered = true;
    process.disconnect();
  });
