/** What a job should have ended with, and what the Graph simulator says it saw: the tests' ground truth. */
import type { GraphSimulator } from '../../simulator/graphSimulator';
import type { SampleRow } from '../../simulator/sampleUsers';
import type { JobSummary } from '../../workflows/types';
import type { ReportJson } from './harness';

/**
 * The resets Graph saw for one user, named by the user so a failed comparison says whose: POSTs, resets
 * it accepted, resets it applied (undefined: never seen).
 */
export function resetsSeen(
  simulator: Pick<GraphSimulator, 'user'>,
  user: string,
): { user: string; posts?: number; accepted?: number; applied?: number } {
  const seen = simulator.user(user);
  return { user, posts: seen?.posts, accepted: seen?.resetsAccepted, applied: seen?.resetsApplied };
}

/** The POSTs Graph saw for these users, all together. */
export function postsTo(simulator: Pick<GraphSimulator, 'user'>, users: readonly string[]): number {
  return users.reduce((sum, user) => sum + (simulator.user(user)?.posts ?? 0), 0);
}

/** A summary's counts when every one of `users` succeeded. */
export function allSucceeded(users: number): JobSummary['counts'] {
  return { succeeded: users, failed: 0, unconfirmed: 0, skipped: 0, cancelled: 0 };
}

/** A summary's counts when every sample row ended as its scenario calls for. */
export function expectedCounts(rows: readonly SampleRow[]): JobSummary['counts'] {
  const counts = { succeeded: 0, failed: 0, unconfirmed: 0, skipped: 0, cancelled: 0 };
  for (const row of rows) counts[row.expected] += 1;
  return counts;
}

/** The report holds one outcome per sample row, in row order, each with the status its scenario calls for. */
export function expectOneOutcomePerRow(report: ReportJson, rows: readonly SampleRow[]): void {
  expect(report.outcomes.map((outcome) => outcome.row)).toEqual(rows.map((row) => row.row));
  for (const [index, expected] of rows.entries()) {
    const outcome = report.outcomes[index];
    expect({ row: outcome.row, user: outcome.user, status: outcome.status }).toEqual({
      row: expected.row,
      user: expected.user,
      status: expected.expected,
    });
  }
}
