/**
 * The pieces of `bulk-reset watch`'s live line: the bar, the rate over the last seconds, the time left.
 */
import {
  ASCII_BAR,
  RateWindow,
  UNICODE_BAR,
  type LiveProgress,
  barGlyphs,
  endLabel,
  estimateRemainingMs,
  finishedLine,
  fitToWidth,
  formatEta,
  formatLiveLine,
  renderBar,
  resetsEnded,
} from '../client/watch';
import { type JobProgress, type JobSummary, emptyCounts } from '../workflows/types';

describe('renderBar', () => {
  it('fills the bar in proportion and keeps its width', () => {
    expect(renderBar(0, 10)).toBe('░░░░░░░░░░');
    expect(renderBar(0.5, 10)).toBe('█████░░░░░');
    expect(renderBar(1, 10)).toBe('██████████');
    expect(renderBar(0.37, 20, ASCII_BAR)).toBe('#######-------------');
  });

  it('is full only when everything is done', () => {
    expect(renderBar(0.999, 10)).toBe('█████████░');
  });

  it('survives a fraction out of range or not a number', () => {
    expect(renderBar(-1, 4)).toBe('░░░░');
    expect(renderBar(3, 4)).toBe('████');
    expect(renderBar(Number.NaN, 4)).toBe('░░░░');
  });
});

describe('barGlyphs', () => {
  it('draws blocks on a UTF-8 locale or when none is set, and # and - otherwise', () => {
    expect(barGlyphs({ LANG: 'en_US.UTF-8' })).toBe(UNICODE_BAR);
    expect(barGlyphs({ LC_ALL: 'C.utf8', LANG: 'C' })).toBe(UNICODE_BAR);
    expect(barGlyphs({})).toBe(UNICODE_BAR);
    expect(barGlyphs({ LANG: 'C' })).toBe(ASCII_BAR);
    expect(barGlyphs({ LC_ALL: 'POSIX', LANG: 'en_US.UTF-8' })).toBe(ASCII_BAR);
  });
});

describe('RateWindow', () => {
  it('knows no rate until it has two samples some time apart', () => {
    const rate = new RateWindow(10_000);
    expect(rate.rowsPerSecond()).toBeUndefined();
    rate.record(1_000, 0);
    expect(rate.rowsPerSecond()).toBeUndefined();
    rate.record(1_000, 5);
    expect(rate.rowsPerSecond()).toBeUndefined();
    rate.record(2_000, 5);
    expect(rate.rowsPerSecond()).toBe(5);
  });

  it('measures over the last window only, so a slowdown shows within seconds', () => {
    const rate = new RateWindow(10_000);
    // 10 rows/s for 20 s, then nothing for 10 s.
    for (let second = 0; second <= 20; second += 1) rate.record(second * 1_000, second * 10);
    expect(rate.rowsPerSecond()).toBeCloseTo(10);
    for (let second = 21; second <= 30; second += 1) rate.record(second * 1_000, 200);
    expect(rate.rowsPerSecond()).toBe(0);
  });

  it('spans the whole window once there is enough history', () => {
    const rate = new RateWindow(10_000);
    rate.record(0, 0);
    rate.record(5_000, 50);
    rate.record(10_000, 50);
    expect(rate.rowsPerSecond()).toBe(5);
    rate.record(15_000, 100);
    // From 5 s on: 50 rows in 10 s. The sample at 0 s is older than the window needs.
    expect(rate.rowsPerSecond()).toBe(5);
    rate.record(16_000, 100);
    // The window starts at 6 s: the sample at 5 s is the one at or before its start.
    expect(rate.rowsPerSecond()).toBeCloseTo(50 / 11);
  });
});

describe('estimateRemainingMs and formatEta', () => {
  it('divides what is left by the rate', () => {
    expect(estimateRemainingMs(30, 2)).toBe(15_000);
    expect(formatEta(estimateRemainingMs(30, 2))).toBe('0:15');
  });

  it('is unknown while nothing moves, and zero when nothing is left', () => {
    expect(estimateRemainingMs(30, 0)).toBeUndefined();
    expect(estimateRemainingMs(30, undefined)).toBeUndefined();
    expect(estimateRemainingMs(0, undefined)).toBe(0);
    expect(formatEta(undefined)).toBe('--:--');
  });

  it('reads minutes and seconds, and hours from an hour up', () => {
    expect(formatEta(0)).toBe('0:00');
    expect(formatEta(61_000)).toBe('1:01');
    expect(formatEta(59_001)).toBe('1:00');
    expect(formatEta(3_600_000 + 5 * 60_000 + 9_000)).toBe('1:05:09');
  });
});

function progress(overrides: Partial<JobProgress>): JobProgress {
  return {
    jobId: 'reset-test',
    phase: 'running',
    total: 40,
    done: 0,
    inFlight: 0,
    dispatched: 0,
    counts: emptyCounts(),
    runs: 1,
    ...overrides,
  };
}

