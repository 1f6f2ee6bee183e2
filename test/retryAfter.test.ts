import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

import { parseRetryAfter } from '../graph/retryAfter';

/** A fixed "now" so the HTTP-date cases do not depend on the clock: Sun, 06 Nov 1994 08:49:37 GMT. */
const NOW = Date.UTC(1994, 10, 6, 8, 49, 37);

describe('parseRetryAfter: seconds', () => {
  it('turns integer seconds into milliseconds', () => {
    expect(parseRetryAfter('0')).toBe(0);
    expect(parseRetryAfter('1')).toBe(1000);
    expect(parseRetryAfter('120')).toBe(120_000);
  });

  it("keeps Graph's fractional seconds to the millisecond", () => {
    expect(parseRetryAfter('2.128')).toBe(2128);
    expect(parseRetryAfter('0.5')).toBe(500);
    expect(parseRetryAfter('0.001')).toBe(1);
  });

  it('rounds a sub-millisecond remainder up, never down to a shorter wait', () => {
    expect(parseRetryAfter('0.0001')).toBe(1);
    expect(parseRetryAfter('1.0005')).toBe(1001);
  });

  it('ignores whitespace around the value', () => {
    expect(parseRetryAfter('  3 ')).toBe(3000);
    expect(parseRetryAfter('\t1.5\n')).toBe(1500);
  });

  it('does not depend on the clock for the seconds form', () => {
    expect(parseRetryAfter('7', 0)).toBe(7000);
    expect(parseRetryAfter('7', NOW)).toBe(7000);
  });

  it('passes a huge but finite number of seconds through unchanged (callers clamp it)', () => {
    expect(parseRetryAfter('86400')).toBe(86_400_000);
    expect(parseRetryAfter('99999999999')).toBe(99_999_999_999_000);
  });

  it('treats a number too large to represent as unreadable', () => {
    expect(parseRetryAfter('9'.repeat(400))).toBeUndefined();
  });
});

describe('parseRetryAfter: HTTP-date', () => {
  it('waits until a future IMF-fixdate', () => {
    expect(parseRetryAfter('Sun, 06 Nov 1994 08:50:07 GMT', NOW)).toBe(30_000);
    expect(parseRetryAfter('Mon, 07 Nov 1994 08:49:37 GMT', NOW)).toBe(24 * 60 * 60 * 1000);
  });

  it('measures the date from the "now" it is given, to the millisecond', () => {
    expect(parseRetryAfter('Sun, 06 Nov 1994 08:50:07 GMT', NOW + 250)).toBe(29_750);
  });

  it('reads the obsolete RFC 850 form', () => {
    expect(parseRetryAfter('Sunday, 06-Nov-94 08:49:47 GMT', NOW)).toBe(10_000);
  });

  it('reads the asctime form as GMT, whatever the local time zone', () => {
    // Jest's process.env is a copy, so the zone is only honoured by a fresh Node process.
    const compiledModule = join(__dirname, '..', 'graph', 'retryAfter.js');
    const script = `process.stdout.write(String(require(${JSON.stringify(compiledModule)}).parseRetryAfter('Sun Nov  6 08:49:57 1994', ${NOW})))`;
    for (const zone of ['UTC', 'America/New_York', 'Asia/Kolkata']) {
      const output = execFileSync(process.execPath, ['-e', script], { env: { ...process.env, TZ: zone } });
      expect({ zone, waitMs: output.toString() }).toEqual({ zone, waitMs: '20000' });
    }
  });

  it('answers 0, not a negative wait, for a date already past', () => {
    expect(parseRetryAfter('Sun, 06 Nov 1994 08:49:36 GMT', NOW)).toBe(0);
    expect(parseRetryAfter('Sat, 01 Jan 1994 00:00:00 GMT', NOW)).toBe(0);
    expect(parseRetryAfter('Sun, 06 Nov 1994 08:49:37 GMT', NOW)).toBe(0);
  });

  it('uses the real clock when no "now" is given', () => {
    const inOneHour = new Date(Date.now() + 60 * 60 * 1000).toUTCString();
    const waitMs = parseRetryAfter(inOneHour);
    expect(waitMs).toBeGreaterThan(59 * 60 * 1000);
    expect(waitMs).toBeLessThanOrEqual(60 * 60 * 1000);
  });

  it('treats a date-shaped value with impossible fields as unreadable', () => {
    expect(parseRetryAfter('Sun, 45 Nov 1994 08:49:37 GMT', NOW)).toBeUndefined();
    expect(parseRetryAfter('Sun, 06 Nov 1994 99:49:37 GMT', NOW)).toBeUndefined();
  });
});

describe('parseRetryAfter: absent or unreadable', () => {
  it('answers undefined when the header is absent or empty', () => {
    expect(parseRetryAfter(null)).toBeUndefined();
    expect(parseRetryAfter(undefined)).toBeUndefined();
    expect(parseRetryAfter('')).toBeUndefined();
    expect(parseRetryAfter('   ')).toBeUndefined();
  });

  it('treats negative and signed numbers as unreadable rather than as no wait', () => {
    expect(parseRetryAfter('-1')).toBeUndefined();
    expect(parseRetryAfter('-0.5')).toBeUndefined();
    expect(parseRetryAfter('+5')).toBeUndefined();
  });

  it('treats malformed numbers as unreadable', () => {
    for (const value of ['1e3', '0x10', '.5', '5.', '1,5', '1.2.3', '12abc', 'Infinity', 'NaN', '5 s']) {
      expect({ value, waitMs: parseRetryAfter(value, NOW) }).toEqual({ value, waitMs: undefined });
    }
  });

  it('treats words as unreadable, even those a lenient date parser would turn into a past date', () => {
    // Date.parse reads 'retry 5' as 2001-05-01: accepting it would mean retrying with no wait at all.
    for (const value of ['soon', 'retry 5', 'later 2', 'in 2015', 'May 5', 'tomorrow', '2030-01-01']) {
      expect({ value, waitMs: parseRetryAfter(value, NOW) }).toEqual({ value, waitMs: undefined });
    }
  });
});
