/**
 * `bulk-reset watch <job>` (and `start --wait`, `retry --wait`): follows a job until it ends, then prints
 * its summary and answers the job's exit code.
 *
 * On a terminal, one line redrawn in place: a progress bar, the percent, the time left, the rate over the
 * last ~10 s, users in flight and the counts by outcome. Anywhere else (a log, a pipe, CI) a plain line
 * every 5 s, so logs stay readable.
 */
import type { Client } from '@temporalio/client';
import type { JobProgress, JobSummary } from '../workflows/types';
import { type Settings, createClient } from '../temporal/config';
import { UnknownJobError, countParts, exitCodeFor, formatSummary, waitForJob } from './jobs';

// ---------------------------------------------------------------------------------------------------------
// Pure helpers: the live line, and the rate and time-left estimates behind it

export interface BarGlyphs {
  filled: string;
  empty: string;
}

export const UNICODE_BAR: BarGlyphs = { filled: '█', empty: '░' };
export const ASCII_BAR: BarGlyphs = { filled: '#', empty: '-' };

const BAR_WIDTH = 24;
/** The rate is measured over this much recent history: long enough to smooth, short enough to follow a pause. */
export const RATE_WINDOW_MS = 10_000;
const LOG_INTERVAL_MS = 5_000;
const POLL_INTERVAL_MS = 1_000;

/** A bar `width` glyphs wide; full only when the fraction is 1, so a bar that looks done is done. */
export function renderBar(fraction: number, width: number, glyphs: BarGlyphs = UNICODE_BAR): string {
  const clamped = Number.isFinite(fraction) ? Math.min(Math.max(fraction, 0), 1) : 0;
  const filled = Math.floor(clamped * width);
  return glyphs.filled.repeat(filled) + glyphs.empty.repeat(width - filled);
}

/** The block glyphs, unless the locale says the terminal does not speak UTF-8 (`LANG=C`, `POSIX`, Latin-1). */
export function barGlyphs(env: NodeJS.ProcessEnv): BarGlyphs {
  const locale = env.LC_ALL || env.LC_CTYPE || env.LANG;
  return locale && !/utf-?8/i.test(locale) ? ASCII_BAR : UNICODE_BAR;
}

/**
 * Rows per second over a sliding window of samples. Time is passed in, so it is a pure calculation:
 * `record(now, rows)` after each look at the job, `rowsPerSecond()` for the rate over the last window.
 */
export class RateWindow {
  private readonly samples: { atMs: number; rows: number }[] = [];

  constructor(private readonly windowMs: number = RATE_WINDOW_MS) {}

  record(atMs: number, rows: number): void {
    this.samples.push({ atMs, rows });
    // Keep one sample at or before the window's start, so that with enough history the rate spans the
    // whole window rather than slightly less.
    while (this.samples.length > 2 && this.samples[1].atMs <= atMs - this.windowMs) this.samples.shift();
  }

  /** Undefined until two samples some time apart exist. */
  rowsPerSecond(): number | undefined {
    if (this.samples.length < 2) return undefined;
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    const spanMs = last.atMs - first.atMs;
    if (spanMs <= 0) return undefined;
    return Math.max(0, ((last.rows - first.rows) * 1_000) / spanMs);
  }
}

/** Time left at the current rate; undefined while the rate is unknown or zero (paused, waiting). */
export function estimateRemainingMs(
  remainingRows: number,
  rowsPerSecond: number | undefined,
): number | undefined {
  if (remainingRows <= 0) return 0;
  if (rowsPerSecond === undefined || !(rowsPerSecond > 0)) return undefined;
  return Math.ceil((remainingRows / rowsPerSecond) * 1_000);
}

/** `m:ss`, or `h:mm:ss` from an hour up; `--:--` when unknown. */
export function formatEta(remainingMs: number | undefined): string {
  if (remainingMs === undefined || !Number.isFinite(remainingMs)) return '--:--';
  const totalSeconds = Math.ceil(Math.max(remainingMs, 0) / 1_000);
  const hours = Math.floor(totalSeconds / 3_600);
  const minutes = Math.floor((totalSeconds % 3_600) / 60);
  const seconds = String(totalSeconds % 60).padStart(2, '0');
  return hours > 0 ? `${hours}:${String(minutes).padStart(2, '0')}:${seconds}` : `${minutes}:${seconds}`;
}

