/**
 * The HTML summary's pure parts: the timeline it charts, the verdict that keeps a cancelled or failing
 * job from looking clean, and escaping, so a value in the report can never become markup.
 */
import { escapeHtml, renderHtmlReport, timeline, verdict } from '../jobs/htmlReport';
import type { ReportJson, ReportRow } from '../jobs/report';
import { emptyCounts } from '../workflows/types';

const T0 = Date.parse('2026-12-01T10:00:00Z');
const at = (seconds: number) => new Date(T0 + seconds * 1000).toISOString();

function row(n: number, status: ReportRow['status'], finishedSecond?: number, startAttempts = 1): ReportRow {
  return {
    row: n,
    user: `user${n}@contoso.test`,
    status,
    polls: 1,
    startAttempts,
    ...(finishedSecond !== undefined && {
      startedAt: at(finishedSecond - 1),
      finishedAt: at(finishedSecond),
    }),
  };
}

test('the timeline counts each started row once, in the slice it ended, with the requests turned away', () => {
  const rows = [row(2, 'succeeded', 1), row(3, 'succeeded', 2, 3), row(4, 'failed', 30), row(5, 'skipped')];
  const buckets = timeline(rows, at(0));
  expect(buckets.reduce((sum, bucket) => sum + bucket.finished, 0)).toBe(3);
  expect(buckets.reduce((sum, bucket) => sum + bucket.turnedAway, 0)).toBe(2);
  expect(buckets[buckets.length - 1].finishedSoFar).toBe(3);
  expect(buckets.length).toBeLessThanOrEqual(61);
  // Cumulative and never decreasing.
  for (let index = 1; index < buckets.length; index += 1)
    expect(buckets[index].finishedSoFar).toBeGreaterThanOrEqual(buckets[index - 1].finishedSoFar);
  expect(timeline([row(5, 'skipped')])).toEqual([]);
});

test('a cancelled or mostly failed job never gets the verdict of a clean one', () => {
  const counts = { ...emptyCounts(), succeeded: 10 };
  expect(verdict(counts, false).tone).toBe('ok');
  expect(verdict({ ...counts, unconfirmed: 1 }, false).tone).toBe('warn');
  expect(verdict({ ...counts, failed: 10 }, false)).toEqual({
    text: 'mostly failed: 10 of 20 rows failed',
    tone: 'bad',
  });
  expect(verdict({ ...counts, cancelled: 5 }, true).tone).toBe('bad');
});

test('every value from the report is escaped, and the page names no user and loads nothing', () => {
  expect(escapeHtml(`<img src=x onerror="alert(1)">&'`)).toBe(
    '&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&amp;&#39;',
  );
  const report: ReportJson = {
    job: {
      jobId: 'reset-x',
      csvPath: '/data/<script>alert(1)</script>.csv',
      csvSha256: 'ab'.repeat(32),
      startedBy: 'ops"><script>alert(2)</script>',
      finishedAt: at(40),
      startedAt: at(0),
    },
    summary: { total: 3, counts: { ...emptyCounts(), succeeded: 2, failed: 1 } },
    outcomes: [
      row(2, 'succeeded', 1),
      row(3, 'succeeded', 2),
      { ...row(4, 'failed', 30), graphCode: '<b>Code</b>', reason: 'refused' },
    ],
  };
  const page = renderHtmlReport(report);
  expect(page).not.toMatch(/<script|<img|<link|<iframe|src=|href=/i);
  expect(page).toContain("default-src 'none'");
  for (const outcome of report.outcomes) expect(page).not.toContain(outcome.user);
  expect(page).toContain('&lt;b&gt;Code&lt;/b&gt;');
});
