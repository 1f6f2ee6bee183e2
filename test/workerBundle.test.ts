/**
 * The worker bundles its workflow code in a process of its own (worker/bundle.ts, bundleApart), so that
 * webpack never stays in the worker's memory. What comes back must be the same code the worker image
 * prebuilds, the bundler's records must still reach the worker's log, and a failure must say why.
 */
import { bundleWorkflowCode, type LogLevel } from '@temporalio/worker';
import { bundleApart, workflowBundleOptions } from '../worker/bundle';

function recordingLogger() {
  const records: { level: LogLevel; message: string }[] = [];
  const record = (level: LogLevel) => (message: string) => records.push({ level, message });
  return {
    records,
    logger: {
      log: (level: LogLevel, message: string) => records.push({ level, message }),
      trace: record('TRACE'),
      debug: record('DEBUG'),
      info: record('INFO'),
      warn: record('WARN'),
      error: record('ERROR'),
    },
  };
}

test('hands back the same code as bundling in the worker would, and the bundler is heard', async () => {
  const { logger, records } = recordingLogger();
  const [apart, here] = await Promise.all([
    bundleApart(logger),
    bundleWorkflowCode(workflowBundleOptions(recordingLogger().logger)),
  ]);
  expect(apart).toBe(here.code);
  expect(records.some(({ message }) => /bundle/i.test(message))).toBe(true);
}, 120_000);

test('a bundling that fails says so, with the bundler’s reason', async () => {
  const { logger } = recordingLogger();
  await expect(bundleApart(logger, { workflowsPath: '/nonexistent/workflows.js' })).rejects.toThrow(
    /^bundling the workflow code failed: .*nonexistent/,
  );
}, 120_000);
