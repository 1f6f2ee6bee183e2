/**
 * The activities: thin functions over the Graph client and the job files. They are the only code that
 * touches the network and the disk; each turns what it meets into a Temporal failure exactly once.
 */
import { ApplicationFailure, ApplicationFailureCategory } from '@temporalio/common';
import { Context } from '@temporalio/activity';
import type {
  GraphFailureDetails,
  JobSummary,
  PollOperationInput,
  PollOperationResult,
  PrepareJobInput,
  PreparedJob,
  ReadRowsInput,
  ReadRowsResult,
  RecordOutcomesInput,
  StartResetInput,
  StartResetResult,
  WriteReportInput,
} from '../workflows/types';
import { CsvInputError, sha256File } from './csvReader';
import type { GraphClient } from './graphClient';
import { GraphError, adviceFor } from './graphErrors';
import { jobPaths, prepareJobFiles, readRowsPage } from './jobFiles';
import { appendOutcomes, writeReport } from './report';

export interface ActivityDependencies {
  graph: GraphClient;
  /** Folder for job files; shared by all workers of a job. */
  dataDir: string;
}

/** Turns a Graph failure into the Temporal failure that makes the workflow do the right thing. */
export function toActivityFailure(error: unknown, user: string, attempt: number): unknown {
  if (!(error instanceof GraphError)) return error;
  const details: GraphFailureDetails = {
    httpStatus: error.status,
    graphCode: error.code,
    requestId: error.requestId,
    ambiguous: error.ambiguous,
    retryAfterMs: error.retryAfterMs,
    kind: error.kind,
    attempt,
  };
  const requestId = error.requestId ? `, request-id ${error.requestId}` : '';
  const message = `user ${user}: ${error.message}${requestId}; ${adviceFor(error.status, error.code)}`;
  if (error.kind === 'permanent') {
    return ApplicationFailure.create({
      message,
      type: 'GraphPermanentError',
      nonRetryable: true,
      details: [details],
    });
  }
  if (error.ambiguous) {
    // The workflow decides whether to send it again: it must know the reset may already have landed.
    return ApplicationFailure.create({
      message,
      type: 'GraphAmbiguousError',
      nonRetryable: true,
      details: [details],
      category: ApplicationFailureCategory.BENIGN,
    });
  }
  return ApplicationFailure.create({
    message,
    type: error.kind === 'auth' ? 'GraphAuthError' : 'GraphTransientError',
    nextRetryDelay: error.retryAfterMs,
    details: [details],
    // Throttling and passing trouble are expected and handled: logged at debug level, not as warnings.
    category: ApplicationFailureCategory.BENIGN,
  });
}

export function createActivities({ graph, dataDir }: ActivityDependencies) {
  return {
    /** POSTs resetPassword. A password Graph generates is dropped here: nobody receives it. */
    async startReset({ user }: StartResetInput): Promise<StartResetResult> {
      const { attempt } = Context.current().info;
      try {
        const accepted = await graph.startPasswordReset(user, {
          abortSignal: Context.current().cancellationSignal,
        });
        return {
          operationUrl: accepted.operationUrl,
          operationId: accepted.operationId,
          retryAfterMs: accepted.retryAfterMs,
          requestId: accepted.requestId,
          attempt,
        };
      } catch (error) {
        throw toActivityFailure(error, user, attempt);
      }
    },

    /** GETs the operation at the Location Graph gave. */
    async pollOperation({ user, operationUrl }: PollOperationInput): Promise<PollOperationResult> {
      try {
        const state = await graph.getOperation(operationUrl, {
          abortSignal: Context.current().cancellationSignal,
        });
        return {
          status: state.status,
          statusDetail: state.statusDetail,
          retryAfterMs: state.retryAfterMs,
          requestId: state.requestId,
        };
      } catch (error) {
        throw toActivityFailure(error, user, Context.current().info.attempt);
      }
    },

    /** Checks the CSV against its checksum and splits it into runnable and skipped rows. */
    async prepareJob({ jobId, csv }: PrepareJobInput): Promise<PreparedJob> {
      const paths = jobPaths(dataDir, jobId);
      let actual: string;
      try {
        actual = await sha256File(csv.path);
      } catch (error) {
        throw ApplicationFailure.create({
          message: `the CSV ${csv.path} cannot be read by the worker (${(error as NodeJS.ErrnoException).code ?? 'error'}); it must be on a path every worker can read`,
          type: 'CsvUnreadable',
          nonRetryable: true,
        });
      }
      if (actual !== csv.sha256) {
        throw ApplicationFailure.create({
          message: `the CSV ${csv.path} changed after the job was started (its SHA-256 is now ${actual.slice(0, 12)}…, expected ${csv.sha256.slice(0, 12)}…); nothing was reset: start a new job with the file as it is now`,
          type: 'CsvChanged',
          nonRetryable: true,
        });
      }
      try {
        return await prepareJobFiles(paths, jobId, csv.path);
      } catch (error) {
        if (error instanceof CsvInputError) {
          throw ApplicationFailure.create({ message: error.message, type: 'CsvInvalid', nonRetryable: true });
        }
        throw error;
      }
    },

    /** A page of runnable rows, from where the previous page ended. */
    async readRows({ jobId, byteOffset, limit }: ReadRowsInput): Promise<ReadRowsResult> {
      return readRowsPage(jobPaths(dataDir, jobId).rows, byteOffset, limit);
    },

    /** Appends outcomes to the job's ledger (a retried append is deduplicated when the report is read). */
    async recordOutcomes({ jobId, outcomes }: RecordOutcomesInput): Promise<void> {
      await appendOutcomes(jobPaths(dataDir, jobId).ledger, outcomes);
    },

    /** Writes the CSV and JSON report from the ledger. */
    async writeReport({ jobId, csv, startedAt }: WriteReportInput): Promise<JobSummary> {
      const paths = jobPaths(dataDir, jobId);
      const finishedAt = new Date().toISOString();
      const summary = await writeReport(
        paths.ledger,
        { csvPath: paths.reportCsv, jsonPath: paths.reportJson },
        { jobId, csvPath: csv.path, csvSha256: csv.sha256, startedAt, finishedAt },
      );
      return {
        jobId,
        total: summary.total,
        counts: summary.counts,
        reportCsvPath: summary.csvPath,
        reportJsonPath: summary.jsonPath,
        startedAt,
        finishedAt,
      };
    },
  };
}

export type Activities = ReturnType<typeof createActivities>;
