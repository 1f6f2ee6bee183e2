/**
 * The Graph client tells an observer of every answer (call, status, Retry-After) and of every request
 * that got none; the metrics observer turns that into counters whose labels never name a user.
 */
import type { MetricMeter, MetricTags } from '@temporalio/common';
import { StaticTokenCredential } from '../graph/credentials';
import { type GraphExchange, GraphClient } from '../graph/client';
import { GRAPH_METRICS, graphMetricsObserver } from '../graph/metrics';
import { useSimulator } from './support/simulators';

const TOKEN = 'graph-metrics-test-token';

const sim = useSimulator({ token: TOKEN, retryAfterSeconds: 0.25 });

function observedClient(observer: (exchange: GraphExchange) => void): GraphClient {
  return new GraphClient({ baseUrl: sim.baseUrl, credential: new StaticTokenCredential(TOKEN), observer });
}

it('tells the observer the call, status and Retry-After of every answer, and when none came', async () => {
  const seen: GraphExchange[] = [];
  const graph = observedClient((exchange) => seen.push(exchange));

  const accepted = await graph.startPasswordReset('slow.one@contoso.test');
  await graph.getOperation(accepted.operationUrl as string);
  await expect(graph.startPasswordReset('throttled.two@contoso.test')).rejects.toThrow(/429/);
  await expect(graph.startPasswordReset('denied.three@contoso.test')).rejects.toThrow(/403/);
  await expect(graph.startPasswordReset('drop.four@contoso.test')).rejects.toThrow(/connection/);
  await graph.revokeSignInSessions('ok.five@contoso.test');

  expect(seen).toEqual([
    { call: 'resetPassword', status: 202, retryAfterMs: 250 },
    { call: 'poll', status: 200, retryAfterMs: 250 },
    { call: 'resetPassword', status: 429, retryAfterMs: 250 },
    { call: 'resetPassword', status: 403, retryAfterMs: undefined },
    { call: 'resetPassword', status: 'network' },
    { call: 'revoke', status: 200, retryAfterMs: undefined },
  ]);
  // The same answers the simulator counts (a dropped connection is "dropped" there).
  expect(sim.stats().responsesByStatus).toEqual({
    '200': 2,
    '202': 1,
    '403': 1,
    '429': 1,
    dropped: 1,
  });
});

it('answers the caller the same when the observer throws', async () => {
  const graph = observedClient(() => {
    throw new Error('metrics are broken');
  });
  const accepted = await graph.startPasswordReset('ok.six@contoso.test');
  expect(accepted.operationUrl).toBeDefined();
});

interface Recorded {
  metric: string;
  value: number;
  tags: MetricTags;
}

/** A meter that writes down what is recorded, for checking names and labels. */
function recordingMeter(recorded: Recorded[]): MetricMeter {
  const metric = (name: string) => ({
    name,
    valueType: 'float' as const,
    add: (value: number, tags: MetricTags = {}) => recorded.push({ metric: name, value, tags }),
    record: (value: number, tags: MetricTags = {}) => recorded.push({ metric: name, value, tags }),
    set: (value: number, tags: MetricTags = {}) => recorded.push({ metric: name, value, tags }),
    withTags: () => {
      throw new Error('not used');
    },
  });
  return {
    createCounter: metric,
    createHistogram: metric,
    createGauge: metric,
    withTags: () => {
      throw new Error('not used');
    },
  } as unknown as MetricMeter;
}

it('counts answers by call and status, 429s by call, and Retry-After in seconds, with no user in a label', async () => {
  const recorded: Recorded[] = [];
  const meter = recordingMeter(recorded);
  const graph = observedClient(graphMetricsObserver(() => meter));

  await expect(graph.startPasswordReset('throttled.seven@contoso.test')).rejects.toThrow(/429/);

  expect(recorded).toEqual([
    { metric: GRAPH_METRICS.responses, value: 1, tags: { call: 'resetPassword', status: '429' } },
    { metric: GRAPH_METRICS.throttled, value: 1, tags: { call: 'resetPassword' } },
    { metric: GRAPH_METRICS.retryAfter, value: 0.25, tags: { call: 'resetPassword', status: '429' } },
  ]);
  expect(JSON.stringify(recorded)).not.toContain('seven');
});
