/**
 * The dashboard in a real browser (Debian's Chromium through playwright-core) against the real
 * API: anvil with the park's contracts, the indexer and the API server, behind one origin with
 * the dashboard's handler (site.ts, whose sign-in is a fixed stand-in for gateway/auth). A
 * delivery is made on the chain while the page watches: it must show up live, metered, paid and
 * refunded, with its transactions; the stream must resume after a drop and refetch after a reset;
 * every view must pass a basic accessibility audit (audit.js) in light and dark, work from the
 * keyboard and fit a phone. Screenshots are kept in test-results/dashboard/.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatUnits } from 'ethers';
import type { InfluxDB } from 'influx';
import type { BrowserContextOptions, Page, Browser as PlaywrightBrowser } from 'playwright-core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../core/logger.js';
import { type Agreement, structHash } from '../../core/messages/eip712.js';
import { parkNames } from '../../gateway/api/names.js';
import { type ApiServer, startApiServer } from '../../gateway/api/server.js';
import type { Session } from '../../gateway/dashboard/wire.js';
import { forecastUtility } from '../../gateway/forecast/history.js';
import type { Indexer } from '../../gateway/indexer/indexer.js';
import { NegotiationLog } from '../../gateway/negotiations/log.js';
import { ParkDirectory } from '../../gateway/park.js';
import {
  agreementTerms,
  openAgreement,
  type Park,
  PRICE,
  QUANTITY,
  reportDelivery,
  WINDOW,
  warp,
} from '../contracts/park.js';
import { launchChromium, RUN_BROWSER_SUITES } from '../support/chromium.js';
import { startIndexedPark } from '../support/indexed-park.js';
import { brokenOff, negotiationId, outcomeReport } from '../support/negotiation-reports.js';
import { until } from '../support/until.js';
import { type Site, startSite } from './site.js';

const SCREENSHOTS = join(import.meta.dirname, '..', '..', 'test-results', 'dashboard');
/** Same-origin fixed formats, so figures can be compared: the page uses the browser's locale. */
const LOCALE = { locale: 'en-GB', timezoneId: 'UTC' } as const;
const DESKTOP: BrowserContextOptions = { ...LOCALE, viewport: { width: 1280, height: 900 } };
const PHONE: BrowserContextOptions = {
  ...LOCALE,
  viewport: { width: 375, height: 812 },
  deviceScaleFactor: 2,
  isMobile: true,
  hasTouch: true,
};
/** Every view: its screenshots' name, address and heading (ids of the agreement of beforeAll). */
const VIEWS = (): [name: string, hash: string, title: string][] => [
  ['live', '#/', 'Delivery confirmations'],
  ['schedule', '#/schedule', 'Schedule'],
  ['volumes', '#/volumes', 'Volume traded'],
  ['statistics', '#/statistics', 'Statistics'],
  ['forecast', '#/forecast', 'Forecast'],
  ['explorer', '#/explorer', 'Block explorer'],
  ['agreement', `#/agreement/${idOf(seeded)}`, `Agreement ${short(idOf(seeded))}`],
  ['transaction', `#/tx/${seededTx}`, `Transaction ${short(seededTx)}`],
];

let park: Park;
let indexer: Indexer;
let api: ApiServer;
let site: Site;
let browser: PlaywrightBrowser;
let plant: Session;
let seeded: Agreement;
let seededTx: string;
let negotiations: NegotiationLog;
let negotiationDir: string;

const idOf = (terms: Agreement) => structHash('Agreement', terms);
/** As the page shortens addresses and hashes. */
const short = (hex: string) => `${hex.slice(0, 6)}…${hex.slice(-4)}`;
const tokens = (baseUnits: bigint) =>
  `${new Intl.NumberFormat('en-GB', { maximumFractionDigits: 2 }).format(formatUnits(baseUnits, 18) as `${number}`)} tokens`;

