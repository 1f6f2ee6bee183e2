/**
 * `bulk-reset schedule`: recurring bulk resets through Temporal Schedules, against the dev server, a
 * worker and the Graph simulator. Each run of a schedule is its own job.
 */
import { randomBytes } from 'node:crypto';
import { appendFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { ScheduleNotFoundError, ScheduleOverlapPolicy } from '@temporalio/client';
import { jobPaths } from '../jobs/jobFiles';
import { jobState } from '../client/jobs';
import { sampleCsv } from '../simulator/sampleUsers';
import { FAST_CLI_WAITS, type ReportJson, readJson, useStage } from './support/harness';
import { cli } from './support/harness';
import { oneScenarioCsv } from './support/users';

/** Asks until `check` answers something, or fails after `timeoutMs` saying what it waited for. */
async function eventually<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const answer = await check();
    if (answer !== undefined) return answer;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(500);
  }
}

/** `<schedule id>-<RFC 3339 time>`: how Temporal names each run, and so each job. */
const runIdPattern = (scheduleId: string) =>
  new RegExp(`^${scheduleId}-\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ$`);

describe('bulk-reset schedule', () => {
  const stage = useStage({ retryAfterSeconds: 0.2 });

  test('each run is its own job with its own report, resets each user once, and delete removes the schedule', async () => {
    const sample = oneScenarioCsv(5, 'ok');
    const users = sample.rows.map((row) => row.user);
    const csvPath = await stage.writeCsv('rotation.csv', sample.text);
    const scheduleId = `rotation-${randomBytes(3).toString('hex')}`;

    const created = await cli(
      stage,
      'schedule',
      'create',
      csvPath,
      '--id',
      scheduleId,
      '--every',
      '3s',
      '--window',
      '5',
      ...FAST_CLI_WAITS,
    );
    expect(created.stderr).toBe('');
    expect(created.code).toBe(0);
    expect(created.stdout).toContain('5 rows, 5 to reset, 0 skipped');
    expect(created.stdout).toMatch(/runs every 3s; next: \d{4}-\d\d-\d\dT/);

    const handle = stage.client.schedule.getHandle(scheduleId);
    await eventually('two scheduled runs to complete', async () => {
      const { info } = await handle.describe();
      const states = await Promise.all(
        info.recentActions.map(({ action }) => jobState(stage.client, action.workflow.workflowId)),
      );
      return states.filter(({ state }) => state === 'completed').length >= 2 ? true : undefined;
    });

    // Stop new runs, so that every run it took is known and can be waited for.
    await handle.pause('test: no more runs');
    const runs = await eventually('the pause to take effect', async () => {
      const description = await handle.describe();
      return description.state.paused
        ? description.info.recentActions.map(({ action }) => action.workflow.workflowId)
        : undefined;
    });
    expect(runs.length).toBeGreaterThanOrEqual(2);
    expect(new Set(runs).size).toBe(runs.length);
    for (const jobId of runs) expect(jobId).toMatch(runIdPattern(scheduleId));

    for (const jobId of runs) {
      const final = await eventually(`run ${jobId} to finish`, async () => {
        const current = await jobState(stage.client, jobId);
        return current.state === 'running' ? undefined : current;
      });
      expect(final.state).toBe('completed');
      if (final.state !== 'completed') continue;
      expect(final.summary.jobId).toBe(jobId);
      expect(final.summary.counts.succeeded).toBe(5);
      const reportPath = jobPaths(stage.dataDir, jobId).reportJson;
      expect(final.summary.reportJsonPath).toBe(reportPath);
      const report = await readJson<ReportJson>(reportPath);
      expect(report.job.jobId).toBe(jobId);
      expect(report.outcomes.map((outcome) => [outcome.user, outcome.status])).toEqual(
        users.map((user) => [user, 'succeeded']),
      );
    }

    // Graph saw every user reset exactly once per run: no run re-sent, none reset another run's users twice.
    for (const user of users) expect(stage.simulator.user(user)?.posts).toBe(runs.length);
    expect(stage.simulator.stats().posts).toBe(users.length * runs.length);

    const listed = await cli(stage, 'schedule', 'list');
    expect(listed.code).toBe(0);
    expect(listed.stdout).toContain(`${scheduleId}  every 3s  PAUSED`);
    expect(listed.stdout).toContain(csvPath);
    for (const jobId of runs) {
      expect(listed.stdout).toMatch(new RegExp(`${jobId}  started \\S+  completed: 5 succeeded, 0 failed`));
    }

    const deleted = await cli(stage, 'schedule', 'delete', scheduleId);
    expect(deleted.code).toBe(0);
    expect(deleted.stdout).toContain(`schedule ${scheduleId} deleted`);
    await expect(handle.describe()).rejects.toBeInstanceOf(ScheduleNotFoundError);
    await eventually('the schedule to leave the list', async () => {
      const after = await cli(stage, 'schedule', 'list');
      return after.code === 0 && !after.stdout.includes(scheduleId) ? true : undefined;
    });
    const again = await cli(stage, 'schedule', 'delete', scheduleId);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain(`no schedule named ${scheduleId}`);
  });

  test('a run whose CSV changed after the schedule was created stops before any reset and pauses the schedule', async () => {
    const sample = oneScenarioCsv(3, 'ok', 'changed.test');
    const csvPath = await stage.writeCsv('changing.csv', sample.text);
    const scheduleId = `changing-${randomBytes(3).toString('hex')}`;
    const created = await cli(stage, 'schedule', 'create', csvPath, '--id', scheduleId, '--every', '1h');
    expect(created.code).toBe(0);
    const handle = stage.client.schedule.getHandle(scheduleId);
    try {
      await appendFile(csvPath, 'ok.extra@changed.test,Extra\n');
      // As a scheduled run would: the SDK's default for a trigger (ALLOW_ALL) leaves the run untracked.
      await handle.trigger(ScheduleOverlapPolicy.SKIP);
      const jobId = await eventually('the triggered run', async () => {
        const { info } = await handle.describe();
        return info.recentActions[0]?.action.workflow.workflowId;
      });
      const final = await eventually(`run ${jobId} to end`, async () => {
        const current = await jobState(stage.client, jobId);
        return current.state === 'running' ? undefined : current;
      });
      expect(final.state).toBe('failed');
      expect(final.state === 'failed' && final.message).toContain('changed after the job was started');
      for (const row of sample.rows) expect(stage.simulator.user(row.user)).toBeUndefined();
      expect(stage.simulator.user('ok.extra@changed.test')).toBeUndefined();

      // Every later run would stop the same way: the schedule pauses instead, and says so.
      await eventually('the schedule to pause', async () =>
        (await handle.describe()).state.paused ? true : undefined,
      );
      const listed = await cli(stage, 'schedule', 'list');
      expect(listed.stdout).toContain(`${scheduleId}  every 1h  PAUSED`);
      expect(listed.stdout).toMatch(
        new RegExp(`${jobId}  started \\S+  failed: .*changed after the job was started`),
      );
    } finally {
      await handle.delete();
    }
  });

  test('a schedule needs exactly one of --every and --cron, and an id a job id can be made of', async () => {
    const csvPath = await stage.writeCsv('few.csv', sampleCsv(2, { scenario: 'ok' }).text);
    const neither = await cli(stage, 'schedule', 'create', csvPath, '--id', 'no-timing');
    expect(neither.code).toBe(2);
    expect(neither.stderr).toContain('either --every');
    const both = await cli(
      stage,
      'schedule',
      'create',
      csvPath,
      '--id',
      'two',
      '--every',
      '1h',
      '--cron',
      '0 3 * * 0',
    );
    expect(both.code).toBe(2);
    const badId = await cli(stage, 'schedule', 'create', csvPath, '--id', 'has/slash', '--every', '1h');
    expect(badId.code).toBe(2);
    expect(badId.stderr).toContain('schedule id "has/slash"');
    for (const id of ['no-timing', 'two', 'has/slash']) {
      await expect(stage.client.schedule.getHandle(id).describe()).rejects.toBeInstanceOf(
        ScheduleNotFoundError,
      );
    }
  });
});
