/**
 * The orchestrator side: a real `bulk-reset worker` process, a job started and watched the way the CLI
 * does it (`checkCsv`, `startJob`, `jobState`), then what it cost: CPU and memory of the worker and
 * the dev server, and the history the job left in Temporal.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Client } from '@temporalio/client';
import { tsToMs } from '@temporalio/common/lib/time';
import { temporal } from '@temporalio/proto';
import { jobPaths, preparedUserKeys } from '../jobs/jobFiles';
import { checkCsv, failureMessage, jobState, startJob } from '../client/jobs';
import type { SampleRow } from '../simulator/sampleUsers';
import { userWorkflowId } from '../workflows/bulkReset';
import type { JobProgress, JobSummary } from '../workflows/types';
import { lowestSustainedRate, ownCpuSeconds, simulatorCounts } from './metrics';
import { forEachPooled } from './pool';
import { checkReport } from './reportCheck';
import { cpuSeconds, peakRssMb } from './processStats';
import type { SimulatorProcess } from './simulatorProcess';
import type { HistoryFacts, Latency, OrchestratorResult, ProgressSample, RunPlan } from './types';
import { type WorkerProcess, startWorkerProcess } from './workerProcess';

/** Users whose workflow history is read after the job: spread evenly over the CSV. */
const HISTORY_SAMPLE = 500;
/** Describes in flight at once while reading the sample. */
const DESCRIBE_CONCURRENCY = 20;

export interface Stage {
  /** A client with the same data converter (payload keys) as the workers. */
  client: Client;
  /** The environment of a worker: Temporal's address, the data folder and the payload keys. */
  env: NodeJS.ProcessEnv;
  /** CPU seconds the Temporal server (and its database) has used so far, when it can be measured. */
  serverCpuSeconds?: () => number;
  /** The workers' data folder (BULK_RESET_DATA_DIR), where the job writes its report. */
  dataDir: string;
  logDir: string;
  /** Where the benchmark downloads the report, as `bulk-reset report --out` would. */
  downloadDir: string;
  /** Registers a clean-up step that must run even if the benchmark is interrupted. */
  defer(step: () => Promise<void>): void;
}

export interface OrchestratorInput {
  plan: RunPlan;
  csvPath: string;
  rows: readonly SampleRow[];
  simulator: SimulatorProcess;
  token: string;
  onProgress: (progress: JobProgress, elapsedSeconds: number) => void;
}

