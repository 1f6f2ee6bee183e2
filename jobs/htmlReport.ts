/**
 * The job's summary as one self-contained HTML page, for an incident ticket (`bulk-reset report <job>
 * --format html`): the verdict, outcome counts, failures by cause with what to do, a chart of progress
 * and of requests Graph turned away over time, and the job's audit facts.
 *
 * It is built from the JSON report alone and names no user: the page may travel further than the CSV
 * (tickets, e-mail), so it carries row numbers, never user names, passwords or tokens. It loads nothing:
 * no script, no font, no image from elsewhere, and its Content-Security-Policy forbids them, so it reads
 * the same offline and cannot call out when opened.
 */
import { OUTCOME_STATUSES, type OutcomeStatus } from '../workflows/types';
import { type FailureCause, type ReportJson, type ReportRow, failuresByCause } from './report';

/** One point of the chart: a slice of the job's time. */
export interface TimelineBucket {
  /** Start of the slice, ms since the job started. */
  offsetMs: number;
  /** Rows that ended in this slice. */
  finished: number;
  /** Rows ended by the end of this slice. */
  finishedSoFar: number;
  /**
   * Requests Graph turned away (throttled, busy, or no answer: every resetPassword attempt after a
   * row's first) of the rows that ended in this slice.
   */
  turnedAway: number;
}

/** How many slices the chart has at most. */
const TIMELINE_SLICES = 60;

/**
 * Progress over time from the rows' own times: each started row is counted in the slice in which it
 * ended, with the extra attempts it needed. Rows never started (skipped, cancelled before starting) have
 * no time and are left out.
 */
export function timeline(rows: readonly ReportRow[], startedAt?: string): TimelineBucket[] {
  const timed = rows
    .filter((row) => row.finishedAt !== undefined)
    .map((row) => ({ at: Date.parse(row.finishedAt as string), extra: Math.max(0, row.startAttempts - 1) }))
    .filter((row) => Number.isFinite(row.at));
  if (timed.length === 0) return [];
  const firstStart = rows
    .map((row) => (row.startedAt ? Date.parse(row.startedAt) : Number.NaN))
    .filter(Number.isFinite);
  const origin = Math.min(
    startedAt ? Date.parse(startedAt) : Number.POSITIVE_INFINITY,
    ...firstStart,
    ...timed.map((row) => row.at),
  );
  const span = Math.max(1, Math.max(...timed.map((row) => row.at)) - origin);
  const sliceMs = Math.max(1_000, Math.ceil(span / TIMELINE_SLICES / 1_000) * 1_000);
  const slices = Math.floor(span / sliceMs) + 1;
  const buckets: TimelineBucket[] = Array.from({ length: slices }, (_, index) => ({
    offsetMs: index * sliceMs,
    finished: 0,
    finishedSoFar: 0,
    turnedAway: 0,
  }));
  for (const row of timed) {
    const bucket = buckets[Math.min(slices - 1, Math.floor((row.at - origin) / sliceMs))];
    bucket.finished += 1;
    bucket.turnedAway += row.extra;
  }
  let soFar = 0;
  for (const bucket of buckets) {
    soFar += bucket.finished;
    bucket.finishedSoFar = soFar;
  }
  return buckets;
}

/** The page's one-line verdict and its colour: a cancelled or failing job never looks like a clean one. */
export function verdict(
  counts: Record<OutcomeStatus, number>,
  cancelled: boolean,
): { text: string; tone: 'ok' | 'warn' | 'bad' } {
  const total = OUTCOME_STATUSES.reduce((sum, status) => sum + counts[status], 0);
  const needsLook = counts.failed + counts.unconfirmed;
  if (cancelled) return { text: `cancelled: ${counts.cancelled} of ${total} rows not reset`, tone: 'bad' };
  if (counts.failed > 0 && counts.failed >= counts.succeeded)
    return { text: `mostly failed: ${counts.failed} of ${total} rows failed`, tone: 'bad' };
  if (needsLook > 0)
    return {
      text: `done with ${counts.failed} failed and ${counts.unconfirmed} unconfirmed of ${total} rows`,
      tone: 'warn',
    };
  return { text: `done: ${counts.succeeded} of ${total} rows reset`, tone: 'ok' };
}

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Text made safe for HTML content and attribute values. */
export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (character) => ESCAPES[character]);
}

