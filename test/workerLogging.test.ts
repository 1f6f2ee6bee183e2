/**
 * What the worker's log keeps of an error: its type, retryability, HTTP status and Graph code; never its
 * message (which names the user and quotes Graph), its stack or its details. Verbose logging keeps all.
 */
import { ApplicationFailure } from '@temporalio/common';
import { LogTimestamp, type LogLevel, type LogMetadata, type Logger } from '@temporalio/worker';
import { RedactingLogger, runtimeLogger } from '../worker/logging';

const GRAPH_REFUSAL = ApplicationFailure.create({
  message:
    'user alice@contoso.com: Graph answered 403 Authorization_RequestDenied: Insufficient privileges, request-id 1f2e3d4c',
  type: 'GraphPermanentError',
  nonRetryable: true,
  details: [
    {
      httpStatus: 403,
      graphCode: 'Authorization_RequestDenied',
      requestId: '1f2e3d4c',
      ambiguous: false,
      kind: 'permanent',
    },
  ],
});

/** A logger that keeps what it is given. */
function recorder(): Logger & { records: { level: LogLevel; message: string; meta?: LogMetadata }[] } {
  const records: { level: LogLevel; message: string; meta?: LogMetadata }[] = [];
  const log = (level: LogLevel, message: string, meta?: LogMetadata) =>
    void records.push({ level, message, meta });
  return {
    records,
    log,
    trace: (message, meta) => log('TRACE', message, meta),
    debug: (message, meta) => log('DEBUG', message, meta),
    info: (message, meta) => log('INFO', message, meta),
    warn: (message, meta) => log('WARN', message, meta),
    error: (message, meta) => log('ERROR', message, meta),
  };
}

/** What `logger` prints to stderr for one warning or debug record. */
function printed(logger: Logger, level: 'warn' | 'debug', meta: LogMetadata): string {
  let text = '';
  const spy = jest.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    text += chunk.toString();
    return true;
  });
  try {
    logger[level]('Activity failed', meta);
  } finally {
    spy.mockRestore();
  }
  return text;
}

test("an activity's Graph refusal keeps its type, status and code, and loses its message, stack and request-id", () => {
  const next = recorder();
  const timestamp = 1_700_000_000_000_000_000n;
  new RedactingLogger(next).warn('Activity failed', {
    [LogTimestamp]: timestamp,
    activityType: 'startReset',
    workflowId: 'reset-1/user-0a1b2c',
    attempt: 1,
    error: GRAPH_REFUSAL,
    durationMs: 25,
  });
  expect(next.records).toEqual([
    {
      level: 'WARN',
      message: 'Activity failed',
      meta: {
        [LogTimestamp]: timestamp,
        activityType: 'startReset',
        workflowId: 'reset-1/user-0a1b2c',
        attempt: 1,
        error: {
          type: 'GraphPermanentError',
          nonRetryable: true,
          httpStatus: 403,
          graphCode: 'Authorization_RequestDenied',
        },
        durationMs: 25,
      },
    },
  ]);
});

test('any other error, or error text, in a record is reduced to its type', () => {
  const next = recorder();
  const logger = new RedactingLogger(next);
  logger.error('Workflow failed', {
    failure: new TypeError('cannot read alice@contoso.com'),
    workflowId: 'w',
  });
  logger.warn('could not tell', { error: 'alice@contoso.com timed out' });
  logger.info('nested', { whatever: new Error('bob@contoso.com') });
  logger.info('plain');
  expect(next.records.map((record) => record.meta)).toEqual([
    { failure: { type: 'TypeError' }, workflowId: 'w' },
    { error: '(string, withheld)' },
    { whatever: { type: 'Error' } },
    undefined,
  ]);
});

test('the worker prints one line per record by default, without the error text; verbose prints it all', () => {
  const meta = { activityType: 'startReset', error: GRAPH_REFUSAL };
  const quiet = printed(runtimeLogger('INFO'), 'warn', meta);
  expect(quiet.split('\n')).toEqual([
    expect.stringMatching(/\[WARN\] Activity failed .*httpStatus: 403/),
    '',
  ]);
  expect(quiet).not.toMatch(/alice|Insufficient|1f2e3d4c/);
  expect(printed(runtimeLogger('INFO'), 'debug', meta)).toBe('');

  const verbose = printed(runtimeLogger('INFO', { verbose: true }), 'warn', meta);
  expect(verbose).toContain('user alice@contoso.com');
  expect(verbose).toMatch(/^\s+at /m);
});

test('the JSON log writes each record as one object on one line: time, level, message, job id, the ids, no error text', () => {
  const meta = {
    activityType: 'startReset',
    workflowId: 'reset-1/user-0a1b2c',
    attempt: 2,
    taskToken: 'CiQwMWEy',
    error: GRAPH_REFUSAL,
  };
  const text = printed(runtimeLogger('INFO', { format: 'json' }), 'warn', meta);
  const lines = text.split('\n');
  expect(lines).toHaveLength(2);
  expect(JSON.parse(lines[0])).toEqual({
    time: expect.stringMatching(/^\d{4}-\d\d-\d\dT[\d:.]+Z$/) as string,
    level: 'WARN',
    message: 'Activity failed',
    jobId: 'reset-1',
    activityType: 'startReset',
    workflowId: 'reset-1/user-0a1b2c',
    attempt: 2,
    error: {
      type: 'GraphPermanentError',
      nonRetryable: true,
      httpStatus: 403,
      graphCode: 'Authorization_RequestDenied',
    },
  });
  expect(text).not.toMatch(/alice|Insufficient|1f2e3d4c/);
});

test('a multi-line message is written on one line, in text and in JSON', () => {
  const written = (logger: Logger): string => {
    let text = '';
    const spy = jest.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      text += chunk.toString();
      return true;
    });
    try {
      logger.info('compiled\n  12 modules\n', { big: 10n });
    } finally {
      spy.mockRestore();
    }
    return text;
  };
  expect(written(runtimeLogger('INFO'))).toMatch(/\[INFO\] compiled \| 12 modules \{ big: 10n \}\n$/);
  const json = written(runtimeLogger('INFO', { format: 'json' }));
  expect(json.split('\n')).toHaveLength(2);
  expect(JSON.parse(json)).toMatchObject({ message: 'compiled\n  12 modules\n', big: '10' });
});