function formatRate(rowsPerSecond: number | undefined): string {
  if (rowsPerSecond === undefined) return '-- rows/s';
  return `${rowsPerSecond < 10 ? rowsPerSecond.toFixed(1) : Math.round(rowsPerSecond)} rows/s`;
}

/**
 * Rows whose reset has ended (succeeded, failed, unconfirmed): what the rate counts. Skipped and cancelled
 * rows are recorded all at once (when the CSV is checked, when the job is cancelled) and would make a
 * burst that says nothing about how fast users are being reset.
 */
export function resetsEnded(progress: Pick<JobProgress, 'counts'>): number {
  const { counts } = progress;
  return counts.succeeded + counts.failed + counts.unconfirmed;
}

/** How a finished job's last line is labelled: never like a clean run when rows failed or were cancelled. */
export type EndLabel = 'done' | 'done with failures' | 'cancelled';

export type LiveProgress = Pick<JobProgress, 'total' | 'done' | 'inFlight' | 'counts'> & {
  phase: JobProgress['phase'] | EndLabel;
};

export interface LiveLineOptions {
  rowsPerSecond?: number;
  /** Draw a bar with these glyphs; no bar when absent (plain log lines). */
  glyphs?: BarGlyphs;
  barWidth?: number;
  /**
   * The terminal's width: the line is made to fit it (a narrower bar, then fewer details) and keeps, in
   * any case, the percent, the time left and the failed count. No limit when absent (log lines).
   */
  columns?: number;
}

/** The narrower bar tried when the full line does not fit. */
const NARROW_BAR_WIDTH = 10;

/**
 * `[running] ████████░░░░ 45% 18/40 · ETA 0:07 · 4.2 rows/s · 3 in flight · succeeded 15 · failed 2 · …`.
 * Given the terminal's width, the first of these that fits: the full line; with a narrower bar; without
 * the bar; then the percent, time left and outcome counts (failed first, zero counts left out, the rate
 * last), dropping details from the end. The percent, the time left and the failed count always stay.
 */
export function formatLiveLine(progress: LiveProgress, options: LiveLineOptions = {}): string {
  const { total, done, counts } = progress;
  const fraction = total ? done / total : 0;
  const moving = progress.phase === 'running' || progress.phase === 'cancelling';
  // Paused or waiting for approval, nothing moves: the time left is unknown, whatever the recent rate.
  const remainingMs =
    total === undefined
      ? undefined
      : estimateRemainingMs(total - done, moving ? options.rowsPerSecond : undefined);
  const head = (barWidth: number | undefined): string => {
    const words = [`[${progress.phase}]`];
    if (options.glyphs && barWidth) words.push(renderBar(fraction, barWidth, options.glyphs));
    words.push(total ? `${Math.floor(fraction * 100)}%` : '--%', `${done}/${total ?? '?'}`);
    return words.join(' ');
  };
  const eta = `ETA ${formatEta(remainingMs)}`;
  const rate = formatRate(options.rowsPerSecond);
  const full = (barWidth: number | undefined): string => {
    return [head(barWidth), eta, rate, ...countParts(progress.inFlight, counts)].join(' · ');
  };
  const line = full(options.barWidth ?? BAR_WIDTH);
  const { columns } = options;
  if (!columns || line.length < columns) return line;
  // The compact forms: failed first, other counts only when not zero, the rate last; each shorter than
  // the one before by the last detail; the shortest drops the row numbers too.
  const details = [`failed ${counts.failed}`];
  for (const status of ['unconfirmed', 'cancelled', 'succeeded', 'skipped'] as const) {
    if (counts[status] > 0) details.push(`${status} ${counts[status]}`);
  }
  details.push(rate);
  const candidates = [
    full(NARROW_BAR_WIDTH),
    full(undefined),
    [head(NARROW_BAR_WIDTH), eta, ...details].join(' · '),
  ];
  for (let kept = details.length; kept >= 1; kept -= 1) {
    candidates.push([head(undefined), eta, ...details.slice(0, kept)].join(' · '));
  }
  const percent = total ? `${Math.floor(fraction * 100)}%` : '--%';
  candidates.push([`[${progress.phase}] ${percent}`, eta, details[0]].join(' · '));
  return candidates.find((candidate) => candidate.length < columns) ?? candidates[candidates.length - 1];
}

