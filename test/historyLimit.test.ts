/**
 * No flags let a user's workflow history outgrow Temporal's limits: the worst case is computed from the
 * policy, and a policy past the budget is refused before anything starts.
 */
import { checkJobShape, type CsvCheck } from '../client/jobs';
import {
  DEFAULT_RESET_POLICY,
  USER_HISTORY_EVENT_BUDGET,
  historyLimitProblem,
  worstCaseUserEvents,
} from '../workflows/types';

const csv: CsvCheck = {
  path: '/x.csv',
  sha256: 'a',
  totalRows: 1,
  runnableRows: 1,
  problems: [],
  problemCount: 0,
};

test('the default policy keeps a user within the budget, sign-in hold included', () => {
  const events = worstCaseUserEvents(DEFAULT_RESET_POLICY);
  // 15 min of 1 s steps, and a 2 h sign-in hold at waits of 15 s, 30 s, then 60 s.
  expect(events).toBe(80 + 8 * (900 + 122));
  expect(events).toBeLessThanOrEqual(USER_HISTORY_EVENT_BUDGET);
  expect(historyLimitProblem(DEFAULT_RESET_POLICY)).toBeUndefined();
});

test('a long deadline with short waits is refused, naming the limit and what to change', () => {
  const policy = { ...DEFAULT_RESET_POLICY, deadlineMs: 4 * 3600_000 };
  expect(worstCaseUserEvents(policy)).toBeGreaterThan(100_000);
  expect(historyLimitProblem(policy)).toMatch(/could take \d+ history events, past the 10000 .*--deadline/);
  expect(() => checkJobShape(csv, { policy }, 'this job')).toThrow(/history events/);
  // The same deadline is fine with waits of at least 20 s.
  expect(historyLimitProblem({ ...policy, minWaitMs: 20_000 })).toBeUndefined();
});

test('a sign-in hold at short waits counts too: a long hold is refused unless it is bounded', () => {
  const shortWaits = { ...DEFAULT_RESET_POLICY, maxWaitMs: 1_000 };
  expect(historyLimitProblem(shortWaits)).toMatch(/sign-in hold of up to 120 min/);
  expect(historyLimitProblem({ ...shortWaits, maxSignInHoldMs: 5 * 60_000 })).toBeUndefined();
});