export async function runOrchestrator(stage: Stage, input: OrchestratorInput): Promise<OrchestratorResult> {
  const { plan, simulator } = input;
  const { client } = stage;
  const taskQueue = `bench-${plan.label}-${randomBytes(3).toString('hex')}`;
  const env: NodeJS.ProcessEnv = {
    ...stage.env,
    BULK_RESET_TASK_QUEUE: taskQueue,
    GRAPH_BASE_URL: simulator.baseUrl,
    GRAPH_TOKEN: input.token,
    BULK_RESET_WRITES_PER_SECOND: String(plan.writesPerSecond),
  };
  // One process or several (--workers), all polling the job's task queue, as an operator scales out.
  const workers: WorkerProcess[] = [];
  for (let index = 0; index < (plan.workers ?? 1); index += 1) {
    const worker = await startWorkerProcess(
      client,
      env,
      taskQueue,
      join(stage.logDir, `${taskQueue}-${index + 1}.log`),
    );
    stage.defer(() => worker.stop());
    workers.push(worker);
  }
  const [worker] = workers;
  const workersCpu = () => workers.reduce((sum, each) => sum + cpuSeconds(each.pid), 0);
  try {
    const workerStartup = workersCpu();
    const csv = await checkCsv(input.csvPath);

    const serverBefore = stage.serverCpuSeconds?.();
    const simulatorBefore = cpuSeconds(simulator.pid);
    const ownBefore = ownCpuSeconds();
    const startedMs = performance.now();
    const elapsed = () => (performance.now() - startedMs) / 1000;

    const jobId = await startJob(client, taskQueue, csv, {
      windowSize: plan.windowSize,
      policy: plan.policy,
    });
    const samples: ProgressSample[] = [];
    let failedProgressSamples = 0;
    const progressQueryMs: number[] = [];
    let runsSeen = 1;
    const stopSampling = new AbortController();
    const sampling = (async () => {
      while (!stopSampling.signal.aborted) {
        try {
          const askedMs = performance.now();
          const state = await jobState(client, jobId);
          progressQueryMs.push(performance.now() - askedMs);
          if (state.state === 'running') {
            samples.push({
              seconds: elapsed(),
              done: state.progress.done,
              inFlight: state.progress.inFlight,
            });
            runsSeen = Math.max(runsSeen, state.progress.runs);
            input.onProgress(state.progress, elapsed());
          }
        } catch {
          failedProgressSamples += 1;
        }
        await sleep(1_000, undefined, { signal: stopSampling.signal }).catch(() => undefined);
      }
    })();
    let summary: JobSummary;
    try {
      summary = (await client.workflow.getHandle(jobId).result()) as JobSummary;
    } catch (error) {
      throw new Error(`job ${jobId} failed: ${failureMessage(error)}\n${await worker.logTail()}`, {
        cause: error,
      });
    } finally {
      stopSampling.abort();
      await sampling;
    }
    const wallSeconds = elapsed();
    samples.push({ seconds: wallSeconds, done: summary.total, inFlight: 0 });
    const devServer =
      stage.serverCpuSeconds === undefined ? undefined : stage.serverCpuSeconds() - (serverBefore ?? 0);
    const simulatorCpu = cpuSeconds(simulator.pid) - simulatorBefore;
    const benchProcess = ownCpuSeconds() - ownBefore;
    const stats = await simulator.stats();

    const userKeys = await preparedUserKeys(jobPaths(stage.dataDir, jobId));
    const workflowIdOf = (row: SampleRow) => userWorkflowIdOf(jobId, row, userKeys);
    const userHistory = await userHistoryLengths(client, input.rows, workflowIdOf);
    const parentRuns = await parentRunIds(client, jobId, runsSeen);
    const parentHistory: number[] = [];
    for (const runId of parentRuns) {
      parentHistory.push((await client.workflow.getHandle(jobId, runId).describe()).historyLength);
    }
    const parentEvents = parentHistory.reduce((sum, length) => sum + length, 0);
    const report = await checkReport(stage.dataDir, jobId, input.rows.length, stage.downloadDir);

    // Read just before the worker stops: everything the job made it do, and the most memory it held.
    const workerCpu = workersCpu();
    // Per process: what one worker needs, however many there are.
    const peakWorkerRss = Math.max(...workers.map((each) => peakRssMb(each.pid)));
    return {
      jobId,
      taskQueue,
      wallSeconds,
      usersPerSecond: input.rows.length / wallSeconds,
      outcomes: summary.counts,
      simulator: simulatorCounts(stats),
      cpuSeconds: {
        simulator: simulatorCpu,
        benchProcess,
        worker: workerCpu - workerStartup,
        workerStartup,
        devServer,
      },
      lowestTenSecondUsersPerSecond: lowestSustainedRate(samples, input.rows.length, plan.windowSize),
      samples,
      peakWorkerRssMb: peakWorkerRss,
      userHistory: {
        sampled: userHistory.length,
        average: userHistory.reduce((sum, length) => sum + length, 0) / Math.max(userHistory.length, 1),
        max: Math.max(0, ...userHistory),
        firstUser: await historyFacts(client, workflowIdOf(input.rows[0])),
      },
      parent: {
        runs: parentHistory.length,
        historyLengths: parentHistory,
        maxHistoryLength: Math.max(0, ...parentHistory),
        eventsPerUser: parentEvents / input.rows.length,
        firstRun: await historyFacts(client, jobId, parentRuns[0]),
      },
      report,
      failedProgressSamples,
      progressQueryMs: latency(progressQueryMs),
    };
  } finally {
    await Promise.all(workers.map((each) => each.stop()));
  }
}

