import {
  ALL_ADVICE,
  GraphError,
  adviceFor,
  kindForStatus,
  parseGraphErrorBody,
  reportHintFor,
} from '../graph/errors';

describe('kindForStatus', () => {
  it.each([400, 403, 404])('ends the reset at once on %i (permanent)', (status) => {
    expect(kindForStatus(status)).toBe('permanent');
  });

  it('classifies 401 as an operator sign-in problem, not a user failure', () => {
    expect(kindForStatus(401)).toBe('auth');
  });

  it.each([408, 429, 500, 502, 503, 504])('tries again later on %i (transient)', (status) => {
    expect(kindForStatus(status)).toBe('transient');
  });

  it.each([405, 409, 412, 413, 501])('does not retry other client or server errors such as %i', (status) => {
    expect(kindForStatus(status)).toBe('permanent');
  });
});

describe('parseGraphErrorBody', () => {
  it("keeps Graph's code, message and innerError request-id", () => {
    const body = JSON.stringify({
      error: {
        code: 'Authorization_RequestDenied',
        message: 'Insufficient privileges to complete the operation.',
        innerError: {
          date: '2024-06-11T10:00:00',
          'request-id': '1f2e3d4c-0000-4000-8000-000000000001',
          'client-request-id': '1f2e3d4c-0000-4000-8000-000000000002',
        },
      },
    });
    expect(parseGraphErrorBody(body)).toEqual({
      code: 'Authorization_RequestDenied',
      message: 'Insufficient privileges to complete the operation.',
      requestId: '1f2e3d4c-0000-4000-8000-000000000001',
    });
  });

  it('also reads the request-id from a lowercase innererror', () => {
    const body = JSON.stringify({
      error: { code: 'TooManyRequests', message: 'slow down', innererror: { 'request-id': 'abc-123' } },
    });
    expect(parseGraphErrorBody(body)).toEqual({
      code: 'TooManyRequests',
      message: 'slow down',
      requestId: 'abc-123',
    });
  });

  it('prefers innerError when a body carries both spellings', () => {
    const body = JSON.stringify({
      error: { code: 'x', innerError: { 'request-id': 'camel' }, innererror: { 'request-id': 'lower' } },
    });
    expect(parseGraphErrorBody(body).requestId).toBe('camel');
  });

  it('keeps what is there when the body has no innerError', () => {
    const body = JSON.stringify({ error: { code: 'Request_ResourceNotFound', message: 'gone' } });
    expect(parseGraphErrorBody(body)).toEqual({
      code: 'Request_ResourceNotFound',
      message: 'gone',
      requestId: undefined,
    });
  });

  it('drops fields of the wrong type instead of passing them on', () => {
    const body = JSON.stringify({ error: { code: 42, message: ['m'], innerError: { 'request-id': 7 } } });
    expect(parseGraphErrorBody(body)).toEqual({ code: undefined, message: undefined, requestId: undefined });
  });

  it.each([
    ['malformed JSON', '{"error": {"code": "x"'],
    ['an HTML error page', '<html><body>502 Bad Gateway</body></html>'],
    ['an empty body', ''],
    ['JSON null', 'null'],
    ['a JSON string', '"error"'],
    ['a JSON number', '503'],
    ['a JSON array', '[{"error": {"code": "x"}}]'],
    ['an object without error', '{"code": "x", "message": "y"}'],
    ['an error that is a string', '{"error": "invalid_grant"}'],
    ['an error that is an array', '{"error": [{"code": "x"}]}'],
  ])('answers an empty body for %s', (_what, text) => {
    expect(parseGraphErrorBody(text)).toEqual({});
  });
});

