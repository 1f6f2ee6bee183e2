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
export function parseRetryAfter(header: string | null | undefined, nowMs: number = Date.now()): number | undefined {
  if (header === null || header === undefined) return undefined;
  const value = header.trim();
  if (value === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(value)) {
    const seconds = Number(value);
    return Number.isFinite(seconds) ? Math.ceil(seconds * 1000) : undefined;
  }
  // HTTP-date (IMF-fixdate, or the obsolete RFC 850 / asctime forms that Date.parse also reads).
  if (/[a-z]/i.test(value)) {
    const at = Date.parse(value);
    if (Number.isNaN(at)) return undefined;
    return Math.max(0, Math.ceil(at - nowMs));
  }
  return undefined;
}