/** History lengths of up to HISTORY_SAMPLE users' workflows, picked evenly over the CSV. */
async function userHistoryLengths(
  client: Client,
  rows: readonly SampleRow[],
  workflowIdOf: (row: SampleRow) => string,
): Promise<number[]> {
  const count = Math.min(HISTORY_SAMPLE, rows.length);
  const picked = Array.from({ length: count }, (_, index) => rows[Math.floor((index * rows.length) / count)]);
  const lengths: number[] = [];
  await forEachPooled(picked, DESCRIBE_CONCURRENCY, async (row) => {
    lengths.push((await client.workflow.getHandle(workflowIdOf(row)).describe()).historyLength);
  });
  return lengths;
}

/** The id the job gave this CSV row's workflow, from the keys it prepared (keyed: see jobFiles.userKey). */
function userWorkflowIdOf(jobId: string, { row, user }: SampleRow, keys: Map<string, string>): string {
  const key = keys.get(user.toLowerCase());
  if (!key) throw new Error(`job ${jobId} prepared no row for ${user}`);
  return userWorkflowId(jobId, { row, user, idKind: 'userPrincipalName', key });
}

function latency(valuesMs: number[]): Latency {
  const sorted = [...valuesMs].sort((a, b) => a - b);
  const at = (quantile: number) =>
    sorted[Math.min(sorted.length - 1, Math.floor(quantile * sorted.length))] ?? 0;
  const round = (value: number) => Math.round(value);
  return { p50: round(at(0.5)), p95: round(at(0.95)), max: round(sorted[sorted.length - 1] ?? 0) };
}

/** A run's events by type, and how long its workflow tasks waited for a worker and then took. */
async function historyFacts(client: Client, workflowId: string, runId?: string): Promise<HistoryFacts> {
  const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
  const eventTypes: Record<string, number> = {};
  const scheduledAt = new Map<number, number>();
  const startedAt = new Map<number, number>();
  const scheduleToStart: number[] = [];
  const startToClose: number[] = [];
  const { EventType } = temporal.api.enums.v1;
  for (const event of history.events ?? []) {
    const type = event.eventType ?? EventType.EVENT_TYPE_UNSPECIFIED;
    const name = (EventType[type] ?? String(type)).replace(/^EVENT_TYPE_/, '');
    eventTypes[name] = (eventTypes[name] ?? 0) + 1;
    const id = Number(event.eventId);
    const at = tsToMs(event.eventTime);
    if (type === EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED) scheduledAt.set(id, at);
    if (type === EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED) {
      const scheduledId = Number(event.workflowTaskStartedEventAttributes?.scheduledEventId);
      scheduleToStart.push(at - (scheduledAt.get(scheduledId) ?? at));
      startedAt.set(id, at);
    }
    if (type === EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED) {
      const startedId = Number(event.workflowTaskCompletedEventAttributes?.startedEventId);
      startToClose.push(at - (startedAt.get(startedId) ?? at));
    }
  }
  return {
    events: history.events?.length ?? 0,
    eventTypes,
    workflowTasks: {
      count: startToClose.length,
      scheduleToStartMs: latency(scheduleToStart),
      startToCloseMs: latency(startToClose),
    },
  };
}

/**
 * The job's runs (one per continue-as-new), oldest first. Visibility may lag the job's end by a moment,
 * so it is listed until it shows at least the runs progress reported, all closed.
 */
async function parentRunIds(client: Client, jobId: string, runsSeen: number): Promise<string[]> {
  let runIds: string[] = [];
  for (let attempt = 0; attempt < 20; attempt++) {
    runIds = [];
    let open = false;
    for await (const info of client.workflow.list({ query: `WorkflowId = "${jobId}"` })) {
      runIds.push(info.runId);
      open ||= info.status.name === 'RUNNING';
    }
    if (runIds.length >= runsSeen && !open) break;
    await sleep(500);
  }
  // Listed newest first.
  return runIds.reverse();
}
