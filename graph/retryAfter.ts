const DAY = '(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)';
const MONTH = '(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)';
const TIME = '\\d{2}:\\d{2}:\\d{2}';
/** IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) and the obsolete RFC 850 form (`Sunday, 06-Nov-94 08:49:37 GMT`). */
const GMT_DATE = new RegExp(
  `^(?:${DAY}, \\d{2} ${MONTH} \\d{4}|(?:Mon|Tues|Wednes|Thurs|Fri|Satur|Sun)day, \\d{2}-${MONTH}-\\d{2}) ${TIME} GMT$`,
  'i',
);
/** asctime (`Sun Nov  6 08:49:37 1994`) carries no zone; HTTP means GMT, Date.parse would assume local time. */
const ASCTIME_DATE = new RegExp(`^${DAY} ${MONTH} [ \\d]\\d ${TIME} \\d{4}$`, 'i');

/**
 * Parses an HTTP `Retry-After` header into milliseconds.
 *
 * Graph sends integer seconds, fractional seconds (`2.128`), and HTTP allows an HTTP-date. A value we
 * cannot read is treated as absent, so the caller falls back to its configured default instead of
 * hammering the service with a zero wait.
 *
 * @param header the raw header value, or null/undefined when absent
 * @param nowMs the current time, used only for the HTTP-date form
 * @returns the wait in whole milliseconds (rounded up, never negative), or undefined when absent/unreadable
 */
export function parseRetryAfter(
  header: string | null | undefined,
  nowMs: number = Date.now(),
): number | undefined {
  if (header === null || header === undefined) return undefined;
  const value = header.trim();
  if (value === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(value)) {
    const seconds = Number(value);
    return Number.isFinite(seconds) ? Math.ceil(seconds * 1000) : undefined;
  }
  // Only the three HTTP-date forms: Date.parse alone reads almost anything ("retry 5" is a 2001 date),
  // which would turn an unreadable value into a zero wait.
  const at = GMT_DATE.test(value)
    ? Date.parse(value)
    : ASCTIME_DATE.test(value)
      ? Date.parse(`${value} GMT`)
      : NaN;
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, Math.ceil(at - nowMs));
}
