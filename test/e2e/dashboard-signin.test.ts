/**
 * The dashboard as plant staff meet it: the built `eip-gateway run` on its embedded defaults with
 * the embedded sign-in provider, and Debian's chromium signing in through the real login form
 * (authorization code with PKCE), landing on the live view as that plant, and signing out.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../gateway/broker/credentials.js';
import { freePort } from '../../simulators/meters/meter-server.js';
import { launchChromium, RUN_BROWSER_SUITES } from '../support/chromium.js';

const BIN = join(import.meta.dirname, '../../dist/gateway/cli/main.js');
const PLANT = '0x70997970C51812dc3A010C7d01b50e0d17dc79C8';

describe.runIf(RUN_BROWSER_SUITES)('signing in to the dashboard', () => {
  let dir: string;
  let gateway: ChildProcess;
  let url: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'eip-signin-'));
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    writeFileSync(
      join(dir, 'credentials.yaml'),
      `clients:\n  plant-a: { role: prosumer, password: "${await hashPassword('plant-a-mqtt-secret')}" }\n`,
    );
    writeFileSync(
      join(dir, 'gateway.yaml'),
      [
        'broker: { credentials: credentials.yaml, tcp: "127.0.0.1:0" }',
        `api: { listen: "127.0.0.1:${port}" }`,
        'auth:',
        `  public_url: "${url}"`,
        '  provider:',
        '    embedded:',
        '      users:',
        `        ana: { plant: plant-a, password: "${await hashPassword('ana-password')}" }`,
        'plants:',
        `  plant-a: { address: "${PLANT}", meters: {} }`,
      ].join('\n'),
    );
    gateway = spawn(process.execPath, [BIN, 'run', '--config', join(dir, 'gateway.yaml')], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the gateway did not start')), 60_000);
      gateway.once('exit', (code) => reject(new Error(`the gateway exited with ${code}`)));
      createInterface({ input: gateway.stdout as NodeJS.ReadableStream }).on('line', (line) => {
        if (line.includes('"gateway running"')) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
  }, 90_000);

  afterAll(async () => {
    if (gateway && gateway.exitCode === null) {
      gateway.kill('SIGTERM');
      await new Promise((resolve) => gateway.once('exit', resolve));
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('signs plant staff in with the login form, shows their plant, and signs them out', async () => {
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      await page.goto(`${url}/`);
      await page
        .getByRole('link', { name: /sign in/i })
        .first()
        .click();
      await page.getByLabel(/user/i).fill('ana');
      await page.getByLabel(/password/i).fill('wrong-password');
      await page.getByRole('button', { name: /sign in/i }).click();
      // A wrong password is said so on the form, which stays for another try.
      await page.getByRole('alert').waitFor({ timeout: 10_000 });
      await page.getByLabel(/user/i).fill('ana');
      await page.getByLabel(/password/i).fill('ana-password');
      await page.getByRole('button', { name: /sign in/i }).click();
      await page.getByText(/Signed in as/).waitFor({ timeout: 20_000 });
      expect(await page.locator('header').textContent()).toMatch(/plant-a/);
      await page.getByRole('heading', { name: 'Delivery confirmations' }).waitFor();
      // The API answers the signed-in page, and no one else.
      expect((await fetch(`${url}/api/agreements`)).status).toBe(401);
      await page.getByRole('button', { name: /sign out/i }).click();
      await page.waitForURL((to) => !to.pathname.startsWith('/auth/'), { timeout: 20_000 });
      await page.goto(`${url}/`);
      await page
        .getByRole('link', { name: /sign in/i })
        .first()
        .waitFor();
    } finally {
      await browser.close();
    }
  }, 90_000);
});
