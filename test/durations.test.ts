/**
 * Durations an operator types (`--deadline`, `--min-wait`, `--every`, ...), read by one parser.
 */
import { formatDuration, parseDuration } from '../client/durations';

test.each([
  ['1500', 1_500],
  ['500ms', 500],
  ['2s', 2_000],
  ['1.5s', 1_500],
  ['15m', 900_000],
  ['1h', 3_600_000],
  ['2d', 172_800_000],
  ['15 minutes', 900_000],
  ['2 Hours', 7_200_000],
  [' 30s ', 30_000],
  ['1.0004ms', 1],
])('"%s" is %d ms', (text, milliseconds) => {
  expect(parseDuration(text)).toBe(milliseconds);
});

test.each(['15x', 'soon', '', '   ', '1 h 30 m', 'x'.repeat(101)])(
  '"%s" is refused, with examples of a duration',
  (text) => {
    expect(() => parseDuration(text)).toThrow(`"${text}" is not a duration (examples: 500ms, 2s, 15m, 1h`);
  },
);

test.each(['-1s', '-5', '0', '0s', '0.4ms'])('a duration under 1ms, "%s", is refused', (text) => {
  expect(() => parseDuration(text)).toThrow(`"${text}" is not a duration of 1ms or more`);
});

test('a duration is written back the short way, as help shows defaults', () => {
  expect(formatDuration(900_000)).toBe('15m');
  expect(formatDuration(24 * 3_600_000)).toBe('1d');
  expect(parseDuration(formatDuration(7_200_000))).toBe(7_200_000);
});