/** Cuts a line to fit the terminal: a line that wraps can no longer be redrawn in place. */
export function fitToWidth(line: string, columns: number | undefined): string {
  if (!columns || columns < 2 || line.length < columns) return line;
  return `${line.slice(0, columns - 2)}…`;
}

/**
 * How a finished job ended, in a word for its last line and `list`: `done` only when every row succeeded
 * or was skipped; `cancelled` when rows were cancelled; else `done with failures` (failed or unconfirmed).
 */
export function endLabel(counts: JobSummary['counts']): EndLabel {
  if (counts.cancelled > 0) return 'cancelled';
  return counts.failed + counts.unconfirmed > 0 ? 'done with failures' : 'done';
}

/** The last line drawn for a finished job: nothing in flight, and labelled by how it ended. */
export function finishedLine(summary: JobSummary): LiveProgress {
  return {
    phase: endLabel(summary.counts),
    total: summary.total,
    done: summary.total,
    inFlight: 0,
    counts: summary.counts,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Watching a job

/** How a watched job ended: the final state, and the exit code it answers. */
export type WatchResult = Awaited<ReturnType<typeof waitForJob>> & { exitCode: number };

/**
 * Follows the job until it ends, drawing progress on `output` (standard error for the CLI), and answers
 * how it ended with its exit code: 0 every row succeeded or was skipped, 1 some users failed, are
 * unconfirmed or were cancelled, 2 the job could not run. An unknown job is refused (UnknownJobError).
 */
export async function followJob(
  client: Client,
  jobId: string,
  output: NodeJS.WriteStream,
): Promise<WatchResult> {
  const { env } = process;
  // A dumb terminal (an editor's shell buffer) cannot erase a line: it gets the plain lines.
  const live = output.isTTY === true && env.TERM !== 'dumb';
  const glyphs = barGlyphs(env);
  const rate = new RateWindow();
  let drawn = false;
  let lastLoggedMs: number | undefined;

  const draw = (progress: LiveProgress): void => {
    const line = formatLiveLine(progress, {
      rowsPerSecond: rate.rowsPerSecond(),
      glyphs,
      columns: output.columns,
    });
    output.write(`\r\x1b[2K${fitToWidth(line, output.columns)}`);
    drawn = true;
  };
  const onProgress = (progress: JobProgress): void => {
    const nowMs = Date.now();
    rate.record(nowMs, resetsEnded(progress));
    if (live) {
      draw(progress);
    } else if (lastLoggedMs === undefined || nowMs - lastLoggedMs >= LOG_INTERVAL_MS) {
      output.write(`${formatLiveLine(progress, { rowsPerSecond: rate.rowsPerSecond() })}\n`);
      lastLoggedMs = nowMs;
    }
  };
  // Ctrl-C stops watching, not the job: say so, on a line of its own.
  const stopWatching = (): void => {
    output.write(`${drawn ? '\n' : ''}stopped watching; job ${jobId} goes on (bulk-reset status ${jobId})\n`);
    process.exit(130);
  };

  process.once('SIGINT', stopWatching);
  let final: Awaited<ReturnType<typeof waitForJob>>;
  try {
    final = await waitForJob(client, jobId, onProgress, POLL_INTERVAL_MS);
  } finally {
    process.off('SIGINT', stopWatching);
  }

  if (final.state === 'completed' && drawn) draw(finishedLine(final.summary));
  if (drawn) output.write('\n');
  if (final.state === 'not-found') throw new UnknownJobError(jobId, client.options.namespace);
  if (final.state === 'completed') return { ...final, exitCode: exitCodeFor(final.summary) };
  output.write(`job ${jobId} could not run: ${final.message}\n`);
  return { ...final, exitCode: 2 };
}

/**
 * Follows the job (followJob), then prints its summary on standard output and answers its exit code.
 */
export async function runWatch(client: Client, jobId: string, output: NodeJS.WriteStream): Promise<number> {
  const result = await followJob(client, jobId, output);
  // On standard output, apart from the progress: what a script keeps.
  if (result.state === 'completed') process.stdout.write(`${formatSummary(result.summary)}\n`);
  return result.exitCode;
}

/** `bulk-reset watch <job>`. */
export async function watchCommand(settings: Settings, jobId: string): Promise<number> {
  const client = await createClient(settings);
  return runWatch(client, jobId, process.stderr);
}
