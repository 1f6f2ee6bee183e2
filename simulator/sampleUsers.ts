/**
 * A sample user list for the simulator: every scenario, plus the mistakes a stressed operator makes
 * (duplicates in another case, malformed names, blank lines). The demo, the tests and the benchmarks
 * share it, and each row says what its outcome must be, so tests can check the report row by row.
 */
import type { OutcomeStatus } from '../workflows/types';
import type { ScenarioName } from './graphSimulator';

/** The outcome each scenario must end in. */
export const EXPECTED_STATUS: Record<ScenarioName, OutcomeStatus> = {
  ok: 'succeeded',
  slow: 'succeeded',
  throttled: 'succeeded',
  flaky: 'succeeded',
  drop: 'succeeded',
  // Graph took the first POST; the check of lastPasswordChangeDateTime confirms it without a resend.
  dropafter: 'succeeded',
  noretry: 'succeeded',
  pollthrottle: 'succeeded',
  opfail: 'failed',
  badpw: 'failed',
  denied: 'failed',
  missing: 'failed',
  nolocation: 'unconfirmed',
  unknown: 'unconfirmed',
  disabled: 'succeeded',
  synced: 'succeeded',
  admin: 'succeeded',
  // An accepted reset is followed to its end: a 404 or an unknown status on a fresh operation is polled
  // again (with the default count of one poll; `pollmissingall` ends unconfirmed at the deadline).
  pollmissing: 'succeeded',
  pollmissingnoretry: 'succeeded',
  pollunknown: 'succeeded',
  pollunknownfail: 'failed',
  httpdate: 'succeeded',
  nocreated: 'succeeded',
  baddates: 'succeeded',
};

/** resetPassword POSTs each scenario takes: one, but for the 429s, 503s and the dropped connection. */
export const EXPECTED_POSTS: Record<ScenarioName, number> = {
  ok: 1,
  slow: 1,
  throttled: 3,
  flaky: 3,
  drop: 2,
  dropafter: 1,
  noretry: 1,
  pollthrottle: 1,
  opfail: 1,
  badpw: 1,
  denied: 1,
  missing: 1,
  nolocation: 1,
  unknown: 1,
  disabled: 1,
  synced: 1,
  admin: 1,
  pollmissing: 1,
  pollmissingnoretry: 1,
  pollunknown: 1,
  pollunknownfail: 1,
  httpdate: 2,
  nocreated: 1,
  baddates: 1,
};

/** Mostly healthy users, as in a real tenant, with every trouble Graph can give sprinkled in. */
const MIX: readonly ScenarioName[] = [
  'ok', 'slow', 'ok', 'throttled', 'ok', 'slow', 'flaky', 'ok', 'opfail', 'ok',
  'drop', 'slow', 'badpw', 'ok', 'denied', 'missing', 'noretry', 'ok', 'nolocation', 'slow',
  'pollunknown', 'pollmissing', 'pollthrottle', 'ok',
]; // prettier-ignore

/** Malformed values, each with a word its skip reason must contain. */
const INVALID: readonly { value: string; reasonMentions: string }[] = [
  { value: 'no-at-sign.contoso.test', reasonMentions: "no '@'" },
  { value: '=HYPERLINK("http://x")', reasonMentions: 'starts with' },
  { value: 'two@@contoso.test', reasonMentions: "more than one '@'" },
  { value: 'user@localhost', reasonMentions: "has no '.'" },
];

export interface SampleRow {
  /** The row number the report uses: the file's line. */
  row: number;
  user: string;
  /** Absent for invalid and duplicate rows. */
  scenario?: ScenarioName;
  expected: OutcomeStatus;
  /** For skipped rows: a phrase the reason must contain. */
  reasonMentions?: string;
}

export interface SampleCsv {
  text: string;
  rows: SampleRow[];
}

export interface SampleOptions {
  domain?: string;
  /** Add a duplicate (another case of an earlier user) after every this many users; 0 for none. */
  duplicateEvery?: number;
  /** Add an invalid row after every this many users; 0 for none. */
  invalidEvery?: number;
  /** Only this scenario, instead of the mix. */
  scenario?: ScenarioName;
}

/** A CSV of `users` distinct users (plus duplicates, invalid rows and a blank line). */
export function sampleCsv(users: number, options: SampleOptions = {}): SampleCsv {
  const domain = options.domain ?? 'contoso.test';
  const duplicateEvery = options.duplicateEvery ?? 40;
  const invalidEvery = options.invalidEvery ?? 60;
  const lines = ['userPrincipalName,displayName'];
  const rows: SampleRow[] = [];
  const add = (row: Omit<SampleRow, 'row'>, name: string): void => {
    lines.push(`${row.user},${name}`);
    rows.push({ row: lines.length, ...row });
  };
  for (let index = 0; index < users; index += 1) {
    const scenario = options.scenario ?? MIX[index % MIX.length];
    const number = String(index + 1).padStart(6, '0');
    add(
      { user: `${scenario}.u${number}@${domain}`, scenario, expected: EXPECTED_STATUS[scenario] },
      `User ${number}`,
    );
    if (duplicateEvery > 0 && (index + 1) % duplicateEvery === 0) {
      const earlier =
        rows.find((row) => row.scenario !== undefined && row.user.startsWith(`${MIX[0]}.`)) ?? rows[0];
      add(
        {
          user: earlier.user.toUpperCase(),
          expected: 'skipped',
          reasonMentions: `duplicate of row ${earlier.row}`,
        },
        'Again',
      );
    }
    if (invalidEvery > 0 && (index + 1) % invalidEvery === 0) {
      const invalid = INVALID[Math.floor(index / invalidEvery) % INVALID.length];
      add({ user: invalid.value, expected: 'skipped', reasonMentions: invalid.reasonMentions }, 'Mistake');
    }
    if (index === Math.floor(users / 2)) lines.push('');
  }
  return { text: `${lines.map(quoteIfNeeded).join('\n')}\n`, rows };
}

function quoteIfNeeded(line: string): string {
  const [user, ...rest] = line.split(',');
  return user.includes('"') ? [`"${user.replace(/"/g, '""')}"`, ...rest].join(',') : line;
}