function formatDuration(ms: number): string {
  const seconds = Math.round(ms / 1000);
  const hours = Math.floor(seconds / 3600);
  const minutes = Math.floor((seconds % 3600) / 60);
  const rest = seconds % 60;
  if (hours > 0) return `${hours} h ${minutes} min`;
  if (minutes > 0) return `${minutes} min ${rest} s`;
  return `${rest} s`;
}

const STATUS_COLOURS: Record<OutcomeStatus, string> = {
  succeeded: '#1a7f37',
  failed: '#cf222e',
  unconfirmed: '#bf8700',
  skipped: '#6e7781',
  cancelled: '#8250df',
};

function countsSection(counts: Record<OutcomeStatus, number>, total: number): string {
  const bars = OUTCOME_STATUSES.map((status) => {
    const share = total === 0 ? 0 : (counts[status] / total) * 100;
    return `<tr data-status="${status}"><th scope="row">${status}</th><td class="num" data-count="${counts[status]}">${counts[status]}</td><td class="bar"><span style="width:${share.toFixed(1)}%;background:${STATUS_COLOURS[status]}"></span></td></tr>`;
  }).join('\n');
  return `<section><h2>Outcomes</h2><table class="counts">\n${bars}\n<tr><th scope="row">total</th><td class="num" data-count="${total}">${total}</td><td></td></tr></table></section>`;
}

function causesSection(causes: readonly FailureCause[]): string {
  if (causes.length === 0)
    return '<section><h2>Failed and unconfirmed rows by cause</h2><p>None.</p></section>';
  const rows = causes
    .map(
      (cause) =>
        `<tr data-cause="${escapeHtml(cause.cause)}"><td><code>${escapeHtml(cause.cause)}</code></td><td class="num">${cause.count}</td><td class="num">${cause.retryable}</td><td>${escapeHtml(cause.whatToDo)}</td><td>${cause.rows.map((row) => escapeHtml(row)).join(', ')}${cause.count > cause.rows.length ? ', …' : ''}</td></tr>`,
    )
    .join('\n');
  return `<section><h2>Failed and unconfirmed rows by cause</h2><table class="causes"><thead><tr><th>cause</th><th>rows</th><th>retryable</th><th>what to do</th><th>e.g. rows</th></tr></thead><tbody>\n${rows}\n</tbody></table></section>`;
}

/** An inline SVG: rows done so far (line) and requests turned away (bars), per slice of the job's time. */
function chartSection(buckets: readonly TimelineBucket[]): string {
  if (buckets.length === 0) return '<section><h2>Over time</h2><p>No row was started.</p></section>';
  const width = 720;
  const height = 220;
  const left = 50;
  const bottom = 30;
  const plotWidth = width - left - 10;
  const plotHeight = height - bottom - 10;
  const total = buckets[buckets.length - 1].finishedSoFar;
  const maxTurned = Math.max(1, ...buckets.map((bucket) => bucket.turnedAway));
  const step = plotWidth / buckets.length;
  const x = (index: number) => left + index * step;
  const bars = buckets
    .map((bucket, index) => {
      const barHeight = (bucket.turnedAway / maxTurned) * plotHeight * 0.5;
      return bucket.turnedAway === 0
        ? ''
        : `<rect x="${x(index).toFixed(1)}" y="${(10 + plotHeight - barHeight).toFixed(1)}" width="${Math.max(1, step - 1).toFixed(1)}" height="${barHeight.toFixed(1)}" fill="#bf8700"><title>${bucket.turnedAway} turned away</title></rect>`;
    })
    .join('');
  const points = buckets
    .map(
      (bucket, index) =>
        `${(x(index) + step).toFixed(1)},${(10 + plotHeight - (bucket.finishedSoFar / Math.max(1, total)) * plotHeight).toFixed(1)}`,
    )
    .join(' ');
  const lastOffset = buckets[buckets.length - 1].offsetMs + (buckets[1]?.offsetMs ?? 1000);
  const turnedAway = buckets.reduce((sum, bucket) => sum + bucket.turnedAway, 0);
  return `<section><h2>Over time</h2>
<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="rows done over time, and requests Graph turned away">
<rect x="${left}" y="10" width="${plotWidth}" height="${plotHeight}" fill="none" stroke="#d0d7de"/>
${bars}
<polyline points="${left},${10 + plotHeight} ${points}" fill="none" stroke="#1a7f37" stroke-width="2"/>
<text x="${left - 6}" y="16" text-anchor="end" font-size="11">${total}</text>
<text x="${left - 6}" y="${10 + plotHeight}" text-anchor="end" font-size="11">0</text>
<text x="${left}" y="${height - 10}" font-size="11">0</text>
<text x="${width - 10}" y="${height - 10}" text-anchor="end" font-size="11">${escapeHtml(formatDuration(lastOffset))}</text>
</svg>
<p class="legend"><span class="swatch" style="background:#1a7f37"></span> rows done so far (<span data-figure="timed-rows">${total}</span>) · <span class="swatch" style="background:#bf8700"></span> requests Graph turned away (throttled, busy or unanswered, then sent again): <span data-figure="turned-away">${turnedAway}</span> in all</p></section>`;
}