const HOUR_MS = 3_600_000;
const DAY = 24;
/** The forecast's present, fixed so that the test can work out the same forecast. */
const NOW = Date.now();
/** The park's hourly biogas demand as the stand-in InfluxDB holds it; null: it cannot be read. */
let demandHistory: number[] | null = null;

/**
 * InfluxDB as far as forecastUtility asks it (hourly sums of one balance field), answered from
 * `demandHistory`: the API's real forecast route and forecast code run, with no InfluxDB to start.
 * The balance is a surplus of 45 m3 an hour less the demand.
 */
const influx = {
  query: async (text: string) => {
    if (demandHistory === null) throw new Error('connect ECONNREFUSED 127.0.0.1:8086');
    const values = text.includes('"net_units"')
      ? demandHistory.map((demand) => 45 - demand)
      : demandHistory;
    const end = Math.floor(NOW / HOUR_MS) * HOUR_MS;
    return values.map((total, i) => ({
      time: new Date(end - (values.length - i) * HOUR_MS),
      total,
    }));
  },
} as unknown as InfluxDB;

/** A week of hourly demand: a daily shape and some noise, the same every run. */
const weekOfDemand = () =>
  Array.from(
    { length: 7 * DAY },
    (_, t) => 40 + 25 * Math.sin((2 * Math.PI * (t % DAY)) / DAY) + (((t * 7919) % 11) - 5),
  );

/** Two negotiations agreed and one broken off at the deadline, as the agents report them. */
async function reportNegotiations(directory: ParkDirectory): Promise<NegotiationLog> {
  negotiationDir = mkdtempSync(join(tmpdir(), 'eip-dashboard-negotiations-'));
  const log = await NegotiationLog.open(negotiationDir, directory, { retainDays: 3660 });
  for (const n of [1, 2, 3]) {
    const report = outcomeReport({
      negotiation_id: negotiationId(n),
      rounds: 10 + n,
      ended_at_ms: NOW,
      ...(n === 3 && brokenOff('counterpart')),
    });
    await log.record(report.prosumer, report);
  }
  return log;
}

async function startApi(): Promise<ApiServer> {
  // The plants by the ids the park gives them, as eip-gateway run names them.
  const directory = new ParkDirectory({
    'plant-a': { address: park.seller.address, meters: {} },
    'plant-b': { address: park.buyer.address, meters: {} },
  });
  negotiations = await reportNegotiations(directory);
  // auth: null serves the API as to the operator: sign-in is the stand-in's (site.ts).
  return startApiServer({
    indexer,
    auth: null,
    nameOf: parkNames(directory, () => indexer.model.utilities()),
    negotiations,
    listen: { host: '127.0.0.1', port: 0 },
    logger: silentLogger,
    forecast: (utility) => forecastUtility(influx, utility, NOW),
  });
}

async function reachHead(): Promise<void> {
  const head = await park.provider.getBlockNumber();
  await until(`the indexer to reach block ${head}`, () => indexer.status().indexedBlock >= head);
}

async function settle(terms: Agreement): Promise<string> {
  const tx = await park.market.settle(terms);
  await tx.wait();
  return tx.hash;
}

/**
 * A page of its own (a fresh context: no cookies, no cache), and the errors it logs. A failed
 * load is logged by Chromium as an error too; those the test causes (the forecast route is not
 * in the API yet) are left out, CSP and script errors are not.
 */
async function newPage(options: BrowserContextOptions) {
  const context = await browser.newContext(options);
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) {
      errors.push(message.text());
    }
  });
  page.on('pageerror', (error) => errors.push(error.message));
  return { page, errors, close: () => context.close() };
}

/** Waits until the view titled `title` is drawn. */
async function drawn(page: Page, title: string): Promise<void> {
  await page.locator('#view-title', { hasText: title }).waitFor();
  await page.locator('#view:not([aria-busy])').waitFor();
}

async function visit(page: Page, hash: string, title: string): Promise<void> {
  await page.evaluate(`location.hash = ${JSON.stringify(hash)}`);
  await drawn(page, title);
}

