/** What a retry repeats of the original job, and when it refuses: pure logic, no Temporal. */
import { RetryRefusedError, retrySettings } from '../client/retry';
import { DEFAULT_RESET_POLICY, type JobSettings } from '../workflows/types';

const CSV = '/data/retries/reset-2.csv';
const original: JobSettings = {
  windowSize: 50,
  policy: { ...DEFAULT_RESET_POLICY, deadlineMs: 600_000, revokeSessions: true },
};

test('repeats the window, waits, deadline and session revocation of the original job', () => {
  expect(retrySettings('reset-1', original, {}, CSV)).toEqual(original);
});

test('takes the operator overrides on top, without dropping what they do not mention', () => {
  const settings = retrySettings(
    'reset-1',
    original,
    { windowSize: 10, policy: { deadlineMs: 1_800_000 } },
    CSV,
  );
  expect(settings).toEqual({
    windowSize: 10,
    policy: { ...original.policy, deadlineMs: 1_800_000, revokeSessions: true },
  });
});

test('keeps generated passwords generated, and the recipient they were encrypted to', () => {
  const generated: JobSettings = {
    ...original,
    policy: { ...original.policy, password: { mode: 'generated', length: 24 } },
    secretsRecipient: 'PUBLIC KEY',
  };
  expect(retrySettings('reset-1', generated, {}, CSV)).toEqual(generated);
});

test('asks for a new secrets file when the original kept its passwords in one, and uses it', () => {
  const kept: JobSettings = {
    ...original,
    policy: {
      ...original.policy,
      password: { mode: 'generated', length: 20, secretsFile: '/secure/one.csv' },
    },
  };
  expect(() => retrySettings('reset-1', kept, {}, CSV)).toThrow(RetryRefusedError);
  expect(() => retrySettings('reset-1', kept, {}, CSV)).toThrow(/\/secure\/one\.csv.*--secrets-file/);
  expect(retrySettings('reset-1', kept, { secretsFile: '/secure/two.csv' }, CSV).policy.password).toEqual({
    mode: 'generated',
    length: 20,
    secretsFile: '/secure/two.csv',
  });
});

test('a secrets file given to the retry of a Graph-generated job keeps Graph generating', () => {
  expect(retrySettings('reset-1', original, { secretsFile: '/secure/two.csv' }, CSV).policy.password).toEqual(
    {
      mode: 'graph',
      secretsFile: '/secure/two.csv',
    },
  );
});

test('refuses passwords from the CSV, and a report that does not say how the job ran, naming the rows file', () => {
  const fromCsv: JobSettings = { ...original, policy: { ...original.policy, password: { mode: 'csv' } } };
  expect(() => retrySettings('reset-1', fromCsv, {}, CSV)).toThrow(
    new RegExp(`newPassword column.*${CSV}.*--password csv`),
  );
  expect(() => retrySettings('reset-1', undefined, {}, CSV)).toThrow(
    new RegExp(`report of job reset-1 does not say how the job ran.*${CSV}`),
  );
});
