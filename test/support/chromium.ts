/**
 * Debian's Chromium (`apt-get install chromium`) driven by playwright-core, for browser tests.
 * Where it is missing the suites that need it skip, except in CI (CI=true), where a missing
 * browser is a failure.
 */
import { existsSync } from 'node:fs';
import { type Browser, chromium } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
export const HAS_CHROMIUM = existsSync(CHROMIUM);
/** Run the suite when Chromium is here, and also in CI, where its absence must fail loudly. */
export const RUN_BROWSER_SUITES = HAS_CHROMIUM || process.env.CI === 'true';

/**
 * A headless Chromium. Each launch gets a fresh profile: playwright makes a temporary user-data
 * folder and removes it on close, so no state carries from one run to the next.
 */
export function launchChromium(): Promise<Browser> {
  if (!HAS_CHROMIUM) {
    throw new Error(`${CHROMIUM} is missing (apt-get install chromium)`);
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless=new',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}
