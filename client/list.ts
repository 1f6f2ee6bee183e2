/**
 * `bulk-reset list`: the recent jobs of this task queue, newest first, from Temporal's visibility store.
 *
 * Only the job workflows (type bulkReset) are listed, never the users' own. Per job: Temporal's list
 * gives the id, status, start time and the job's phase (the BulkResetPhase search attribute); who
 * started it is read from the first event of its history (one small read, no worker needed); the counts
 * come from the running job's progress query (answered by a worker, given a few seconds) or from the
 * finished job's result.
 */
import type { Client, WorkflowExecutionInfo } from '@temporalio/client';
import { progressQuery, bulkReset } from '../workflows';
import {
  type BulkResetInput,
  JOB_PHASE_SEARCH_ATTRIBUTE,
  type JobSummary,
  type OutcomeStatus,
} from '../workflows/types';
import { type Settings, createClient } from '../temporal/config';
import { failureMessage } from './jobs';
import { endLabel } from './watch';

/** Visibility answers pages in its own order: at most this many jobs are read, then sorted by start. */
const MAX_READ = 1_000;
/** How long a running job's progress query may take before its counts are shown as unknown. */
const QUERY_TIMEOUT_MS = 3_000;

export interface ListedJob {
  jobId: string;
  /**
   * A running job's phase (`running`, `paused`, `awaiting-approval`, ...); a finished job's ending
   * (`done`, `done with failures`, `cancelled`), or Temporal's status (`failed`, `terminated`, ...).
   */
  state: string;
  /** Temporal's status of the workflow: `running`, `completed`, `failed`, `terminated`, ... */
  status: string;
  startedAt: string;
  closedAt?: string;
  startedBy?: string;
  total?: number;
  counts?: Record<OutcomeStatus, number>;
  /** Why a job that could not run failed. */
  message?: string;
}

/** A visibility query's string literal. */
function quoted(text: string): string {
  return `'${text.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;
}

/** Who started the job, from its first history event's input; undefined if it cannot be read. */
async function startedByOf(client: Client, info: WorkflowExecutionInfo): Promise<string | undefined> {
  try {
    const { history } = await client.workflowService.getWorkflowExecutionHistory({
      namespace: client.options.namespace,
      execution: { workflowId: info.workflowId, runId: info.runId },
      maximumPageSize: 1,
    });
    const payloads = history?.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads;
    if (!payloads?.[0]) return undefined;
    // Opened as the SDK opens a result: the codecs in reverse order, then the payload converter.
    const { payloadCodecs, payloadConverter } = client.options.loadedDataConverter;
    let opened = [payloads[0]];
    for (const codec of [...payloadCodecs].reverse()) opened = await codec.decode(opened);
    return payloadConverter.fromPayload<BulkResetInput>(opened[0]).startedBy;
  } catch {
    return undefined;
  }
}

/** A running job's progress, or undefined when no worker answers within QUERY_TIMEOUT_MS. */
async function progressOf(client: Client, jobId: string) {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((done) => {
    timer = setTimeout(() => done(undefined), QUERY_TIMEOUT_MS);
  });
  try {
    return await Promise.race([
      client.workflow
        .getHandle(jobId)
        .query(progressQuery)
        .catch(() => undefined),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

async function describeListed(client: Client, info: WorkflowExecutionInfo): Promise<ListedJob> {
  const status = info.status.name.toLowerCase().replaceAll('_', ' ');
  const job: ListedJob = {
    jobId: info.workflowId,
    state: status,
    status,
    startedAt: info.startTime.toISOString(),
    ...(info.closeTime && { closedAt: info.closeTime.toISOString() }),
    startedBy: await startedByOf(client, info),
  };
  if (info.status.name === 'RUNNING') {
    const progress = await progressOf(client, info.workflowId);
    job.state = progress?.phase ?? info.typedSearchAttributes.get(JOB_PHASE_SEARCH_ATTRIBUTE) ?? 'running';
    if (progress) {
      job.total = progress.total;
      job.counts = progress.counts;
    }
  } else if (info.status.name === 'COMPLETED') {
    const summary = (await client.workflow.getHandle(info.workflowId).result()) as JobSummary;
    job.state = endLabel(summary.counts);
    job.total = summary.total;
    job.counts = summary.counts;
  } else if (info.status.name === 'FAILED') {
    job.message = await client.workflow
      .getHandle(info.workflowId)
      .result()
      .then(
        () => undefined,
        (error: unknown) => failureMessage(error),
      );
  }
  return job;
}

/** The `limit` most recently started jobs of this task queue, newest first. */
export async function listJobs(client: Client, taskQueue: string, limit: number): Promise<ListedJob[]> {
  const query = `WorkflowType = ${quoted(bulkReset.name)} AND TaskQueue = ${quoted(taskQueue)}`;
  const found: WorkflowExecutionInfo[] = [];
  for await (const info of client.workflow.list({ query, pageSize: 100 })) {
    found.push(info);
    if (found.length >= MAX_READ) break;
  }
  const newest = found.sort((a, b) => b.startTime.getTime() - a.startTime.getTime()).slice(0, limit);
  return Promise.all(newest.map((info) => describeListed(client, info)));
}

function countsText(job: ListedJob): string {
  if (!job.counts)
    return job.message ?? (job.status === 'running' ? 'counts unknown (no worker answered)' : '');
  const { counts } = job;
  return [
    `${counts.succeeded} succeeded`,
    `${counts.failed} failed`,
    `${counts.unconfirmed} unconfirmed`,
    `${counts.skipped} skipped`,
    `${counts.cancelled} cancelled`,
    ...(job.total === undefined ? [] : [`of ${job.total}`]),
  ].join(', ');
}

/** The jobs as aligned columns: id, state, started at, started by, counts. */
export function formatJobs(jobs: ListedJob[]): string {
  const rows = jobs.map((job) => [
    job.jobId,
    job.state,
    job.startedAt.replace(/\.\d+Z$/, 'Z'),
    job.startedBy ?? '?',
    countsText(job),
  ]);
  const header = ['JOB', 'STATE', 'STARTED (UTC)', 'STARTED BY', 'ROWS'];
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => row[column].length)),
  );
  return [header, ...rows]
    .map((row) =>
      row
        .map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column])))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** `bulk-reset list [--limit N] [--json]`. */
export async function listCommand(
  settings: Settings,
  options: { limit: number; json?: boolean },
): Promise<number> {
  const client = await createClient(settings);
  const jobs = await listJobs(client, settings.taskQueue, options.limit);
  if (options.json) {
    process.stdout.write(`${JSON.stringify({ jobs })}\n`);
  } else if (jobs.length === 0) {
    console.error(`no jobs on task queue ${settings.taskQueue} in namespace ${settings.temporal.namespace}`);
  } else {
    console.log(formatJobs(jobs));
  }
  return 0;
}
