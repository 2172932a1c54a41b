/**
 * The README's first command, as a user runs it: the built `eip-sim park` brings up the gateway
 * (broker, anvil, markets, relay, oracle), simulated meters and three edge agents, runs a short
 * park day, and reports every agreement. It must exit 0, have settled every agreement, paid the
 * sellers and refunded at least one buyer, with paid + refunded equal to each escrow.
 *
 * Meanwhile, as plant staff would, Debian's chromium signs in to the dashboard the run prints
 * (the embedded provider's login form, with the password the run made) and watches a delivery
 * settle on the live view without reloading; the screenshot is kept in test-results/dashboard/.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseUnits } from 'ethers';
import { describe, expect, it } from 'vitest';
import { launchChromium, RUN_BROWSER_SUITES } from '../support/chromium.js';

const BIN = join(import.meta.dirname, '../../dist/simulators/cli/main.js');
const SCREENSHOTS = join(import.meta.dirname, '../../test-results/dashboard');
/** The plant whose staff watch: it buys gas and power and sells heat, so it sees both sides. */
const WATCHER = 'food-factory';

interface Run {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `eip-sim park`, handing each line of its progress (stderr) to `onProgress` as it comes. */
function runPark(dir: string, onProgress: (line: string) => void): Promise<Run> {
  const child = spawn(process.execPath, [BIN, 'park', '--day', '30', '--json', '--data-dir', dir], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  createInterface({ input: child.stderr }).on('line', (line) => {
    stderr += `${line}\n`;
    onProgress(line);
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), 150_000);
  return new Promise((resolve) =>
    child.once('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    }),
  );
}

/** The dashboard's address and the watcher's password, from the line the run prints. */
function dashboardOf(line: string): { url: string; password: string } | null {
  const url = /^dashboard: (http:\/\/\S+?)\/ \(sign in as /.exec(line)?.[1];
  const password = new RegExp(`\\b${WATCHER} / (\\S+?)(?:,|\\))`).exec(line)?.[1];
  return url && password ? { url, password } : null;
}

/**
 * Signs in as the watcher and waits on the live view until a delivery settles there, by the
 * live stream alone: the page is loaded once. Returns what the settled card and the screen
 * reader's announcement said.
 */
async function watchASettlement(url: string, password: string) {
  const browser = await launchChromium();
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(`${url}/`);
    await page
      .getByRole('link', { name: /sign in/i })
      .first()
      .click();
    await page.getByLabel(/user/i).fill(WATCHER);
    await page.getByLabel(/password/i).fill(password);
    await page.getByRole('button', { name: /sign in/i }).click();
    await page.getByText(/Signed in as/).waitFor({ timeout: 20_000 });
    await page.locator('#link-state', { hasText: 'Live' }).waitFor({ timeout: 20_000 });
    let loads = 0;
    page.on('load', () => loads++);
    const settled = page.locator('.card.state-settled').first();
    await settled.waitFor({ timeout: 120_000 });
    const announced = page.locator('#announcements p', { hasText: 'settled:' }).first();
    await announced.waitFor({ state: 'attached', timeout: 10_000 });
    mkdirSync(SCREENSHOTS, { recursive: true });
    await page.screenshot({ path: join(SCREENSHOTS, 'park-day-settled-live.png'), fullPage: true });
    return {
      loads,
      card: (await settled.textContent()) ?? '',
      announcement: (await announced.textContent()) ?? '',
      header: (await page.locator('header').textContent()) ?? '',
    };
  } finally {
    await browser.close();
  }
}

describe('eip-sim park', () => {
  it('runs a park day end to end, seen live on the dashboard, and prints the summary as JSON', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'eip-park-e2e-'));
    try {
      let watching: Promise<Awaited<ReturnType<typeof watchASettlement>>> | undefined;
      const run = await runPark(dir, (line) => {
        const dashboard = dashboardOf(line);
        if (dashboard && RUN_BROWSER_SUITES && watching === undefined) {
          watching = watchASettlement(dashboard.url, dashboard.password);
          // Awaited below; a failure must not go unhandled while the run goes on.
          watching.catch(() => undefined);
        }
      });
      expect(run.status, run.stderr).toBe(0);
      expect(run.stderr).toMatch(/gateway up: broker mqtt:\/\/127\.0\.0\.1:\d+/);
      expect(run.stderr).toMatch(/settled, .* delivered/);
      const summary = JSON.parse(run.stdout);
      expect(summary.ok).toBe(true);
      expect(summary.stages.map((s: { stage: string; ok: boolean }) => [s.stage, s.ok])).toEqual([
        ['meter readings', true],
        ['negotiation', true],
        ['negotiation outcomes', true],
        ['agreements on chain', true],
        ['metered delivery', true],
        ['payment', true],
        ['refund', true],
      ]);
      const utilities = new Set(summary.agreements.map((a: { utility: string }) => a.utility));
      expect(utilities).toEqual(new Set(['biogas', 'electricity', 'heat']));
      for (const a of summary.agreements) {
        expect(a.state).toBe('settled');
        expect(a.transactions.open).toMatch(/^0x[0-9a-f]{64}$/);
        expect(a.transactions.settle).toMatch(/^0x[0-9a-f]{64}$/);
        expect(a.delivered).toBeLessThanOrEqual(a.quantity);
        // The seller is paid for what was delivered, the buyer refunded the rest of the escrow.
        const escrow = parseUnits(String(a.quantity), 3) * parseUnits(String(a.unit_price), 15);
        expect(parseUnits(a.paid, 18) + parseUnits(a.refunded, 18)).toBe(escrow);
      }
      expect(summary.agreements.some((a: { refunded: string }) => a.refunded !== '0.0')).toBe(true);
      // Every peer agreement on chain was reported agreed by the agents that made it.
      const peer = summary.agreements.filter(
        (a: { seller: string; buyer: string }) => a.seller !== 'provider' && a.buyer !== 'provider',
      ).length;
      const reported = Object.values(summary.negotiations) as { agreed: number }[];
      expect(reported.reduce((n, c) => n + c.agreed, 0)).toBeGreaterThanOrEqual(peer);
      // The configs an installer would write are kept.
      for (const file of ['gateway.yaml', 'credentials.yaml', 'biogas-plant.yaml']) {
        expect(existsSync(join(dir, file))).toBe(true);
      }

      if (RUN_BROWSER_SUITES) {
        expect(watching, 'the run printed no dashboard address and password').toBeDefined();
        const seen = await watching;
        expect(seen?.header).toContain(`Signed in as ${WATCHER}`);
        expect(seen?.loads).toBe(0);
        // The staff's own plant is a party to what they see, and the money is on the card.
        expect(seen?.card).toContain(`${WATCHER} (you)`);
        expect(seen?.card).toMatch(/Paid to seller.*Refunded to buyer/s);
        expect(seen?.announcement).toMatch(/settled: .* delivered, .* paid to the seller/);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 180_000);
});
