/**
 * `bulk-reset demo`: everything on this machine, nothing to configure. A Temporal dev server with its
 * Web UI, the Graph simulator and a worker, then a real bulk reset of a sample CSV with every kind of
 * trouble Graph can give, shown as it runs and summed up at the end.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { startGraphSimulator } from '../simulator/graphSimulator';
import { sampleCsv } from '../simulator/sampleUsers';
import { createWorker } from '../worker';
import { installRuntime } from '../worker/runtime';
import { EncryptionCodec, loadCodecKeys } from '../temporal/codec';
import { startCodecServer } from '../temporal/codecServer';
import { createClient, loadSettings } from '../temporal/config';
import { PROJECT_ROOT, startDevServer } from '../temporal/devServer';
import { checkCsv, formatProgress, formatSummary, startJob, waitForJob } from './jobs';

export interface DemoOptions {
  users: number;
  /** Stop everything once the job is done, instead of leaving the Web UI up until Ctrl-C. */
  exitWhenDone: boolean;
}

const PREFERRED_UI_PORT = 8233;

export async function runDemo({ users, exitWhenDone }: DemoOptions): Promise<number> {
  const dataDir = process.env.BULK_RESET_DATA_DIR ?? join(PROJECT_ROOT, '.data', 'demo');
  await mkdir(dataDir, { recursive: true, mode: 0o700 });

  // The demo's own lines tell the story; the SDK's log (each expected 403 and 404 as a warning) would
  // bury them. Every detail is in the Web UI.
  installRuntime({ logLevel: 'ERROR' });
  console.log('starting the Temporal dev server (with its Web UI)...');
  const uiPort = await freePort(PREFERRED_UI_PORT);
  const settings = loadSettings({
    ...process.env,
    TEMPORAL_NAMESPACE: 'default',
    BULK_RESET_DATA_DIR: dataDir,
    BULK_RESET_TASK_QUEUE: 'bulk-reset-demo',
  });
  // Everything in Temporal is encrypted; the Web UI reads it through this codec server.
  const codecServer = await startCodecServer({
    codec: new EncryptionCodec(await loadCodecKeys(settings.codecKeys)),
    allowedOrigins: [`http://localhost:${uiPort}`, `http://127.0.0.1:${uiPort}`],
  });
  const server = await startDevServer({ uiPort, uiCodecEndpoint: codecServer.url });
  const token = randomBytes(24).toString('base64url');
  const simulator = await startGraphSimulator({ token, retryAfterSeconds: 1 });
  console.log(
    `Temporal at ${server.address}, Web UI at ${server.uiUrl}, Graph simulator at ${simulator.baseUrl}`,
  );

  settings.temporal.address = server.address;
  settings.graphBaseUrl = simulator.baseUrl;
  settings.credential.graphToken = token;
  // The report links each user's row to its workflow in this Web UI.
  settings.webUi = server.uiUrl;
  const worker = await createWorker(settings);
  const workerRun = worker.run();
  let stopping: Promise<void> | undefined;
  // Everything the demo started stops with it, whenever and however it ends (no stray dev server).
  const stopAll = (): Promise<void> =>
    (stopping ??= (async () => {
      worker.shutdown();
      await workerRun;
      await simulator.close();
      await server.stop();
      await codecServer.close();
    })());
  let jobDone = false;
  const onSignal = (): void => {
    console.error('stopping the demo: worker, simulator, dev server...');
    void stopAll().finally(() => process.exit(jobDone ? 0 : 130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  try {
    const sample = sampleCsv(users);
    const csvPath = join(dataDir, `demo-users-${users}.csv`);
    await writeFile(csvPath, sample.text, { mode: 0o600 });
    const csv = await checkCsv(csvPath);
    console.log(
      `${csvPath}: ${csv.totalRows} rows, ${csv.runnableRows} to reset, ${csv.problemCount} skipped (duplicates and mistakes, on purpose)`,
    );

    const client = await createClient(settings);
    const jobId = await startJob(client, settings.taskQueue, csv, { windowSize: 50 });
    console.log(
      `job ${jobId} started: watch it at ${server.uiUrl}/namespaces/default/workflows/${encodeURIComponent(jobId)}`,
    );

    const startedMs = Date.now();
    const final = await waitForJob(client, jobId, (progress) =>
      console.log(formatProgress(progress, Date.now() - startedMs)),
    );
    if (final.state !== 'completed') {
      console.error(
        `the demo job did not complete: ${final.state === 'failed' ? final.message : final.state}`,
      );
      return 2;
    }
    console.log('');
    console.log(formatSummary(final.summary));
    const stats = simulator.stats();
    console.log(
      `the simulator saw ${stats.posts} resetPassword requests (${stats.resetsAccepted} accepted), ${stats.polls} polls, ` +
        `${stats.earlyRequests} polls earlier than its Retry-After, at most ${stats.peakActiveUsers} users at once`,
    );
    console.log(`Temporal Web UI: ${server.uiUrl}`);
    jobDone = true;
    if (!exitWhenDone) {
      console.log('everything stays up so you can explore the Web UI; Ctrl-C stops it');
      await new Promise<never>(() => undefined); // the signal handler stops everything and exits
    }
    // The sample fails and leaves users unconfirmed on purpose: the demo worked if the job completed.
    return 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await stopAll();
  }
}

/** The preferred port when it is free, else any free port. */
async function freePort(preferred: number): Promise<number> {
  const tryPort = (port: number) =>
    new Promise<number | undefined>((resolve) => {
      const probe = createServer();
      probe.once('error', () => resolve(undefined));
      probe.listen(port, '127.0.0.1', () => {
        const { port: bound } = probe.address() as { port: number };
        probe.close(() => resolve(bound));
      });
    });
  return (await tryPort(preferred)) ?? (await tryPort(0)) ?? preferred;
}
