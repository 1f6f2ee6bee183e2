/**
 * Debian's Chromium, headless, driven by playwright-core: for the tests that look where a person would
 * (the Temporal Web UI, the HTML report). scripts/ensure-chromium.sh installs it; BULK_RESET_CHROMIUM
 * names another. Screenshots go to BULK_RESET_SCREENSHOTS (a folder) when it is set.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';

/** The flags a headless Chromium needs on a machine with no network and no display (run as root). */
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env.BULK_RESET_CHROMIUM ?? '/usr/bin/chromium',
    args: CHROMIUM_ARGS,
  });
}

/** Saves a full-page screenshot when BULK_RESET_SCREENSHOTS is set; a no-op otherwise. */
export async function screenshot(page: Page, name: string): Promise<void> {
  const folder = process.env.BULK_RESET_SCREENSHOTS;
  if (!folder) return;
  await mkdir(folder, { recursive: true });
  await page.screenshot({ path: join(folder, name), fullPage: true });
}
