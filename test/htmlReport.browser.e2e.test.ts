/**
 * `report --format html` opened in a real headless Chromium: the page shows the same figures as the JSON
 * report (counts, failures by cause, requests turned away), requests nothing beyond itself, runs no
 * script, and names no user.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Browser } from 'playwright-core';
import { checkCsv, startJob, waitForJob } from '../client/jobs';
import { OUTCOME_STATUSES } from '../workflows/types';
import type { ReportJson } from '../jobs/report';
import { launchChromium, screenshot } from './support/browser';
import { FAST_POLICY, cli, openStage, readJson, type Stage } from './support/harness';

let stage: Stage;
let browser: Browser;

beforeAll(async () => {
  stage = await openStage({ retryAfterSeconds: 0.2 });
  await stage.startWorker();
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await stage?.close();
});

const USERS = [
  'ok.1@html.test',
  'throttled.1@html.test',
  'denied.1@html.test',
  'denied.2@html.test',
  'missing.1@html.test',
  'flaky.1@html.test',
  'ok.2@html.test',
  'nolocation.1@html.test',
];

test('the HTML summary shows the report’s figures in a browser, loads nothing and names no user', async () => {
  const csv = await checkCsv(
    await stage.writeCsv('html.csv', `userPrincipalName\n${USERS.join('\n')}\nnot-an-upn\n`),
  );
  const jobId = await startJob(stage.client, stage.settings.taskQueue, csv, { policy: FAST_POLICY });
  const final = await waitForJob(stage.client, jobId, () => undefined, 200);
  if (final.state !== 'completed') throw new Error(`job ${jobId} did not complete: ${JSON.stringify(final)}`);
  const report = await readJson<ReportJson>(final.summary.reportJsonPath);

  const out = join(stage.dataDir, 'summary.html');
  const written = await cli(stage, 'report', jobId, '--format', 'html', '--out', out);
  expect(written.code).toBe(0);
  const html = await readFile(out, 'utf8');
  for (const user of USERS) expect(html).not.toContain(user);

  const page = await browser.newPage();
  const requested: string[] = [];
  page.on('request', (request) => requested.push(request.url()));
  try {
    await page.goto(pathToFileURL(out).href);
    await screenshot(page, 'html-report.png');
    expect(requested).toEqual([pathToFileURL(out).href]);
    expect(await page.locator('script').count()).toBe(0);

    // Counts: each status's figure as the browser shows it equals the JSON report's.
    for (const status of OUTCOME_STATUSES) {
      const shown = await page.locator(`tr[data-status="${status}"] td.num`).innerText();
      expect([status, Number(shown)]).toEqual([status, report.summary.counts[status]]);
    }
    expect(report.summary.counts.failed).toBeGreaterThan(0);
    await expect(page.locator('[data-verdict]').getAttribute('data-verdict')).resolves.not.toBe('ok');

    // Failures by cause: the same causes and counts as the report, each with what to do.
    const causes = report.summary.failuresByCause ?? [];
    expect(causes.length).toBeGreaterThan(0);
    for (const cause of causes) {
      const cells = await page.locator(`tr[data-cause="${cause.cause}"] td`).allInnerTexts();
      expect(cells[1]).toBe(String(cause.count));
      expect(cells[3]).toBe(cause.whatToDo);
    }
    expect(await page.locator('tr[data-cause]').count()).toBe(causes.length);

    // The chart: rows done and requests turned away add up to the report's rows.
    const timedRows = report.outcomes.filter((outcome) => outcome.finishedAt !== undefined).length;
    const turnedAway = report.outcomes.reduce(
      (sum, outcome) => sum + Math.max(0, outcome.startAttempts - 1),
      0,
    );
    expect(turnedAway).toBeGreaterThan(0); // the throttled and flaky users were sent again
    expect(await page.locator('[data-figure="timed-rows"]').innerText()).toBe(String(timedRows));
    expect(await page.locator('[data-figure="turned-away"]').innerText()).toBe(String(turnedAway));
    expect(await page.locator('svg polyline').count()).toBe(1);

    // Audit facts.
    const facts = await page.locator('table.facts').innerText();
    expect(facts).toContain(jobId);
    expect(facts).toContain(csv.sha256);
  } finally {
    await page.close();
  }
});