describe('adviceFor', () => {
  it('tells the operator what to do for each permanent status', () => {
    expect(adviceFor(403, 'Authorization_RequestDenied')).toMatch(/lacks the role/);
    expect(adviceFor(404, 'Request_ResourceNotFound')).toMatch(/check the userPrincipalName or id/);
    expect(adviceFor(400, 'invalidRequest')).toMatch(/stronger password/);
  });

  it('sends the operator to sign in again on 401', () => {
    expect(adviceFor(401, 'InvalidAuthenticationToken')).toContain('bulk-reset login');
  });

  it('says a timeout was a timeout', () => {
    expect(adviceFor(undefined, 'Timeout')).toBe('Graph did not answer in time');
  });

  it('promises a retry for throttling, server trouble and network errors', () => {
    for (const [status, code] of [
      [429, 'TooManyRequests'],
      [503, 'serviceNotAvailable'],
      [undefined, 'NetworkError'],
    ] as const) {
      expect(adviceFor(status, code)).toMatch(/will be retried/);
    }
  });

  it('gives different advice for different permanent failures', () => {
    const advice = new Set([400, 401, 403, 404].map((status) => adviceFor(status, 'x')));
    expect(advice.size).toBe(4);
  });

  it('fits a password-policy refusal to where the password came from, never telling a graph-mode job to let Graph generate one', () => {
    const graph = adviceFor(400, 'PasswordPolicyViolation', 'graph');
    const generated = adviceFor(400, 'PasswordPolicyViolation', 'generated');
    const csv = adviceFor(400, 'PasswordPolicyViolation', 'csv');
    expect(graph).not.toMatch(/let Graph generate/);
    expect(graph).toContain('--password generated');
    expect(generated).toContain('--password-length');
    expect(csv).toContain('newPassword column');
    expect(new Set([graph, generated, csv]).size).toBe(3);
    // Other statuses do not depend on the mode.
    expect(adviceFor(403, 'x', 'csv')).toBe(adviceFor(403, 'x'));
  });

  it('lists every hint it gives, in every mode, for the report to take off recorded reasons', () => {
    for (const mode of ['graph', 'generated', 'csv', undefined] as const)
      for (const status of [400, 401, 403, 404, 429, undefined])
        expect(ALL_ADVICE).toContain(adviceFor(status, 'TooManyRequests', mode));
    expect(ALL_ADVICE).toContain(adviceFor(undefined, 'Timeout'));
    expect(ALL_ADVICE).toContain(adviceFor(undefined, 'AppOnlyResetRefused'));
  });
});

describe('reportHintFor', () => {
  const refused = {
    status: 'failed',
    httpStatus: 400,
    graphCode: 'PasswordPolicyViolation',
    retryable: false,
  };

  it("gives a refusal adviceFor's hint in the job's password mode", () => {
    expect(reportHintFor(refused, 'generated')).toBe(adviceFor(400, 'PasswordPolicyViolation', 'generated'));
  });

  it('sends passing trouble to `bulk-reset retry` instead of promising a retry that the ended job will not make', () => {
    const throttled = { status: 'failed', httpStatus: 429, graphCode: 'TooManyRequests', retryable: true };
    expect(reportHintFor(throttled, 'graph')).toContain('bulk-reset retry');
    expect(reportHintFor(throttled, 'graph')).not.toMatch(/will be retried/);
  });

  it('tells an operation that failed in Graph apart from passing trouble', () => {
    const hint = reportHintFor({ status: 'failed', graphCode: 'failed', retryable: false }, 'graph');
    expect(hint).toContain('operation failed');
    expect(hint).not.toMatch(/will be retried/);
  });

  it('gives no hint to rows that did not fail, nor to failures Graph did not decide (their reason says what to do)', () => {
    expect(reportHintFor({ status: 'succeeded' }, 'graph')).toBeUndefined();
    expect(reportHintFor({ status: 'skipped', httpStatus: 400 }, 'graph')).toBeUndefined();
    expect(reportHintFor({ status: 'failed', retryable: false }, 'graph')).toBeUndefined();
  });
});

describe('GraphError', () => {
  it('keeps status, code, request-id, Retry-After and cause for the outcome', () => {
    const cause = new Error('socket hang up');
    const error = new GraphError('Graph answered 429 TooManyRequests', {
      kind: 'transient',
      status: 429,
      code: 'TooManyRequests',
      requestId: 'r-1',
      retryAfterMs: 2128,
      cause,
    });
    expect(error).toBeInstanceOf(Error);
    expect(error).toMatchObject({
      name: 'GraphError',
      message: 'Graph answered 429 TooManyRequests',
      kind: 'transient',
      status: 429,
      code: 'TooManyRequests',
      requestId: 'r-1',
      retryAfterMs: 2128,
    });
    expect(error.cause).toBe(cause);
  });

  it('is not ambiguous unless told so', () => {
    expect(new GraphError('m', { kind: 'permanent', code: 'x' }).ambiguous).toBe(false);
    expect(new GraphError('m', { kind: 'transient', code: 'Timeout', ambiguous: true }).ambiguous).toBe(true);
  });
});
