/**
 * `bulk-reset report <job>` beyond a copy: the final view of a job and its retries (`--final`), the rows
 * of some outcomes only (`--status`), and links to the Web UI (`--web-ui`). Built from the jobs' JSON
 * reports on the data folder, with the report's own pure functions (jobs/report), so a view has the same
 * columns as the report the worker wrote.
 */
import { readFile } from 'node:fs/promises';
import { jobPaths } from '../jobs/jobFiles';
import {
  type ReportColumn,
  type ReportJson,
  type ReportRow,
  type WebUi,
  failuresByCause,
  finalRows,
  reportColumns,
  reportCsv,
  rowsWithStatus,
  summarise,
  webUiLink,
} from '../jobs/report';
import type { OutcomeStatus } from '../workflows/types';

/** A finished job's JSON report; refused with what to do when the job has none here. */
export async function readJobReport(dataDir: string, jobId: string): Promise<ReportJson> {
  const paths = jobPaths(dataDir, jobId);
  let text: string;
  try {
    text = await readFile(paths.reportJson, 'utf8');
  } catch {
    throw new Error(
      `no report for job ${jobId} in ${paths.dir}: the job may still be running (see \`bulk-reset status ${jobId}\`) or ran against another data folder (BULK_RESET_DATA_DIR)`,
    );
  }
  return JSON.parse(text) as ReportJson;
}

/**
 * The retries of a job and of its retries (each report names its retries in `retriedBy`), oldest
 * finished first: the order in which their outcomes replace earlier ones. A retry without a report yet
 * (still running) is left out and named in `unfinished`.
 */
export async function retriesOf(
  dataDir: string,
  report: ReportJson,
): Promise<{ retries: { jobId: string; report: ReportJson }[]; unfinished: string[] }> {
  const retries: { jobId: string; report: ReportJson }[] = [];
  const unfinished: string[] = [];
  const seen = new Set<string>([report.job.jobId]);
  const pending = [...(report.job.retriedBy ?? [])];
  while (pending.length > 0) {
    const jobId = pending.shift() as string;
    if (seen.has(jobId)) continue;
    seen.add(jobId);
    let retry: ReportJson;
    try {
      retry = await readJobReport(dataDir, jobId);
    } catch {
      unfinished.push(jobId);
      continue;
    }
    retries.push({ jobId, report: retry });
    pending.push(...(retry.job.retriedBy ?? []));
  }
  retries.sort((a, b) => a.report.job.finishedAt.localeCompare(b.report.job.finishedAt));
  return { retries, unfinished };
}

export interface ReportViewOptions {
  /** Each user's last outcome across the job and its retries. */
  final: boolean;
  /** Only rows with these outcomes; every row when empty. */
  statuses: readonly OutcomeStatus[];
  /** Link each row with a workflow id to this Web UI (replacing any link the report has). */
  webUi?: WebUi;
}

/** A view of a job's report: its rows and, for the JSON form, its header and summary. */
export interface ReportView {
  rows: ReportRow[];
  /** The CSV's columns: the job's (a job with containment has two more). */
  columns: readonly ReportColumn[];
  json: Record<string, unknown>;
  /** Retries still running, whose rows the final view could not take yet. */
  unfinished: string[];
}

export async function reportView(
  dataDir: string,
  jobId: string,
  options: ReportViewOptions,
): Promise<ReportView> {
  const report = await readJobReport(dataDir, jobId);
  let rows: ReportRow[] = report.outcomes;
  let retryIds: string[] | undefined;
  let unfinished: string[] = [];
  if (options.final) {
    const found = await retriesOf(dataDir, report);
    unfinished = found.unfinished;
    retryIds = found.retries.map((retry) => retry.jobId);
    rows = finalRows(
      { jobId, outcomes: report.outcomes },
      found.retries.map((retry) => ({ jobId: retry.jobId, outcomes: retry.report.outcomes })),
    );
  }
  rows = rowsWithStatus(rows, options.statuses);
  const { webUi } = options;
  if (webUi) {
    rows = rows.map((row) =>
      row.workflowId ? { ...row, webUiLink: webUiLink(webUi, row.workflowId) } : row,
    );
  }
  const json = {
    job: report.job,
    view: {
      ...(options.final && { final: true, retries: retryIds, ...(unfinished.length > 0 && { unfinished }) }),
      ...(options.statuses.length > 0 && { statuses: options.statuses }),
    },
    summary: { total: rows.length, counts: summarise(rows), failuresByCause: failuresByCause(rows) },
    outcomes: rows,
  };
  return { rows, columns: reportColumns(report.job.containment !== undefined), json, unfinished };
}

/** The view as the file `--format` asks for. */
export function renderReportView(view: ReportView, format: 'csv' | 'json'): string {
  return format === 'csv' ? reportCsv(view.rows, view.columns) : `${JSON.stringify(view.json, null, 2)}\n`;
}
