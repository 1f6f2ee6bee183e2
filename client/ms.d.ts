/**
 * The part of `ms` (3.x, the version @temporalio/common uses) that client/durations.ts calls. Its own
 * typings are out of reach under `moduleResolution: nodenext`: its exports map names no types.
 */
declare module 'ms' {
  /** Milliseconds in a duration like `2s` or `15 minutes`; NaN when the text is not one. */
  function ms(value: string): number;
  /** A duration written short: `900000` is `15m`. */
  function ms(value: number): string;
  export default ms;
}
