/** Where a worker serves its Prometheus metrics: off unless asked, a flag over the environment. */
import { metricsAddress } from '../worker/metrics';

it('is off unless --metrics or BULK_RESET_METRICS asks for it', () => {
  expect(metricsAddress(undefined, {})).toBeUndefined();
  expect(metricsAddress(undefined, { BULK_RESET_METRICS: ' ' })).toBeUndefined();
});

it('takes host:port, a bare port on every interface, and the flag over the environment', () => {
  expect(metricsAddress(undefined, { BULK_RESET_METRICS: '127.0.0.1:9464' })).toBe('127.0.0.1:9464');
  expect(metricsAddress('9465', { BULK_RESET_METRICS: '127.0.0.1:9464' })).toBe('0.0.0.0:9465');
  expect(metricsAddress('[::1]:9464', {})).toBe('[::1]:9464');
});

it('refuses an address it cannot listen on, saying what it wants', () => {
  expect(() => metricsAddress('http://0.0.0.0:9464/metrics', {})).toThrow(/host:port.*--metrics/);
  expect(() => metricsAddress('0.0.0.0:99999', {})).toThrow(/host:port/);
});
