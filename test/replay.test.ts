/**
 * Running workflows survive a deploy: every recorded history (test/fixtures/histories, one per kind of
 * run) replays against the current workflow code without a determinism error. When this fails, the
 * change would break jobs already running: guard it with `patched()` (README, "Changing workflow code
 * safely"), or, for code never released, re-record the fixtures with `npm run fixtures:record`.
 */
import {
  DefaultLogger,
  Runtime,
  Worker,
  bundleWorkflowCode,
  type WorkflowBundleWithSourceMap,
} from '@temporalio/worker';
import type { ReplayResult } from '@temporalio/worker/lib/replay';
import { DeterminismViolationError } from '@temporalio/workflow';
import type { temporal } from '@temporalio/proto';
import { type ResetUserInput, USER_FAILED_TYPE } from '../workflows/types';
import { workflowBundleOptions } from '../worker/bundle';
import { INHERITED_CHECK_PATCH } from '../workflows/bulkReset';
import {
  EXPECTED_KINDS,
  type FixtureEntry,
  type FixtureManifest,
  type ChangeManifest,
  fixtureDataConverter,
  loadHistory,
  readManifest,
  readChangeManifests,
} from './fixtures/historyFixtures';

// The deliberate determinism violations below are expected: log only errors.
Runtime.install({ logger: new DefaultLogger('ERROR') });

const quietLogger = { trace() {}, debug() {}, info() {}, warn() {}, error: console.error, log() {} };

let manifest: FixtureManifest;
let changes: ChangeManifest[];

beforeAll(async () => {
  manifest = await readManifest();
  changes = await readChangeManifests();
});

/** The activity types a history schedules, by name, with how often. */
async function scheduledActivities(fixture: FixtureEntry): Promise<Map<string, number>> {
  const { history } = (await loadHistory(fixture)) as { history: temporal.api.history.v1.IHistory };
  const counts = new Map<string, number>();
  for (const event of history.events ?? []) {
    const name = event.activityTaskScheduledEventAttributes?.activityType?.name;
    if (name) counts.set(name, (counts.get(name) ?? 0) + 1);
  }
  return counts;
}

async function replay(
  bundle: WorkflowBundleWithSourceMap,
  fixtures: FixtureEntry[],
): Promise<ReplayResult[]> {
  const histories = await Promise.all(fixtures.map(loadHistory));
  const results: ReplayResult[] = [];
  for await (const result of Worker.runReplayHistories(
    { workflowBundle: bundle, dataConverter: await fixtureDataConverter(), replayName: 'fixtures' },
    histories,
  )) {
    results.push(result);
  }
  return results;
}

test('the fixtures hold one history of every kind of run, each a real recording', () => {
  const kinds = manifest.fixtures.map((fixture) => fixture.kind);
  expect([...kinds].sort()).toEqual(Object.keys(EXPECTED_KINDS).sort());
  for (const fixture of manifest.fixtures) {
    expect(fixture.workflowType).toBe(fixture.kind.startsWith('job-') ? 'bulkReset' : 'resetUser');
    expect(fixture.events).toBeGreaterThan(5);
  }
});

test('every recorded job and user history replays against the current workflow code', async () => {
  // The same bundle the worker image ships, and the worker's data converter (with the fixtures' key).
  const bundle = await bundleWorkflowCode(workflowBundleOptions(quietLogger));
  const results = await replay(bundle, manifest.fixtures);

  expect(results).toHaveLength(manifest.fixtures.length);
  const failures = results
    .filter((result) => result.error)
    .map((result) => `${result.workflowId} (${result.runId}): ${result.error?.message}`);
  expect(failures).toEqual([]);
  expect(new Set(results.map((result) => result.runId))).toEqual(
    new Set(manifest.fixtures.map((fixture) => fixture.runId)),
  );
});

