/**
 * What a worker process logs. What the Temporal SDK logs goes through the process's Runtime logger:
 * its own records (`Activity failed`, with the error that failed the activity) and the workflows' `log`
 * calls. The errors are the problem: ours name the user and carry Graph's message and request-id
 * (`user alice@contoso.com: Graph answered 403 …`), the very text the payload codec seals before it
 * reaches Temporal, and the SDK prints them with their stack trace, many lines per refused user.
 *
 * So by default every record's error is replaced by what an operator acts on without naming anyone:
 * the failure's type, whether it will be retried, and for a Graph failure the HTTP status and Graph's
 * error code. The record keeps its message (the SDK's are fixed texts), the activity and workflow types,
 * the workflow id (the job id and an opaque hash of the user) and the attempt, and is printed on one
 * line. `BULK_RESET_LOG_VERBOSE=1` prints the SDK's records as they are, errors and stack traces
 * included: for debugging, on a machine where the logs may name users.
 *
 * `BULK_RESET_LOG_FORMAT=json` writes each record as one JSON object on one line (time, level, message,
 * the job id, the workflow id and the rest of the record's ids), for a log pipeline; redacted the same way.
 */
import { inspect } from 'node:util';
import { ApplicationFailure } from '@temporalio/common';
import {
  DefaultLogger,
  type LogEntry,
  type LogLevel,
  type LogMetadata,
  type Logger,
} from '@temporalio/worker';
import type { GraphFailureDetails } from '../workflows/types';

/** Meta keys that hold an error or what it said; anything else in a record is an id, a count or a type. */
const ERROR_KEYS = new Set(['error', 'err', 'failure', 'cause', 'reason', 'details', 'stack', 'stackTrace']);
/** What a Graph error code looks like; anything else is not repeated. */
const GRAPH_CODE = /^[A-Za-z0-9_.]{1,80}$/;

/** How records are written: `text`, one line each (`<time> [LEVEL] message {meta}`), or `json`, one object each. */
export type LogFormat = 'text' | 'json';

export interface LoggerChoice {
  /** The SDK's records as they are, errors and stack traces included (BULK_RESET_LOG_VERBOSE). */
  verbose?: boolean;
  /** BULK_RESET_LOG_FORMAT. */
  format?: LogFormat;
}

/**
 * The logger for the process's Temporal Runtime: records at `level` and above to stderr, redacted unless
 * `verbose`, one line each, as text or JSON. Verbose text is the SDK's own format, stack traces and all.
 */
export function runtimeLogger(
  level: LogLevel,
  { verbose = false, format = 'text' }: LoggerChoice = {},
): Logger {
  if (format === 'json') {
    const json = new DefaultLogger(level, (entry) => printJson(entry, verbose));
    return verbose ? json : new RedactingLogger(json);
  }
  return verbose ? new DefaultLogger(level) : new RedactingLogger(new DefaultLogger(level, printOneLine));
}

/** What may stay of an error in a log record: never its message, stack, cause or details. */
export function errorSummary(value: unknown): Record<string, unknown> | string {
  if (value instanceof ApplicationFailure) {
    const summary: Record<string, unknown> = { type: value.type ?? 'ApplicationFailure' };
    if (value.nonRetryable) summary.nonRetryable = true;
    const graph = value.details?.[0] as Partial<GraphFailureDetails> | undefined;
    if (typeof graph?.httpStatus === 'number') summary.httpStatus = graph.httpStatus;
    if (typeof graph?.graphCode === 'string' && GRAPH_CODE.test(graph.graphCode)) {
      summary.graphCode = graph.graphCode;
    }
    return summary;
  }
  if (value instanceof Error) return { type: value.name };
  return value === undefined || value === null ? String(value) : `(${typeof value}, withheld)`;
}

/**
 * Meta keys dropped from every record: the task token is an opaque, long blob for the server, of no use
 * to a reader of the log.
 */
const NOISE_KEYS = new Set(['taskToken']);

/** The record's metadata with every error replaced by its summary; the SDK's timestamp is kept. */
export function redactMeta(meta: LogMetadata): LogMetadata {
  const redacted: LogMetadata = {};
  for (const key of Reflect.ownKeys(meta)) {
    if (typeof key === 'string' && NOISE_KEYS.has(key)) continue;
    const value: unknown = meta[key];
    redacted[key] =
      (typeof key === 'string' && ERROR_KEYS.has(key)) || value instanceof Error
        ? errorSummary(value)
        : value;
  }
  return redacted;
}

/** Hands every record, its errors summarised, to the next logger. */
export class RedactingLogger implements Logger {
  constructor(private readonly next: Logger) {}

  log(level: LogLevel, message: string, meta?: LogMetadata): void {
    this.next.log(level, message, meta && redactMeta(meta));
  }

  trace(message: string, meta?: LogMetadata): void {
    this.log('TRACE', message, meta);
  }

  debug(message: string, meta?: LogMetadata): void {
    this.log('DEBUG', message, meta);
  }

  info(message: string, meta?: LogMetadata): void {
    this.log('INFO', message, meta);
  }

  warn(message: string, meta?: LogMetadata): void {
    this.log('WARN', message, meta);
  }

  error(message: string, meta?: LogMetadata): void {
    this.log('ERROR', message, meta);
  }
}

/** A message on one line: a multi-line text (the bundler's report) has its line breaks shown as ` | `. */
function oneLine(text: string): string {
  return text.trim().replace(/\s*[\r\n]+\s*/g, ' | ');
}

/** `<time> [LEVEL] message {meta}` on one line of stderr, so a log shipper sees one record per line. */
function printOneLine({ level, timestampNanos, message, meta }: LogEntry): void {
  const time = new Date(Number(timestampNanos / 1_000_000n)).toISOString();
  const details = meta ? ` ${inspect(meta, { breakLength: Infinity, compact: true, depth: 4 })}` : '';
  process.stderr.write(`${time} [${level}] ${oneLine(message)}${details}\n`);
}

/**
 * One record as one JSON object: `time`, `level`, `message`, then the record's ids and details (the
 * activity and workflow types, `workflowId`, the attempt, the summarised error), with `jobId` added from
 * the workflow id (a job's own, or the part before the `/` of a user's). Errors are summarised before they
 * get here unless `verbose`, which writes their message and stack as strings.
 */
export function jsonRecord({ level, timestampNanos, message, meta }: LogEntry, verbose = false): string {
  const record: Record<string, unknown> = {
    time: new Date(Number(timestampNanos / 1_000_000n)).toISOString(),
    level,
    message,
  };
  const workflowId: unknown = meta?.workflowId;
  if (typeof workflowId === 'string') record.jobId = workflowId.split('/')[0];
  for (const [key, value] of Object.entries(meta ?? {}) as [string, unknown][]) {
    if (key in record) continue;
    record[key] =
      verbose && value instanceof Error
        ? { type: value.name, message: value.message, stack: value.stack }
        : value;
  }
  return JSON.stringify(record, (_key, value: unknown) =>
    typeof value === 'bigint' ? value.toString() : value,
  );
}

function printJson(entry: LogEntry, verbose: boolean): void {
  process.stderr.write(`${jsonRecord(entry, verbose)}\n`);
}
