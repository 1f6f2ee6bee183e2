/**
 * Durations an operator types, read one way everywhere: by `ms`, the parser Temporal's own SDK uses for
 * its duration strings. `1500` is milliseconds; `500ms`, `2s`, `1.5s`, `15m`, `1h`, `2d`, and spelt out
 * (`15 minutes`, `2 hours`), in any case.
 */
import ms from 'ms';

const EXAMPLES = 'examples: 500ms, 2s, 15m, 1h, "15 minutes"';

/**
 * Whole milliseconds, at least 1 (no wait, deadline or interval here means anything at zero or below);
 * throws naming the text and what a duration looks like.
 */
export function parseDuration(text: string): number {
  const trimmed = text.trim();
  // ms throws on an empty string or one over 100 characters, and answers NaN for anything else it cannot read.
  const value = trimmed === '' || trimmed.length > 100 ? Number.NaN : ms(trimmed);
  if (!Number.isFinite(value)) throw new Error(`"${text}" is not a duration (${EXAMPLES})`);
  const milliseconds = Math.round(value);
  if (milliseconds < 1) throw new Error(`"${text}" is not a duration of 1ms or more`);
  return milliseconds;
}

/** A duration as an operator would write it: `900000` is `15m`. */
export function formatDuration(milliseconds: number): string {
  return ms(milliseconds);
}