describe('formatLiveLine', () => {
  const running = progress({
    done: 20,
    inFlight: 4,
    counts: { succeeded: 15, failed: 2, unconfirmed: 1, skipped: 2, cancelled: 0 },
  });

  it('shows the bar, percent, time left, rate, users in flight and counts by outcome', () => {
    expect(formatLiveLine(running, { rowsPerSecond: 4, glyphs: ASCII_BAR, barWidth: 10 })).toBe(
      '[running] #####----- 50% 20/40 · ETA 0:05 · 4.0 rows/s · 4 in flight · ' +
        'succeeded 15 · failed 2 · unconfirmed 1 · skipped 2',
    );
  });

  it('leaves the bar out for log lines, and names cancelled rows only when there are some', () => {
    const line = formatLiveLine({ ...running, counts: { ...running.counts, cancelled: 3 } });
    expect(line).toBe(
      '[running] 50% 20/40 · ETA --:-- · -- rows/s · 4 in flight · ' +
        'succeeded 15 · failed 2 · unconfirmed 1 · skipped 2 · cancelled 3',
    );
  });

  it('gives no time left while the job is paused or waits for approval, whatever the recent rate', () => {
    expect(formatLiveLine({ ...running, phase: 'paused' }, { rowsPerSecond: 4 })).toContain('ETA --:--');
    expect(formatLiveLine({ ...running, phase: 'awaiting-approval' }, { rowsPerSecond: 4 })).toContain(
      'ETA --:--',
    );
  });

  it('says it does not know the size yet while the CSV is being checked', () => {
    const line = formatLiveLine(progress({ phase: 'preparing', total: undefined }), { glyphs: UNICODE_BAR });
    expect(line.startsWith(`[preparing] ${'░'.repeat(24)} --% 0/? · ETA --:--`)).toBe(true);
  });
});

describe('the live line on an 80-column terminal', () => {
  const big = progress({
    total: 100_000,
    done: 45_123,
    inFlight: 200,
    counts: { succeeded: 40_000, failed: 4_321, unconfirmed: 802, skipped: 0, cancelled: 0 },
  });

  /** What runWatch draws: the line made to fit, then cut if it still would not. */
  const drawn = (line: LiveProgress, columns: number) =>
    fitToWidth(formatLiveLine(line, { rowsPerSecond: 37.5, glyphs: UNICODE_BAR, columns }), columns);

  it('keeps the percent, the time left and the failed count, within the width', () => {
    const line = drawn(big, 80);
    expect(line.length).toBeLessThan(80);
    expect(line).toContain('45%');
    expect(line).toMatch(/ETA \d+:\d\d/);
    expect(line).toContain('failed 4321');
    expect(line).toContain('unconfirmed 802');
    expect(line).not.toContain('…');
  });

  it('keeps them at 60 columns too, and while the job waits for approval', () => {
    const line = drawn({ ...big, phase: 'awaiting-approval' }, 60);
    expect(line.length).toBeLessThan(60);
    expect(line).toContain('45%');
    expect(line).toContain('ETA --:--');
    expect(line).toContain('failed 4321');
  });

  it('draws the whole line, bar and all, where it fits', () => {
    const small = progress({ done: 20, counts: { ...emptyCounts(), succeeded: 20 } });
    expect(drawn(small, 200)).toBe(formatLiveLine(small, { rowsPerSecond: 37.5, glyphs: UNICODE_BAR }));
  });
});

describe('the last line of a finished job', () => {
  const summary = (counts: Partial<JobSummary['counts']>): JobSummary => ({
    jobId: 'reset-test',
    total: 40,
    counts: { ...emptyCounts(), ...counts },
    reportCsvPath: 'report.csv',
    reportJsonPath: 'report.json',
    startedAt: '2026-12-01T00:00:00.000Z',
    finishedAt: '2026-12-01T00:01:00.000Z',
  });

  it('says done only when every row succeeded or was skipped', () => {
    expect(formatLiveLine(finishedLine(summary({ succeeded: 38, skipped: 2 })))).toMatch(/^\[done\] 100% /);
  });

  it('says done with failures when users failed or are unconfirmed', () => {
    const line = formatLiveLine(finishedLine(summary({ succeeded: 10, failed: 29, unconfirmed: 1 })));
    expect(line).toMatch(/^\[done with failures\] /);
    expect(line).toContain('failed 29');
  });

  it('says cancelled when rows were cancelled', () => {
    const line = formatLiveLine(finishedLine(summary({ succeeded: 5, cancelled: 35 })));
    expect(line).toMatch(/^\[cancelled\] /);
    expect(endLabel(summary({ failed: 1, cancelled: 1 }).counts)).toBe('cancelled');
  });
});

describe('resetsEnded', () => {
  it('counts the resets that ended, not rows skipped or cancelled all at once', () => {
    expect(
      resetsEnded({ counts: { succeeded: 5, failed: 2, unconfirmed: 1, skipped: 100, cancelled: 50 } }),
    ).toBe(8);
  });
});

describe('fitToWidth', () => {
  it('cuts a line that would wrap, so it can still be redrawn in place', () => {
    expect(fitToWidth('0123456789', 8)).toBe('012345…');
    expect(fitToWidth('0123456789', 8)).toHaveLength(7);
    expect(fitToWidth('0123', 8)).toBe('0123');
  });

  it('leaves the line alone when the width is unknown', () => {
    expect(fitToWidth('0123456789', undefined)).toBe('0123456789');
    expect(fitToWidth('0123456789', 0)).toBe('0123456789');
  });
});
