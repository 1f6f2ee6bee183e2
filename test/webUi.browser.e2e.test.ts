/**
 * The Temporal Web UI as an operator sees it, in Debian's Chromium (headless, driven by
 * playwright-core): the list filtered to a job's failed users shows exactly them, and a failed user's
 * page shows why, decrypted by the codec server in the browser. Screenshots of both are written to
 * BULK_RESET_SCREENSHOTS (a folder) when it is set.
 */
import type { Browser, Page } from 'playwright-core';
import { EncryptionCodec, loadCodecKeys, newCodecKeyLine } from '../temporal/codec';
import { type CodecServer, startCodecServer } from '../temporal/codecServer';
import { type DevServer, startDevServer } from '../temporal/devServer';
import { launchChromium, screenshot } from './support/browser';
import { FAST_POLICY, openStage, type Stage, userWorkflowIdOf, waitUntil } from './support/harness';
import { runJob } from './support/jobs';
import { freePort } from './support/ports';
import { upnCsv } from './support/users';
import { userWorkflowsQuery } from '../workflows/types';

let codecServer: CodecServer;
let server: DevServer;
let stage: Stage;
let browser: Browser;
let uiUrl: string;

beforeAll(async () => {
  const codecKeys = newCodecKeyLine();
  const uiPort = await freePort();
  codecServer = await startCodecServer({
    codec: new EncryptionCodec(await loadCodecKeys({ inline: codecKeys, file: '' })),
    allowedOrigins: [`http://localhost:${uiPort}`, `http://127.0.0.1:${uiPort}`],
  });
  server = await startDevServer({ uiPort, uiCodecEndpoint: codecServer.url });
  uiUrl = server.uiUrl as string;
  stage = await openStage(
    { retryAfterSeconds: 0.2 },
    { env: { TEMPORAL_ADDRESS: server.address, BULK_RESET_CODEC_KEYS: codecKeys } },
  );
  await stage.startWorker();
  browser = await launchChromium();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await stage?.close();
  await server?.stop();
  await codecServer?.close();
});

/** Clicks a tab of a workflow's page until its content shows (an early click, while loading, is lost). */
async function openTab(page: Page, tab: string, shows: string): Promise<void> {
  await waitUntil(
    `the ${tab} tab shows ${shows}`,
    async () => {
      await page.getByText(tab).first().click();
      return page
        .getByText(shows)
        .first()
        .waitFor({ timeout: 2_000 })
        .then(() => true)
        .catch(() => false);
    },
    30_000,
  );
}

test("the Web UI lists exactly a job's failed users and shows why one failed", async () => {
  const users = ['ok.1@ui.test', 'denied.1@ui.test', 'missing.1@ui.test', 'ok.2@ui.test', 'ok.3@ui.test'];
  const { jobId, report } = await runJob(stage, 'ui.csv', upnCsv(users), { policy: FAST_POLICY });
  const failed = report.outcomes.filter((outcome) => outcome.status === 'failed');
  expect(failed.map((outcome) => outcome.user).sort()).toEqual(['denied.1@ui.test', 'missing.1@ui.test']);
  const idOf = new Map(
    await Promise.all(
      report.outcomes.map(
        async (outcome) => [outcome.user, await userWorkflowIdOf(stage, jobId, outcome.user)] as const,
      ),
    ),
  );
  const query = userWorkflowsQuery(jobId, 'Failed');
  await waitUntil(
    'visibility lists the failed users',
    async () => (await stage.client.workflow.count(query)).count === failed.length,
    30_000,
  );

  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  try {
    // The filtered list: the failed users' workflows, and no other.
    await page.goto(`${uiUrl}/namespaces/default/workflows?query=${encodeURIComponent(query)}`);
    for (const outcome of failed)
      await page
        .getByText(idOf.get(outcome.user) as string)
        .first()
        .waitFor();
    const listed = await page.locator('body').innerText();
    for (const outcome of report.outcomes) {
      expect([outcome.user, listed.includes(idOf.get(outcome.user) as string)]).toEqual([
        outcome.user,
        outcome.status === 'failed',
      ]);
    }
    expect(listed).toContain('Failed');
    await screenshot(page, 'failed-users.png');

    // A failed user's page: its failure, opened by the codec server, says which row and why.
    const denied = failed.find((outcome) => outcome.user === 'denied.1@ui.test');
    await page.goto(
      `${uiUrl}/namespaces/default/workflows/${encodeURIComponent(idOf.get('denied.1@ui.test') as string)}`,
    );
    await page
      .getByText(`row ${denied?.row} of job ${jobId} failed (HTTP 403`)
      .first()
      .waitFor({ timeout: 30_000 });
    await screenshot(page, 'failed-user.png');

    // The job's page says what it is (its User Metadata tab, where this UI shows summary and details):
    // the CSV, who started it, and the outcome counts, without a user's name.
    await page.goto(`${uiUrl}/namespaces/default/workflows/${encodeURIComponent(jobId)}`);
    await openTab(page, 'User Metadata', 'Current Details');
    // This UI renders Markdown in sandboxed frames: read the page with every frame's text.
    const shownText = async (): Promise<string> =>
      (
        await Promise.all(
          page.frames().map((frame) =>
            frame
              .locator('body')
              .innerText()
              .catch(() => ''),
          ),
        )
      ).join('\n');
    await waitUntil(
      'the job page shows its details',
      async () => (await shownText()).includes('outcomes: succeeded 3, failed 2'),
      30_000,
    );
    await screenshot(page, 'job-metadata.png');
    const metadata = await shownText();
    expect(metadata).toContain('done: CSV ui.csv, 5 rows; 5 done, 0 in flight');
    expect(metadata).toContain('5 users to reset');
    expect(metadata).toContain(query);
    for (const user of users) expect(metadata).not.toContain(user);
  } finally {
    await page.close();
  }
});