test('every history kept from before a change still replays against the current workflow code', async () => {
  const kept = changes.flatMap((change) => change.fixtures);
  expect(kept.length).toBeGreaterThanOrEqual(5);

  const bundle = await bundleWorkflowCode(workflowBundleOptions(quietLogger));
  const results = await replay(bundle, kept);

  expect(results.map((result) => [result.workflowId, result.error?.message])).toEqual(
    kept.map((fixture) => [fixture.workflowId, undefined]),
  );
});

test('the histories kept from before polls became local activities poll with an activity; new ones never do', async () => {
  const before = changes.find((change) => change.change === 'poll-as-local-activity');
  expect(before?.fixtures.length).toBeGreaterThanOrEqual(5);
  const oldFixtures = before?.fixtures ?? [];
  // Ground truth that these take the old path: each polled with a pollOperation activity.
  for (const fixture of oldFixtures) {
    expect([fixture.kind, (await scheduledActivities(fixture)).get('pollOperation')]).toEqual([
      fixture.kind,
      expect.any(Number),
    ]);
  }
  // ...and that the current recordings take the new one: not a single pollOperation activity.
  for (const fixture of manifest.fixtures.filter((entry) => entry.workflowType === 'resetUser')) {
    expect([fixture.kind, (await scheduledActivities(fixture)).get('pollOperation')]).toEqual([
      fixture.kind,
      undefined,
    ]);
  }
});

/** The patch ids a history's `patched()` markers recorded. */
async function patchIds(fixture: FixtureEntry): Promise<string[]> {
  const { history } = (await loadHistory(fixture)) as { history: temporal.api.history.v1.IHistory };
  return (history.events ?? []).flatMap((event) => {
    const marker = event.markerRecordedEventAttributes;
    const data =
      marker?.markerName === 'core_patch' ? marker.details?.['patch-data']?.payloads?.[0]?.data : undefined;
    return data ? [(JSON.parse(Buffer.from(data).toString('utf8')) as { id: string }).id] : [];
  });
}

test('the job run kept from before the inherited-user check never took it; a later children job does', async () => {
  const before = changes.find((change) => change.change === 'check-inherited-users');
  const old = before?.fixtures.find((fixture) => fixture.kind === 'job-continued-run');
  // The last children job recorded (batched jobs check every user in flight without the patch).
  const children = changes.find((change) => change.change === 'children-starts');
  const later = children?.fixtures.find((fixture) => fixture.kind === 'job-continued-run');
  if (!old || !later) throw new Error('a continued job run is missing from the fixtures');
  // Both are runs that inherited users in flight; only the later one recorded the patch (and so its timer).
  expect(await patchIds(old)).toEqual([]);
  expect(await patchIds(later)).toEqual([INHERITED_CHECK_PATCH]);
});

/** How many events of the history have this attribute set (e.g. startChildWorkflowExecutionInitiatedEventAttributes). */
async function eventsWith(
  fixture: FixtureEntry,
  attribute: keyof temporal.api.history.v1.IHistoryEvent,
): Promise<number> {
  const { history } = (await loadHistory(fixture)) as { history: temporal.api.history.v1.IHistory };
  return (history.events ?? []).filter((event) => event[attribute] != null).length;
}

test('jobs kept from before batched starts started children; current jobs start none, and their users report to the job by id', async () => {
  const children = changes.find((change) => change.change === 'children-starts');
  const kept = (children?.fixtures ?? []).filter((fixture) => fixture.kind === 'job-first-run');
  const current = manifest.fixtures.filter((fixture) => fixture.kind === 'job-first-run');
  expect(kept).toHaveLength(1);
  expect(current).toHaveLength(1);
  expect(await eventsWith(kept[0], 'startChildWorkflowExecutionInitiatedEventAttributes')).toBeGreaterThan(0);
  expect(await eventsWith(current[0], 'startChildWorkflowExecutionInitiatedEventAttributes')).toBe(0);
  expect(await eventsWith(current[0], 'markerRecordedEventAttributes')).toBeGreaterThan(0); // startUsers, local
  for (const fixture of (children?.fixtures ?? []).filter((entry) => entry.workflowType === 'resetUser')) {
    expect([fixture.kind, (await userInput(fixture)).reportTo]).toEqual([fixture.kind, undefined]);
  }
  for (const fixture of manifest.fixtures.filter((entry) => entry.workflowType === 'resetUser')) {
    expect([fixture.kind, (await userInput(fixture)).reportTo]).toEqual([
      fixture.kind,
      fixture.workflowId.split('/user-')[0],
    ]);
  }
});

