import { formatDuration, formatFailureCauses, formatSummary } from '../client/jobs';
import type { ReportedJobSummary } from '../jobs/report';

const summary: ReportedJobSummary = {
  jobId: 'reset-1',
  total: 12,
  counts: { succeeded: 5, failed: 6, unconfirmed: 1, skipped: 0, cancelled: 0 },
  reportCsvPath: '/data/jobs/reset-1/report.csv',
  reportJsonPath: '/data/jobs/reset-1/report.json',
  startedAt: '2026-01-01T10:00:00.000Z',
  finishedAt: '2026-01-01T10:03:07.400Z',
  failuresByCause: [
    {
      cause: 'Authorization_RequestDenied',
      kind: 'graphCode',
      count: 6,
      retryable: 0,
      whatToDo: 'the signed-in operator lacks the role',
      rows: [2, 3, 4, 5, 6],
    },
    { cause: 'no-answer', kind: 'reasonClass', count: 1, retryable: 0, whatToDo: 'check Entra', rows: [9] },
  ],
};

describe('the summary at the end of a job', () => {
  it('says how long the job took, the counts, each cause of failure with what to do, and where the report is', () => {
    expect(formatSummary(summary).split('\n')).toEqual([
      'job reset-1: 12 rows in 3:07',
      '  succeeded   5',
      '  failed      6',
      '  unconfirmed 1',
      '  skipped     0',
      '  cancelled   0',
      'failures by cause:',
      '  6 Authorization_RequestDenied: the signed-in operator lacks the role (rows 2, 3, 4, 5, 6, …)',
      '  1 no-answer: check Entra (rows 9)',
      'report: /data/jobs/reset-1/report.csv',
      '        /data/jobs/reset-1/report.json',
    ]);
  });

  it('has no cause section when nothing failed, nor for a job that ended before causes were recorded', () => {
    expect(formatFailureCauses([])).toEqual([]);
    expect(formatSummary({ ...summary, failuresByCause: undefined })).not.toContain('failures by cause');
  });

  it('counts the retryable rows of a cause', () => {
    const [, line] = formatFailureCauses([
      {
        cause: 'TooManyRequests',
        kind: 'graphCode',
        count: 3,
        retryable: 3,
        whatToDo: 'retry',
        rows: [2, 3, 4],
      },
    ]);
    expect(line).toBe('  3 TooManyRequests (3 retryable): retry (rows 2, 3, 4)');
  });

  it('writes a duration as m:ss or h:mm:ss, and none when a time is missing', () => {
    expect(formatDuration('2026-01-01T10:00:00Z', '2026-01-01T10:00:09Z')).toBe('0:09');
    expect(formatDuration('2026-01-01T10:00:00Z', '2026-01-01T12:05:03Z')).toBe('2:05:03');
    expect(formatDuration(undefined, '2026-01-01T10:00:09Z')).toBeUndefined();
    expect(formatDuration('later', '2026-01-01T10:00:09Z')).toBeUndefined();
  });
});