/** Kept as it would be seen: the focus ring of the last navigation is not part of the view. */
async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.evaluate('document.activeElement?.blur()');
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

/** The accessibility problems of the page as it stands (audit.js, run in the page). */
async function auditPage(page: Page): Promise<string[]> {
  // A .js module: imported by URL, as tsc would not type an import of it from here.
  const module = new URL('./audit.js', import.meta.url).href;
  const { audit } = (await import(module)) as { audit: () => string[] };
  return page.evaluate(audit);
}

const openTables = (page: Page) =>
  page.evaluate("document.querySelectorAll('details').forEach((d) => { d.open = true; })");

describe.runIf(RUN_BROWSER_SUITES)('the dashboard in Chromium', { timeout: 60_000 }, () => {
  beforeAll(async () => {
    ({ park, indexer } = await startIndexedPark());
    api = await startApi();
    site = await startSite(api.url);
    // As gateway/auth answers GET /auth/me for a plant's staff member.
    plant = { who: 'ana', role: 'plant', plant: 'plant-a', address: park.seller.address };
    // One agreement delivered in full and settled, so that every view has something to show.
    seeded = await agreementTerms(park);
    await openAgreement(park, seeded);
    await reportDelivery(park, seeded, park.buyerMeter, QUANTITY, 1n);
    seededTx = await settle(seeded);
    await reachHead();
    browser = await launchChromium();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await site?.close();
    await api?.close();
    await negotiations?.close();
    if (negotiationDir) rmSync(negotiationDir, { recursive: true, force: true });
    await indexer?.stop();
    await park?.close();
  });

  beforeEach(() => {
    site.session = plant;
  });

  it('asks to sign in when no one is, shows who is, and signs out', async () => {
    site.session = null;
    const { page, errors, close } = await newPage(DESKTOP);
    try {
      await page.goto(site.url);
      const signIn = page.locator('#session').getByRole('link', { name: 'Sign in' });
      expect(await signIn.getAttribute('href')).toBe('/auth/login?return=/');
      expect(await page.locator('#view').textContent()).toContain(
        'Sign in to see the park’s market',
      );

      site.session = plant;
      await page.reload();
      await drawn(page, 'Delivery confirmations');
      expect(await page.locator('#session').textContent()).toContain(
        `Signed in as ana, plant-a (${short(park.seller.address)})`,
      );
      // Parties by their plant ids, the signed-in plant's own marked as such.
      expect(await page.locator('#view').textContent()).toContain(
        'seller plant-a (you) to buyer plant-b',
      );
      await page.getByRole('button', { name: 'Sign out' }).click();
      await page.locator('#session').getByRole('link', { name: 'Sign in' }).waitFor();
      expect(site.session).toBeNull();
      expect(errors).toEqual([]);
    } finally {
      await close();
    }
  });

  it('shows a delivery confirmation as it happens: metered, paid, refunded, its transactions', async () => {
    const { page, errors, close } = await newPage(DESKTOP);
    try {
      let loads = 0;
      page.on('load', () => loads++);
      await page.goto(site.url);
      await drawn(page, 'Delivery confirmations');
      await page.locator('#link-state', { hasText: 'Live' }).waitFor();

      const terms = await agreementTerms(park);
      const id = idOf(terms);
      const card = page.getByRole('article', { name: `Agreement ${short(id)}` });
      await openAgreement(park, terms);
      await card.getByText('Awaiting delivery').waitFor();

      await reportDelivery(park, terms, park.buyerMeter, 60_000n, 1n);
      await card.getByText('60 m3 of 100 m3', { exact: true }).waitFor();
      expect(await card.locator('progress').getAttribute('value')).toBe('60000');
      expect(await card.locator('progress').getAttribute('max')).toBe(QUANTITY.toString());
      expect(await card.textContent()).toContain('Delivering');
      await screenshot(page, 'live-delivering-desktop');

      // The window and its grace period over, the seller is paid for 60 % and the buyer refunded.
      await warp(park.provider, WINDOW + 3600n + 1n);
      const settleTx = await settle(terms);
      await card.getByText('Settled', { exact: true }).waitFor();
      const money = await card.locator('.money').textContent();
      expect(money).toMatch(new RegExp(`Paid to seller\\s*${tokens(60_000n * PRICE)}`));
      expect(money).toMatch(new RegExp(`Refunded to buyer\\s*${tokens(40_000n * PRICE)}`));
      const settled = card.getByRole('link', { name: `tx ${short(settleTx)}` });
      expect(await settled.getAttribute('href')).toBe(`#/tx/${settleTx}`);
      const links = await card
        .getByRole('link', { name: /^tx / })
        .evaluateAll((as) => as.map((a) => a.getAttribute('href')));
      expect(links).toHaveLength(3); // opened, last report, settled
      for (const href of links) expect(href).toMatch(/^#\/tx\/0x[0-9a-f]{64}$/);
      await expect
        .poll(() => page.locator('#announcements').textContent())
        .toContain(
          `Agreement ${short(id)} settled: 60 m3 of 100 m3 delivered, ${tokens(60_000n * PRICE)} paid to the seller, ${tokens(40_000n * PRICE)} refunded to the buyer.`,
        );
      expect(loads).toBe(1); // all of it without reloading the page

      // The link opens the built-in explorer on the settlement, its events decoded.
      await settled.click();
      await drawn(page, `Transaction ${short(settleTx)}`);
      const events = await page.locator('#view table').textContent();
      expect(events).toContain('AgreementSettled');
      expect(events).toContain((60_000n * PRICE).toString());
      expect(events).toContain('Transfer');
      expect(errors).toEqual([]);
    } finally {
      await close();
    }
  });

  it('catches up from Last-Event-ID after a dropped stream, and refetches after a reset', async () => {
    const { page, close } = await newPage(DESKTOP);
    /**
     * Ends the stream and meets the browser's reconnections as `mode` says while `meanwhile`
     * runs, then lets them through; the Last-Event-ID of the one that got through.
     */
    const interrupt = async (mode: 'hold' | 'refuse', meanwhile: () => Promise<unknown>) => {
      site.setStreams(mode);
      site.dropStreams();
      const state = mode === 'hold' ? 'Reconnecting' : 'Offline';
      await page.locator('#link-state', { hasText: state }).waitFor();
      await meanwhile();
      await reachHead();
      const requests = site.streamRequests.length;
      site.setStreams('open');
      await until('the reconnection', () => site.streamRequests.length > requests, 15_000);
      return site.streamRequests.at(-1);
    };
    try {
      await page.goto(site.url);
      await drawn(page, 'Delivery confirmations');
      await page.locator('#link-state', { hasText: 'Live' }).waitFor();
      const terms = await agreementTerms(park);
      const card = page.getByRole('article', { name: `Agreement ${short(idOf(terms))}` });
      const heard = site.streamEvents.length;
      await openAgreement(park, terms);
      await card.waitFor();
      await until('the block', () =>
        site.streamEvents.slice(heard).some((e) => e.event === 'block'),
      );

      // Ended: the browser reconnects with the id of the last event it got, and is sent what
      // happened meanwhile.
      const lastSeen = site.streamEvents.at(-1)?.id;
      const sent = await interrupt('hold', () =>
        reportDelivery(park, terms, park.buyerMeter, 20_000n, 1n),
      );
      expect(lastSeen).toMatch(/^[0-9a-f]+-\d+$/);
      expect(sent).toBe(lastSeen);
      await card.getByText('20 m3 of 100 m3', { exact: true }).waitFor();

      // The gateway restarted meanwhile: the id means nothing to the new one, which says reset,
      // and the page fetches everything again.
      const resets = site.streamEvents.filter((e) => e.event === 'reset').length;
      await interrupt('hold', async () => {
        const before = api;
        api = await startApi();
        site.apiUrl = api.url;
        await before.close();
        await reportDelivery(park, terms, park.buyerMeter, 30_000n, 2n);
      });
      await until(
        'the reset',
        () => site.streamEvents.filter((e) => e.event === 'reset').length > resets,
      );
      await card.getByText('30 m3 of 100 m3', { exact: true }).waitFor();

      // Refused (502): the browser gives that EventSource up; the page opens a new one, which
      // has no id to send, and so fetches everything again.
      const fresh = await interrupt('refuse', () =>
        reportDelivery(park, terms, park.buyerMeter, 45_000n, 3n),
      );
      expect(fresh).toBeNull();
      await card.getByText('45 m3 of 100 m3', { exact: true }).waitFor();
      await page.locator('#link-state', { hasText: 'Live' }).waitFor();
    } finally {
      site.setStreams('open');
      await close();
    }
  });

  it('works from the keyboard: skip link, then sign-out and the views in order, focus shown', async () => {
    const { page, close } = await newPage(DESKTOP);
    try {
      await page.goto(site.url);
      await drawn(page, 'Delivery confirmations');
      const focused = () =>
        page.evaluate<string>(
          "(document.activeElement?.getAttribute('aria-label') || document.activeElement?.textContent || '').trim()",
        );
      const outline = () =>
        page.evaluate<[string, number]>(
          '((s) => [s.outlineStyle, parseFloat(s.outlineWidth)])(getComputedStyle(document.activeElement))',
        );
      const order: string[] = [];
      for (let i = 0; i < 8; i++) {
        await page.keyboard.press('Tab');
        order.push(await focused());
        const [style, width] = await outline();
        expect(style, order.at(-1)).not.toBe('none');
        expect(width, order.at(-1)).toBeGreaterThanOrEqual(2);
      }
      expect(order).toEqual([
        'Skip to content',
        'Sign out',
        'Live',
        'Schedule',
        'Volumes',
        'Statistics',
        'Forecast',
        'Explorer',
      ]);
      // A view chosen from the keyboard takes the focus to its heading, then into its content.
      await page.keyboard.press('Enter');
      await drawn(page, 'Block explorer');
      expect(await focused()).toBe('Block explorer');
      expect(await page.getAttribute('nav a[data-nav="explorer"]', 'aria-current')).toBe('page');
      await page.keyboard.press('Tab');
      expect(await page.evaluate<boolean>("document.activeElement.closest('main') !== null")).toBe(
        true,
      );
      // The skip link takes the focus past the banner.
      await page.reload();
      await drawn(page, 'Block explorer');
      await page.keyboard.press('Tab');
      await page.keyboard.press('Enter');
      expect(await page.evaluate<string>('document.activeElement.id')).toBe('main');
    } finally {
      await close();
    }
  });

  it('passes a basic accessibility audit on every view, in light and in dark', async () => {
    for (const colorScheme of ['light', 'dark'] as const) {
      const { page, errors, close } = await newPage({ ...DESKTOP, colorScheme });
      try {
        await page.goto(site.url);
        await drawn(page, 'Delivery confirmations');
        for (const [name, hash, title] of VIEWS()) {
          await visit(page, hash, title);
          await screenshot(page, `${name}-desktop${colorScheme === 'dark' ? '-dark' : ''}`);
          await openTables(page);
          expect(await auditPage(page), `${hash} in ${colorScheme}`).toEqual([]);
        }
        expect(errors).toEqual([]);
      } finally {
        await close();
      }
    }
  });

  it('has an audit that finds what it looks for', async () => {
    const { page, close } = await newPage(DESKTOP);
    try {
      await page.goto(site.url);
      await drawn(page, 'Delivery confirmations');
      // Built with DOM calls: the page's CSP (Trusted Types) refuses HTML strings, rightly.
      await page.evaluate(`(() => {
        const add = (tag, attributes, text) => {
          const element = document.createElement(tag);
          for (const [k, v] of Object.entries(attributes)) element.setAttribute(k, v);
          if (text) element.textContent = text;
          document.getElementById('view').append(element);
          return element;
        };
        add('select', {});
        add('p', { id: 'view-title' }, 'a second element with this id');
        add('p', { class: 'pale' }, 'pale text').style.color = '#bbbbbb';
        add('a', { href: '#/' });
        add('h2', {}, 'a section');
        add('h5', {}, 'too deep');
        add('table', {});
        document.getElementById('view').append(document.createElementNS('http://www.w3.org/2000/svg', 'svg'));
      })()`);
      const problems = await auditPage(page);
      for (const expected of [
        /<select> "" has no label/,
        /id "view-title" is used 2 times/,
        /<p> "pale text" has a contrast of 1\.\d\d:1/,
        /<a> "" has no name/,
        /<h5> "too deep" skips from h2 to h5/,
        /<table> "" has no caption/,
        /an <svg> has no title/,
      ]) {
        expect(problems).toEqual(expect.arrayContaining([expect.stringMatching(expected)]));
      }
    } finally {
      await close();
    }
  });

  it('fills a control-room screen: larger text, cards side by side, nothing scrolls sideways', async () => {
    for (const [width, height, rootPx] of [
      [1920, 1080, 18],
      [3840, 2160, 22],
    ] as const) {
      const { page, errors, close } = await newPage({ ...LOCALE, viewport: { width, height } });
      try {
        await page.goto(site.url);
        await drawn(page, 'Delivery confirmations');
        expect(await page.evaluate('getComputedStyle(document.documentElement).fontSize')).toBe(
          `${rootPx}px`,
        );
        // The recently settled cards share a row.
        const tops = await page
          .locator('.cards')
          .last()
          .locator('.card')
          .evaluateAll((cards) => cards.map((card) => card.getBoundingClientRect().top));
        expect(tops.length).toBeGreaterThan(1);
        expect(new Set(tops).size).toBe(1);
        for (const [name, hash, title] of VIEWS()) {
          await visit(page, hash, title);
          const [scrollWidth, innerWidth] = await page.evaluate<[number, number]>(
            '[document.documentElement.scrollWidth, window.innerWidth]',
          );
          expect(scrollWidth, hash).toBeLessThanOrEqual(innerWidth);
          if (width === 1920 && (name === 'live' || name === 'statistics')) {
            await screenshot(page, `${name}-control-room`);
          }
        }
        expect(errors).toEqual([]);
      } finally {
        await close();
      }
    }
  });

  it('fits a phone: no view scrolls sideways at 375 px', async () => {
    const { page, errors, close } = await newPage(PHONE);
    try {
      await page.goto(site.url);
      await drawn(page, 'Delivery confirmations');
      for (const [name, hash, title] of VIEWS()) {
        await visit(page, hash, title);
        await openTables(page);
        const [scrollWidth, width] = await page.evaluate<[number, number]>(
          '[document.documentElement.scrollWidth, window.innerWidth]',
        );
        expect(scrollWidth, hash).toBeLessThanOrEqual(width);
        await screenshot(page, `${name}-phone`);
      }
      expect(errors).toEqual([]);
    } finally {
      await close();
    }
  });

  it('shows volumes and statistics worked out from the chain, and the agreement rate the agents reported', async () => {
    const { page, close } = await newPage(DESKTOP);
    try {
      const biogas = park.manifest.markets.biogas;
      // What the API holds now, settled peer agreements of earlier tests included.
      const { items } = (await (await fetch(`${api.url}/api/agreements?limit=500`)).json()) as {
        items: { kind: string; unitPrice: string; settlement: { delivered: string } | null }[];
      };
      let saved = 0n;
      let earned = 0n;
      for (const a of items) {
        if (a.kind !== 'peer' || a.settlement === null) continue;
        const delivered = BigInt(a.settlement.delivered);
        saved += delivered * (biogas.providerSellsAt - BigInt(a.unitPrice));
        earned += delivered * (BigInt(a.unitPrice) - biogas.providerBuysAt);
      }
      await page.goto(`${site.url}/#/statistics`);
      await drawn(page, 'Statistics');
      const text = await page.locator('#view').textContent();
      expect(text).toMatch(
        new RegExp(`Buyers saved against the provider's selling tariff\\s*${tokens(saved)}`),
      );
      expect(text).toMatch(
        new RegExp(`Sellers earned above the provider's buying tariff\\s*${tokens(earned)}`),
      );
      // 2 of the 3 reported negotiations agreed, in 11 and 12 rounds; one failed at the deadline.
      const rate = await page
        .getByRole('row', { name: /^Biogas \/ natural gas 67 %/ })
        .textContent();
      expect(rate).toMatch(/67 %\s*2\s*1\s*0\s*0\s*11\.5\s*deadline 1/);
      expect(await page.locator('svg[role="img"] > title').first().textContent()).toBe(
        'Biogas / natural gas: agreed prices over time',
      );

      const utilities = (await (await fetch(`${api.url}/api/utilities`)).json()) as {
        items: { agreements: { active: number; settled: number }; contracted: string }[];
      };
      const gas = utilities.items[0];
      await visit(page, '#/volumes', 'Volume traded');
      const row = await page
        .getByRole('row', { name: /^Biogas \/ natural gas/ })
        .first()
        .textContent();
      expect(row).toContain(`${gas?.agreements.active} active, ${gas?.agreements.settled} settled`);
      expect(row).toContain(`${formatUnits(gas?.contracted ?? '0', 3).replace(/\.0$/, '')} m3`);
    } finally {
      await close();
    }
  });

  it('says why there is no forecast, and draws the one the gateway serves', async () => {
    const { page, errors, close } = await newPage(DESKTOP);
    const notice = () => page.locator('#view .notice').textContent();
    try {
      // InfluxDB out of reach: the gateway's reason, once (its message starts "no forecast:").
      demandHistory = null;
      await page.goto(`${site.url}/#/forecast`);
      await drawn(page, 'Forecast');
      expect(await notice()).toBe(
        'No forecast: InfluxDB could not be read (connect ECONNREFUSED 127.0.0.1:8086)',
      );

      // Five hours of history: too little for a day-long season.
      demandHistory = weekOfDemand().slice(0, 5);
      const show = page.getByRole('button', { name: 'Show' });
      await show.click();
      await expect
        .poll(notice)
        .toBe('No forecast: a forecast needs a day of history; InfluxDB holds 5 hours');

      demandHistory = weekOfDemand();
      const forecast = await forecastUtility(influx, 'biogas', NOW);
      await show.click();
      await page
        .locator('svg[role="img"] > title', { hasText: 'Demand, next 24 hours' })
        .waitFor({ state: 'attached' });
      const text = await page.locator('#view').textContent();
      expect(text).toContain(`from ${forecast.history_hours} hours of the park's history`);
      const one = new Intl.NumberFormat('en-GB', { maximumFractionDigits: 1 });
      for (const { error } of [forecast.demand, forecast.balance]) {
        expect(error).not.toBeNull();
        expect(text).toContain(
          `${one.format(error?.holt_winters ?? 0)} m3 for this forecast, ${one.format(error?.seasonal_naive ?? 0)} m3 for seasonal naive`,
        );
      }
      await page.getByText('Table: Demand per hour').click();
      const rows = page.getByRole('table', { name: 'Demand per hour' }).locator('tbody tr');
      expect(await rows.count()).toBe(24);
      expect(await rows.first().locator('td').textContent()).toBe(
        one.format(forecast.demand.hourly[0]?.value ?? Number.NaN),
      );
      await screenshot(page, 'forecast-drawn-desktop');
      expect(errors).toEqual([]);
    } finally {
      demandHistory = null;
      await close();
    }
  });
});