/** A user's input as its first event recorded it, opened with the fixtures' key. */
async function userInput(fixture: FixtureEntry): Promise<ResetUserInput> {
  const { history } = (await loadHistory(fixture)) as { history: temporal.api.history.v1.IHistory };
  const payloads = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads ?? [];
  const converter = await fixtureDataConverter();
  const [opened] = await (converter.payloadCodecs ?? [])[0].decode(payloads);
  return JSON.parse(Buffer.from(opened.data ?? new Uint8Array()).toString('utf8')) as ResetUserInput;
}

test('users kept from before the follow-through change lack it; every current user has it, one continued as new', async () => {
  const before = changes.find((change) => change.change === 'follow-through');
  const oldUsers = (before?.fixtures ?? []).filter((fixture) => fixture.workflowType === 'resetUser');
  expect(oldUsers.length).toBeGreaterThanOrEqual(10);
  for (const fixture of oldUsers)
    expect([fixture.kind, (await userInput(fixture)).followThrough]).toEqual([fixture.kind, undefined]);
  const current = manifest.fixtures.filter((fixture) => fixture.workflowType === 'resetUser');
  for (const fixture of current)
    expect([fixture.kind, (await userInput(fixture)).followThrough]).toEqual([fixture.kind, true]);
  // The continued user's first run ends in continue-as-new; its last run starts from carried state.
  const first = current.find((fixture) => fixture.kind === 'user-continued-as-new') as FixtureEntry;
  const { history } = (await loadHistory(first)) as { history: temporal.api.history.v1.IHistory };
  expect(history.events?.at(-1)?.workflowExecutionContinuedAsNewEventAttributes).toBeTruthy();
  const last = current.find((fixture) => fixture.kind === 'user-continued-run') as FixtureEntry;
  expect((await userInput(last)).carried?.runs).toBeGreaterThan(1);
});

/** How a history ended (its last event), and the failure type when the workflow failed. */
async function ending(fixture: FixtureEntry): Promise<{ kind: string; event: string; failureType?: string }> {
  const { history } = (await loadHistory(fixture)) as { history: temporal.api.history.v1.IHistory };
  const last = history.events?.at(-1);
  const failureType = last?.workflowExecutionFailedEventAttributes?.failure?.applicationFailureInfo?.type;
  const event = last?.workflowExecutionCompletedEventAttributes
    ? 'WorkflowExecutionCompleted'
    : last?.workflowExecutionFailedEventAttributes
      ? 'WorkflowExecutionFailed'
      : last?.workflowExecutionContinuedAsNewEventAttributes
        ? 'WorkflowExecutionContinuedAsNew'
        : `another event (${String(last?.eventType)})`;
  return { kind: fixture.kind, event, ...(failureType ? { failureType } : {}) };
}

/** The local activity types a history ran (from its local-activity markers), and its timers. */
async function localActivitiesAndTimers(fixture: FixtureEntry): Promise<{ local: string[]; timers: number }> {
  const { history } = (await loadHistory(fixture)) as { history: temporal.api.history.v1.IHistory };
  const local: string[] = [];
  let timers = 0;
  for (const event of history.events ?? []) {
    if (event.timerStartedEventAttributes) timers++;
    const marker = event.markerRecordedEventAttributes;
    const data =
      marker?.markerName === 'core_local_activity' ? marker.details?.data?.payloads?.[0]?.data : undefined;
    if (data)
      local.push((JSON.parse(Buffer.from(data).toString('utf8')) as { activity_type: string }).activity_type);
  }
  return { local, timers };
}