function factsSection(report: ReportJson): string {
  const { job } = report;
  const settings = job.settings;
  const started = job.startedAt ? Date.parse(job.startedAt) : Number.NaN;
  const finished = Date.parse(job.finishedAt);
  const facts: [string, string | undefined][] = [
    ['job', job.jobId],
    ['CSV', job.csvPath],
    ['CSV SHA-256', job.csvSha256],
    ['started by', job.startedBy ?? 'unknown'],
    ['started at', job.startedAt],
    ['approved by', job.approvedBy && `${job.approvedBy}${job.approvedAt ? ` at ${job.approvedAt}` : ''}`],
    [
      'cancelled by',
      job.cancelledBy && `${job.cancelledBy}${job.cancelReason ? ` (${job.cancelReason})` : ''}`,
    ],
    ['finished at', job.finishedAt],
    [
      'duration',
      Number.isFinite(started) && Number.isFinite(finished) ? formatDuration(finished - started) : undefined,
    ],
    ['retry of', job.retryOf],
    ['retried by', job.retriedBy?.join(', ')],
    ['password', settings ? (settings.policy.password?.mode ?? 'graph') : undefined],
    ['sessions revoked', settings ? (settings.policy.revokeSessions ? 'yes' : 'no') : undefined],
    [
      'confirmed compromised',
      job.containment &&
        `${job.containment.confirmed} confirmed, ${job.containment.notConfirmed} not${job.containment.refused ? ` (${job.containment.refused})` : ''}`,
    ],
    ['window', settings ? String(settings.windowSize) : undefined],
  ];
  const rows = facts
    .filter((fact): fact is [string, string] => fact[1] !== undefined && fact[1] !== '')
    .map(([name, value]) => `<tr><th scope="row">${escapeHtml(name)}</th><td>${escapeHtml(value)}</td></tr>`)
    .join('\n');
  return `<section><h2>Audit facts</h2><table class="facts">\n${rows}\n</table></section>`;
}

const STYLE = `body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem;color:#1f2328;max-width:60rem}
h1{font-size:1.4rem;margin:0 0 .5rem}h2{font-size:1.1rem;margin:1.5rem 0 .5rem}
.verdict{padding:.6rem .9rem;border-radius:6px;font-weight:600}
.verdict.ok{background:#dafbe1}.verdict.warn{background:#fff8c5}.verdict.bad{background:#ffebe9}
table{border-collapse:collapse}th,td{text-align:left;padding:.25rem .6rem;border-bottom:1px solid #d0d7de;vertical-align:top}
td.num{text-align:right;font-variant-numeric:tabular-nums}td.bar{width:20rem}td.bar span{display:block;height:.8rem;border-radius:2px}
.swatch{display:inline-block;width:.8rem;height:.8rem;border-radius:2px;vertical-align:middle}
footer{margin-top:2rem;color:#656d76;font-size:12px}`;

/** The whole page. Every value from the report is escaped; nothing outside the page is referenced. */
export function renderHtmlReport(report: ReportJson): string {
  const { job, summary } = report;
  const counts = summary.counts;
  const causes = summary.failuresByCause ?? failuresByCause(report.outcomes);
  const { text, tone } = verdict(counts, job.cancelledBy !== undefined);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="referrer" content="no-referrer">
<title>bulk-reset job ${escapeHtml(job.jobId)}</title>
<style>${STYLE}</style>
</head>
<body>
<h1>bulk-reset job <code>${escapeHtml(job.jobId)}</code></h1>
<p class="verdict ${tone}" data-verdict="${tone}">${escapeHtml(text)}</p>
${countsSection(counts, summary.total)}
${causesSection(causes)}
${chartSection(timeline(report.outcomes, job.startedAt))}
${factsSection(report)}
<footer>Written by bulk-reset from the job's JSON report. It names no user: the rows are in the job's CSV report.</footer>
</body>
</html>
`;
}