test('failed users kept from before the end-state change completed; current failed users end Failed with their outcome type', async () => {
  const before = changes.find((change) => change.change === 'end-state');
  const oldFailed = (before?.fixtures ?? []).filter((fixture) => fixture.kind.startsWith('user-failed-'));
  expect(oldFailed.map((fixture) => fixture.kind).sort()).toEqual([
    'user-failed-operation',
    'user-failed-refused',
  ]);
  for (const fixture of oldFailed) {
    expect(await ending(fixture)).toEqual({
      kind: fixture.kind,
      event: 'WorkflowExecutionCompleted',
    });
    expect([fixture.kind, (await userInput(fixture)).endState]).toEqual([fixture.kind, undefined]);
  }
  const failedKinds = ['user-failed-operation', 'user-failed-refused', 'user-password-profile-refused'];
  const current = manifest.fixtures.filter((fixture) => fixture.workflowType === 'resetUser');
  for (const fixture of current) {
    expect([fixture.kind, (await userInput(fixture)).endState]).toEqual([fixture.kind, 'outcome']);
    const failed = failedKinds.includes(fixture.kind);
    expect(await ending(fixture)).toEqual(
      failed
        ? { kind: fixture.kind, event: 'WorkflowExecutionFailed', failureType: USER_FAILED_TYPE }
        : {
            kind: fixture.kind,
            event:
              fixture.kind === 'user-continued-as-new'
                ? 'WorkflowExecutionContinuedAsNew'
                : 'WorkflowExecutionCompleted',
          },
    );
  }
});

test('a password-profile user writes with one PATCH activity and never polls or waits; a resetPassword user polls', async () => {
  const profile = manifest.fixtures.find((fixture) => fixture.kind === 'user-password-profile');
  const polled = manifest.fixtures.find((fixture) => fixture.kind === 'user-succeeded');
  if (!profile || !polled)
    throw new Error('the password-profile or the succeeded user is missing from the fixtures');
  const { policy } = await userInput(profile);
  expect([policy.method, policy.forceChange, policy.password?.mode]).toEqual([
    'password-profile',
    true,
    'generated',
  ]);
  expect(Object.fromEntries(await scheduledActivities(profile))).toEqual({ setPasswordProfile: 1 });
  // Only the read of when the password last changed runs locally: no pollOperation, no timer between polls.
  expect(await localActivitiesAndTimers(profile)).toEqual({ local: ['readPasswordChange'], timers: 0 });
  // The same questions tell a resetPassword user apart: it polled the operation.
  expect((await localActivitiesAndTimers(polled)).local).toContain('pollOperation');
  expect((await scheduledActivities(polled)).get('setPasswordProfile')).toBeUndefined();
});

test('the containment job sends its batch with a confirmCompromised activity; jobs without it, kept or current, never do', async () => {
  const containment = manifest.fixtures.find((fixture) => fixture.kind === 'job-containment');
  if (!containment) throw new Error('the containment job is missing from the fixtures');
  expect((await scheduledActivities(containment)).get('confirmCompromised')).toBe(1);
  const before = changes.find((change) => change.change === 'end-state');
  const otherJobs = [...(before?.fixtures ?? []), ...manifest.fixtures].filter(
    (fixture) => fixture.workflowType === 'bulkReset' && fixture !== containment,
  );
  expect(otherJobs.length).toBeGreaterThanOrEqual(10);
  for (const fixture of otherJobs)
    expect([fixture.file, (await scheduledActivities(fixture)).get('confirmCompromised')]).toEqual([
      fixture.file,
      undefined,
    ]);
});

test('a change that would break running workflows is caught as a determinism violation', async () => {
  const bundle = await bundleWorkflowCode({
    ...workflowBundleOptions(quietLogger),
    workflowsPath: require.resolve('./fixtures/incompatibleWorkflows'),
  });
  const sample = manifest.fixtures.filter((fixture) =>
    (['job-first-run', 'user-succeeded'] as string[]).includes(fixture.kind),
  );
  expect(sample).toHaveLength(2);

  const results = await replay(bundle, sample);

  expect(results).toHaveLength(2);
  for (const result of results) expect(result.error).toBeInstanceOf(DeterminismViolationError);
});
