/**
 * Sign-in and access control, end to end on loopback: the gateway's API with its embedded OpenID
 * provider, driven by a plain HTTP client (fetch, a cookie jar, redirects by hand) through the
 * authorization code flow with PKCE, over an indexer of a real anvil park where the seller plant
 * trades with the buyer plant and with the main provider. Then what each caller sees, on the
 * routes and the event stream, and every refusal with its message; and the same for machine
 * clients with API tokens.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Wallet } from 'ethers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../core/logger.js';
import { type Agreement, structHash } from '../../core/messages/eip712.js';
import { type ApiServer, startApiServer } from '../../gateway/api/server.js';
import { startAuth } from '../../gateway/auth/auth.js';
import { authConfigSchema } from '../../gateway/auth/config.js';
import { CookieJar } from '../../gateway/auth/cookies.js';
import { type ClaimMapping, principalFromClaims } from '../../gateway/auth/principal.js';
import { newApiToken } from '../../gateway/auth/tokens.js';
import { generateDemoUsers } from '../../gateway/auth/users.js';
import { hashPassword } from '../../gateway/broker/credentials.js';
import { parseGatewayConfig } from '../../gateway/config.js';
import type { Indexer } from '../../gateway/indexer/indexer.js';
import { NegotiationLog } from '../../gateway/negotiations/log.js';
import { ParkDirectory } from '../../gateway/park.js';
import {
  agreementTerms,
  now,
  openAgreement,
  type Park,
  QUANTITY,
  reportDelivery,
} from '../contracts/park.js';
import { Browser, formOf } from '../support/browser.js';
import { openEventStream } from '../support/event-stream.js';
import { startIndexedPark } from '../support/indexed-park.js';
import {
  brokenOff,
  negotiationId,
  type OutcomeReport,
  outcomeReport,
} from '../support/negotiation-reports.js';
import { freePort } from '../support/processes.js';
import { recordingLogger } from '../support/recording-logger.js';
import { until } from '../support/until.js';

type Json = Record<string, unknown> & { items?: Record<string, unknown>[] };

const SESSION_HOURS = 8;
/** API tokens of machine clients: a report with the operator's view, a plant's Node-RED, one for an hour. */
const TOKENS = { report: newApiToken(), buyer: newApiToken(), hour: newApiToken() };
const HOUR_ENDS = new Date(Date.now() + 3_600_000);
/** Solidity's Role.Buyer: the prosumer buys from the main provider. */
const BUYS = 1;

let park: Park;
let indexer: Indexer;
let api: ApiServer;
let base: string;
let directory: ParkDirectory;
const passwords: Record<string, string> = { newcomer: 'newcomer-password' };
/** Added to the sessions' clock, to make them expire. */
let skewMs = 0;
let peer: Agreement;
let settleTx: string;
let negotiations: NegotiationLog;
let negotiationDir: string;
let providerTradeId: string;
let providerTradeTx: string;

const idOf = (terms: Agreement) => structHash('Agreement', terms);

async function reachHead(): Promise<void> {
  const head = await park.provider.getBlockNumber();
  await until(`the indexer to reach block ${head}`, () => indexer.status().indexedBlock >= head);
}

/** The seller plant buys from the main provider; the agreement id and transaction. */
async function sellerBuysFromProvider(): Promise<{ id: string; tx: string }> {
  const start = (await now(park.provider)) + 5n;
  const market = park.market.connect(park.seller);
  const tx = await market.tradeWithProvider(BUYS, QUANTITY, start, start + 3600n, 2n ** 255n);
  const receipt = await tx.wait();
  const opened = receipt?.logs
    .map((log) => market.interface.parseLog(log))
    .find((event) => event?.name === 'ProviderTradeOpened');
  return { id: String(opened?.args.agreementId), tx: tx.hash };
}

beforeAll(async () => {
  ({ park, indexer } = await startIndexedPark());
  directory = new ParkDirectory({
    'seller-plant': { address: park.seller.address, meters: {} },
    'buyer-plant': { address: park.buyer.address, meters: {} },
    'idle-plant': { address: Wallet.createRandom().address, meters: {} },
  });
  const demo = await generateDemoUsers(directory);
  for (const { username, password } of demo.logins) passwords[username] = password;
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  const config = authConfigSchema.parse({
    public_url: base,
    provider: {
      embedded: {
        users: {
          ...demo.users,
          newcomer: { password: await hashPassword(passwords.newcomer ?? '') },
        },
      },
    },
    session_hours: SESSION_HOURS,
    tokens: {
      'park-report': { role: 'operator', hash: TOKENS.report.hash },
      'node-red-buyer': { plant: 'buyer-plant', hash: TOKENS.buyer.hash },
      'one-hour': { role: 'operator', hash: TOKENS.hour.hash, expires: HOUR_ENDS.toISOString() },
    },
  });
  const auth = await startAuth({
    config,
    directory,
    logger: silentLogger,
    clock: () => Date.now() + skewMs,
  });
  negotiationDir = mkdtempSync(join(tmpdir(), 'eip-auth-negotiations-'));
  negotiations = await NegotiationLog.open(negotiationDir, directory, { retainDays: 3660 });
  api = await startApiServer({
    indexer,
    auth,
    negotiations,
    listen: { host: '127.0.0.1', port },
    logger: silentLogger,
    heartbeatMs: 100,
  });

  peer = await agreementTerms(park);
  await openAgreement(park, peer);
  await reportDelivery(park, peer, park.buyerMeter, peer.quantity, 1n);
  const settle = await park.market.settle(peer);
  await settle.wait();
  settleTx = settle.hash;
  ({ id: providerTradeId, tx: providerTradeTx } = await sellerBuysFromProvider());
  await reachHead();
}, 60_000);

afterAll(async () => {
  await api?.close();
  await negotiations?.close();
  if (negotiationDir) rmSync(negotiationDir, { recursive: true, force: true });
  await indexer?.stop();
  await park?.close();
});

/**
 * A new browser's sign-in up to the provider's redirect back to the gateway: the login form
 * posted with `username`'s password. The browser, and the callback URL it was sent to.
 */
async function reachCallback(
  username: string,
  browser = new Browser(),
): Promise<{ browser: Browser; callback: URL; authorization: URL }> {
  let authorization: URL | undefined;
  const toForm = await browser.follow(`${base}/auth/login?return=/dashboard`, {}, (next) => {
    if (next.pathname === '/oidc/auth') authorization = next;
    return false;
  });
  expect(toForm.last.response.status).toBe(200);
  const form = formOf(await toForm.last.response.text(), toForm.last.url);
  const body = new URLSearchParams({ username, password: passwords[username] ?? '' });
  const back = await browser.follow(
    form.action,
    { method: 'POST', body },
    (next) => next.pathname === '/auth/callback',
  );
  if (back.next === null || authorization === undefined) {
    throw new Error(`no redirect to the callback: ${back.last.response.status}`);
  }
  return { browser, callback: back.next, authorization };
}

async function signIn(username: string): Promise<Browser> {
  const { browser, callback } = await reachCallback(username);
  const response = await browser.request(callback);
  expect(response.status).toBe(303);
  expect(response.headers.get('location')).toBe('/dashboard');
  return browser;
}

async function get(
  browser: Browser,
  path: string,
  init?: RequestInit,
): Promise<{ status: number; body: Json }> {
  const response = await browser.request(`${base}${path}`, init);
  return { status: response.status, body: (await response.json()) as Json };
}

const ids = async (browser: Browser, path: string, init?: RequestInit) =>
  (await get(browser, path, init)).body.items?.map(
    (item) => item.id ?? item.agreementId ?? item.address,
  );

const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });

describe('signing in with the embedded provider', () => {
  it('takes a plant user through the code flow with PKCE to an opaque session cookie', async () => {
    const { browser, callback, authorization } = await reachCallback('buyer-plant');
    const asked = authorization.searchParams;
    expect(asked.get('response_type')).toBe('code');
    expect(asked.get('code_challenge_method')).toBe('S256');
    expect(asked.get('code_challenge')).toMatch(/^[\w-]{43}$/);
    expect(asked.get('state')).toBeTruthy();
    expect(asked.get('nonce')).toBeTruthy();
    expect(asked.get('scope')).toBe('openid profile');
    expect(callback.searchParams.get('state')).toBe(asked.get('state'));

    expect((await browser.request(callback)).status).toBe(303);
    const session = browser.setCookies.find(
      (line) => line.startsWith('eip_session=') && !line.includes('Max-Age=0'),
    );
    expect(session).toMatch(/^eip_session=[\w-]{43}; HttpOnly; SameSite=Lax; Path=\/$/);
    // No token reaches the browser: every cookie of ours is an id, none a JWT.
    expect(browser.setCookies.filter((line) => line.startsWith('eip_')).join()).not.toMatch(/eyJ/);

    const me = await get(browser, '/auth/me');
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({
      who: 'buyer-plant',
      role: 'plant',
      plant: 'buyer-plant',
      address: park.buyer.address,
    });
    expect(me.body.expiresAt).toBeGreaterThan(Date.now() / 1000 + SESSION_HOURS * 3600 - 60);
  });

  it('signs the operator in', async () => {
    const me = await get(await signIn('operator'), '/auth/me');
    expect(me.body).toMatchObject({
      who: 'operator',
      role: 'operator',
      plant: null,
      address: null,
    });
  });

  it('shows a labelled login form, and again with an alert after a wrong password', async () => {
    const browser = new Browser();
    const { last } = await browser.follow(`${base}/auth/login`);
    const html = await last.response.text();
    expect(last.response.headers.get('content-security-policy')).toContain(
      "frame-ancestors 'none'",
    );
    expect(html).toContain('<html lang="en">');
    expect(html).toMatch(
      /<label for="username">User name<\/label>\s*<input id="username"[^>]*autocomplete="username"/,
    );
    expect(html).toMatch(
      /<label for="password">Password<\/label>\s*<input id="password"[^>]*type="password"/,
    );
    const form = formOf(html, last.url);
    const wrong = await browser.request(form.action, {
      method: 'POST',
      body: new URLSearchParams({ username: 'buyer-plant', password: 'not-it' }),
    });
    expect(wrong.status).toBe(200);
    const again = await wrong.text();
    expect(again).toContain('<p class="alert" role="alert">Wrong user name or password.</p>');
    expect(again).toContain('value="buyer-plant"');
    expect(browser.cookie('eip_session')).toBeUndefined();
  });

  it('refuses with 403 a user the provider signs in but whose claims map to no role', async () => {
    const json = await reachCallback('newcomer');
    const refused = await json.browser.request(json.callback);
    expect(refused.status).toBe(403);
    expect(await refused.json()).toEqual({
      error: {
        code: 'FORBIDDEN',
        message:
          'newcomer: your account has no role in this park: the park operator gives it the claim ' +
          'eip_role=operator or eip_plant=<plant id>',
      },
    });
    expect(json.browser.cookie('eip_session')).toBeUndefined();

    const page = await reachCallback('newcomer');
    const html = await page.browser.request(page.callback, { headers: { accept: 'text/html' } });
    expect(html.status).toBe(403);
    expect(await html.text()).toContain('<h1>No access to this park</h1>');
  });
});

describe('what each caller sees', () => {
  let operator: Browser;
  let seller: Browser;
  let buyer: Browser;
  let idle: Browser;

  beforeAll(async () => {
    [operator, seller, buyer, idle] = (await Promise.all(
      ['operator', 'seller-plant', 'buyer-plant', 'idle-plant'].map(signIn),
    )) as [Browser, Browser, Browser, Browser];
  });

  it('agreements: a plant its own, with the provider too; the operator all', async () => {
    expect(await ids(operator, '/api/agreements')).toEqual([providerTradeId, idOf(peer)]);
    expect(await ids(seller, '/api/agreements')).toEqual([providerTradeId, idOf(peer)]);
    expect(await ids(buyer, '/api/agreements')).toEqual([idOf(peer)]);
    expect(await ids(idle, '/api/agreements')).toEqual([]);
    // Another party's list is empty, as for a party with no trades.
    expect(await ids(buyer, `/api/agreements?party=${park.seller.address}`)).toEqual([]);
    expect(await ids(buyer, `/api/agreements?party=${park.buyer.address}`)).toEqual([idOf(peer)]);
  });

  it("another plant's agreement by id is 404, exactly as an id that does not exist", async () => {
    const other = await get(buyer, `/api/agreements/${providerTradeId}`);
    const unknownId = `0x${'00'.repeat(32)}`;
    const unknown = await get(buyer, `/api/agreements/${unknownId}`);
    expect(other.status).toBe(404);
    expect(other.body).toEqual({
      error: { code: 'NOT_FOUND', message: `agreement ${providerTradeId} has not been indexed` },
    });
    expect(unknown.body).toEqual({
      error: { code: 'NOT_FOUND', message: `agreement ${unknownId} has not been indexed` },
    });
    expect((await get(seller, `/api/agreements/${providerTradeId}`)).status).toBe(200);
    expect((await get(operator, `/api/agreements/${providerTradeId}`)).status).toBe(200);
  });

  it('deliveries and settlements of its own agreements only', async () => {
    expect(await ids(buyer, '/api/deliveries')).toEqual([idOf(peer)]);
    expect(await ids(idle, '/api/deliveries')).toEqual([]);
    expect(await ids(idle, `/api/deliveries?agreement=${idOf(peer)}`)).toEqual([]);
    expect(await ids(buyer, '/api/settlements')).toEqual([idOf(peer)]);
    expect(await ids(idle, '/api/settlements')).toEqual([]);
    expect(await ids(idle, `/api/settlements?party=${park.buyer.address}`)).toEqual([]);
  });

  it("its own prosumer entry, balance and meters; nobody else's", async () => {
    expect(await ids(buyer, '/api/prosumers')).toEqual([park.buyer.address]);
    const own = await get(buyer, `/api/prosumers/${park.buyer.address}`);
    expect(own.body).toMatchObject({
      balance: (await park.token.balanceOf(park.buyer.address)).toString(),
      meters: [{ utility: 'biogas', meter: park.buyerMeter.address }],
    });
    expect((await get(buyer, `/api/prosumers/${park.seller.address}`)).status).toBe(404);
    expect(await ids(idle, '/api/prosumers')).toEqual([]);
    expect(await ids(operator, '/api/prosumers')).toEqual(
      expect.arrayContaining([
        park.seller.address,
        park.buyer.address,
        park.utilityProvider.address,
      ]),
    );
  });

  it("negotiations: a plant those it requested or was chosen for; its own counts beside the park's", async () => {
    const report = (n: number, fields: Partial<OutcomeReport>) => {
      const sent = outcomeReport({
        prosumer: 'seller-plant',
        counterpart: 'buyer-plant',
        negotiation_id: negotiationId(n),
        ...fields,
      });
      return negotiations.record(sent.prosumer, sent);
    };
    await report(1, {});
    await report(2, { counterpart: 'idle-plant', ...brokenOff('self') });
    await report(3, {
      prosumer: 'idle-plant',
      counterpart: null,
      outcome: 'no-counterpart',
      rounds: 0,
    });

    expect(await ids(operator, '/api/negotiations')).toEqual([3, 2, 1].map(negotiationId));
    expect(await ids(seller, '/api/negotiations')).toEqual([2, 1].map(negotiationId));
    expect(await ids(buyer, '/api/negotiations')).toEqual([negotiationId(1)]);
    expect(await ids(idle, '/api/negotiations')).toEqual([3, 2].map(negotiationId));
    // Another plant's list is empty, and its negotiation by id 404, as one never reported.
    expect(await ids(buyer, '/api/negotiations?party=seller-plant')).toEqual([]);
    const other = await get(buyer, `/api/negotiations/${negotiationId(2)}`);
    const unknown = await get(buyer, `/api/negotiations/${negotiationId(99)}`);
    expect(other.status).toBe(404);
    expect(other.body).toEqual({
      error: {
        code: 'NOT_FOUND',
        message: `negotiation ${negotiationId(2)} has not been reported by its parties`,
      },
    });
    expect(unknown.body).toEqual({
      error: {
        code: 'NOT_FOUND',
        message: `negotiation ${negotiationId(99)} has not been reported by its parties`,
      },
    });

    const summary = async (who: Browser) =>
      ((await get(who, '/api/negotiations/summary')).body.items ?? [])[0] as Json;
    const park = { requests: 3, unanswered: 1, agreed: 1, failed: 1, agreementRate: 0.5 };
    expect(await summary(operator)).toMatchObject({ park, own: null });
    expect(await summary(buyer)).toMatchObject({
      park,
      own: { requests: 1, agreed: 1, failed: 0, agreementRate: 1 },
    });
    expect(await summary(idle)).toMatchObject({
      park,
      own: { requests: 2, unanswered: 1, failed: 1, agreementRate: 0 },
    });
  });

  it('park-wide utility totals and the indexer status, as the operator sees them', async () => {
    expect((await get(buyer, '/api/utilities')).body).toEqual(
      (await get(operator, '/api/utilities')).body,
    );
    expect((await get(idle, '/api/status')).status).toBe(200);
  });

  it('in the explorer, only transactions and events that concern the plant', async () => {
    expect((await get(buyer, `/api/tx/${providerTradeTx}`)).status).toBe(404);
    const sellerView = await get(seller, `/api/tx/${providerTradeTx}`);
    expect(sellerView.status).toBe(200);
    const names = (view: Json) => (view.events as { name: string }[]).map((event) => event.name);
    // Settling pays the seller: the buyer sees the settlement, not the seller's payment.
    const buyerSettle = await get(buyer, `/api/tx/${settleTx}`);
    expect(names(buyerSettle.body)).toEqual(['AgreementSettled']);
    expect(names((await get(seller, `/api/tx/${settleTx}`)).body)).toEqual([
      'AgreementSettled',
      'Transfer',
    ]);
    expect((await get(idle, `/api/tx/${settleTx}`)).status).toBe(404);

    const tradeBlock = sellerView.body.block as number;
    expect((await get(buyer, `/api/blocks/${tradeBlock}`)).status).toBe(404);
    const blocks = (await get(buyer, '/api/blocks?limit=500')).body.items ?? [];
    const listed = blocks.flatMap((block) => block.transactions as string[]);
    expect(listed).toContain(settleTx);
    expect(listed).not.toContain(providerTradeTx);
    expect((await get(idle, '/api/blocks')).body).toEqual({ items: [], next: null });
    const paged = await get(buyer, '/api/blocks?limit=1');
    expect(paged.body.items).toHaveLength(1);
    expect(paged.body.next).toBe(String(blocks[0]?.number));
  });

  it('the event stream, live and replayed, carries only what the caller may see', async () => {
    const stream = (browser: Browser, headers: Record<string, string> = {}) =>
      openEventStream(`${base}/api/events`, {
        cookie: `eip_session=${browser.cookie('eip_session')}`,
        ...headers,
      });
    const all = await stream(operator);
    const own = await stream(buyer);
    let replayed: Awaited<ReturnType<typeof stream>> | undefined;
    try {
      expect(own.response.statusCode).toBe(200);
      const trade = await sellerBuysFromProvider();
      const next = await agreementTerms(park);
      await openAgreement(park, next);
      const opened = (events: { event: string; data: string }[]) =>
        events.some((e) => e.event === 'agreement' && e.data.includes(idOf(next)));
      await until("the new agreement on the plant's stream", () => opened(own.events));
      await until("the new agreement on the operator's stream", () => opened(all.events));
      await until('the blocks after them', () =>
        [own, all].every((s) => s.events.at(-1)?.event === 'block'),
      );
      const mentions = (events: { data: string }[], text: string) =>
        events.some((e) => e.data.includes(text));
      expect(mentions(all.events, trade.id)).toBe(true);
      expect(mentions(all.events, trade.tx)).toBe(true);
      expect(mentions(own.events, idOf(next))).toBe(true);
      expect(mentions(own.events, trade.id)).toBe(false);
      expect(mentions(own.events, trade.tx)).toBe(false);

      // Replay from before the provider trade: the plant gets its own agreement, not the trade.
      const first = all.events[0]?.id ?? '';
      const [epoch, seq] = first.split('-');
      replayed = await stream(buyer, { 'last-event-id': `${epoch}-${Number(seq) - 1}` });
      const replay = replayed;
      await until('the replay', () => replay.events.some((e) => e.event === 'block'));
      expect(replay.events.map((e) => e.event)).toEqual(['agreement', 'block']);
      expect(mentions(replay.events, idOf(next))).toBe(true);
      expect(mentions(replay.events, trade.id)).toBe(false);
    } finally {
      all.close();
      own.close();
      replayed?.close();
    }
  });
});

describe('refusals', () => {
  it('answers every /api route 401 without a session, before reading any parameter', async () => {
    const browser = new Browser();
    for (const path of [
      '/api/status',
      '/api/agreements?limit=0',
      `/api/agreements/${'0x'.padEnd(66, '1')}`,
      '/api/prosumers',
      '/api/blocks',
      '/auth/me',
    ]) {
      const { status, body } = await get(browser, path);
      expect({ path, status, body }).toEqual({
        path,
        status: 401,
        body: { error: { code: 'UNAUTHORIZED', message: 'not signed in: sign in at /auth/login' } },
      });
    }
    const events = await openEventStream(`${base}/api/events`);
    expect(events.response.statusCode).toBe(401);
    events.close();
    const forged = await get(browser, '/api/agreements', {
      headers: { cookie: 'eip_session=forged' },
    });
    expect(forged.status).toBe(401);
    // The challenge of RFC 6750, so a script knows to send an API token; no browser dialog.
    const challenge = await browser.request(`${base}/api/status`);
    expect(challenge.headers.get('www-authenticate')).toBe('Bearer realm="eip-gateway"');
  });

  it('refuses to send a signed-in browser on to another site', async () => {
    for (const target of ['//evil.example/', '/\\evil.example', 'https://evil.example/']) {
      const { status, body } = await get(
        new Browser(),
        `/auth/login?return=${encodeURIComponent(target)}`,
      );
      expect(status).toBe(400);
      expect(body.error).toMatchObject({
        code: 'INVALID_ARGUMENT',
        message: expect.stringContaining('return:'),
      });
    }
  });

  it('refuses a callback whose state was tampered with', async () => {
    const { browser, callback } = await reachCallback('buyer-plant');
    callback.searchParams.set('state', 'tampered');
    const response = await browser.request(callback);
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({
      error: {
        code: 'UNAUTHORIZED',
        message:
          'sign-in refused: invalid response encountered: unexpected "state" response parameter ' +
          'value; start again at /auth/login',
      },
    });
    expect(browser.cookie('eip_session')).toBeUndefined();
  });

  it('refuses a replayed callback, and a code redeemed twice', async () => {
    const { browser, callback } = await reachCallback('buyer-plant');
    expect((await browser.request(callback)).status).toBe(303);
    const replay = await browser.request(callback);
    expect(replay.status).toBe(400);
    expect(((await replay.json()) as Json).error).toMatchObject({
      message: expect.stringContaining('this browser has no sign-in in progress'),
    });
    // The same code under a new sign-in's state reaches the provider, which refuses it.
    const again = await browser.follow(
      `${base}/auth/login`,
      {},
      (next) => next.pathname === '/auth/callback',
    );
    const fresh = again.next as URL;
    const reused = new URL(callback);
    reused.searchParams.set('state', fresh.searchParams.get('state') ?? '');
    const refused = await browser.request(reused);
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as Json).error).toMatchObject({
      message: expect.stringContaining('sign-in refused: invalid_grant'),
    });
  });

  it('refuses a sign-in without PKCE: the provider requires it', async () => {
    const browser = new Browser();
    const start = await browser.follow(
      `${base}/auth/login`,
      {},
      (next) => next.pathname === '/oidc/auth',
    );
    const withoutPkce = start.next as URL;
    withoutPkce.searchParams.delete('code_challenge');
    withoutPkce.searchParams.delete('code_challenge_method');
    const back = await browser.follow(
      withoutPkce,
      {},
      (next) => next.pathname === '/auth/callback',
    );
    const callback = back.next as URL;
    expect(callback.searchParams.get('error')).toBe('invalid_request');
    const response = await browser.request(callback);
    expect(response.status).toBe(400);
    expect(((await response.json()) as Json).error).toMatchObject({
      message: expect.stringMatching(/^sign-in refused: invalid_request \(.*PKCE.*\)/),
    });
  });

  it('ends a session after session_hours', async () => {
    const browser = await signIn('seller-plant');
    expect((await get(browser, '/api/agreements')).status).toBe(200);
    skewMs = SESSION_HOURS * 3_600_000 + 1000;
    try {
      const expired = {
        error: {
          code: 'UNAUTHORIZED',
          message: `your session expired (sessions last ${SESSION_HOURS} h): sign in again at /auth/login`,
        },
      };
      expect(await get(browser, '/api/agreements')).toEqual({ status: 401, body: expired });
    } finally {
      skewMs = 0;
    }
    expect((await get(browser, '/auth/me')).status).toBe(401);
  });

  it('signs out by POST only, from this origin only', async () => {
    const browser = await signIn('buyer-plant');
    const byGet = await browser.request(`${base}/auth/logout`);
    expect(byGet.status).toBe(405);
    expect(byGet.headers.get('allow')).toBe('POST');
    const forged = await get(browser, '/auth/logout', {
      method: 'POST',
      headers: { origin: 'http://evil.example' },
    });
    expect(forged.status).toBe(403);
    expect((await get(browser, '/auth/me')).status).toBe(200);

    const stream = await openEventStream(`${base}/api/events`, {
      cookie: `eip_session=${browser.cookie('eip_session')}`,
    });
    expect(stream.response.statusCode).toBe(200);
    const out = await get(browser, '/auth/logout', { method: 'POST', headers: { origin: base } });
    expect(out.status).toBe(200);
    expect(out.body.signedOut).toBe(true);
    expect(out.body.providerSignOut).toMatch(new RegExp(`^${base}/oidc/session/end\\?`));
    expect((await get(browser, '/auth/me')).status).toBe(401);
    expect((await get(browser, '/api/agreements')).status).toBe(401);
    // An open stream ends with the session, at its next heartbeat.
    await until('the stream to end', () => stream.ended());
  });

  it('signs a browser out at the provider too, so the next sign-in asks for the password', async () => {
    const browser = await signIn('buyer-plant');
    const out = await browser.request(`${base}/auth/logout`, {
      method: 'POST',
      headers: { accept: 'text/html' },
    });
    expect(out.status).toBe(303);
    const question = await browser.follow(new URL(out.headers.get('location') ?? '', base));
    expect(question.last.response.status).toBe(200);
    const form = formOf(await question.last.response.text(), question.last.url);
    const done = await browser.follow(
      form.action,
      {
        method: 'POST',
        body: new URLSearchParams({ ...form.fields, logout: 'yes' }),
      },
      (next) => next.origin === base && next.pathname === '/',
    );
    expect(done.next?.pathname).toBe('/');
    const again = await browser.follow(`${base}/auth/login`);
    expect(again.last.url.pathname).toMatch(/^\/oidc\/interaction\//);
    expect(await again.last.response.text()).toContain('<label for="password">');
  });
});

describe('API tokens for machine clients', () => {
  /** A client that holds no cookie: a script with its token. */
  const script = () => new Browser();
  const unknown = {
    error: { code: 'UNAUTHORIZED', message: 'the API token is not known to this gateway' },
  };

  /** Paths whose answers differ between the operator and a plant. */
  const VIEWS = [
    '/api/agreements',
    '/api/deliveries',
    '/api/settlements',
    '/api/prosumers',
    '/api/blocks?limit=500',
  ];

  it("gives a token the view of a session with its role: the operator's, or its plant's", async () => {
    const [operator, buyer] = [await signIn('operator'), await signIn('buyer-plant')];
    for (const path of VIEWS) {
      const report = await get(script(), path, bearer(TOKENS.report.token));
      const own = await get(script(), path, bearer(TOKENS.buyer.token));
      expect({ path, ...report }).toEqual({ path, ...(await get(operator, path)) });
      expect({ path, ...own }).toEqual({ path, ...(await get(buyer, path)) });
    }
    expect(await ids(script(), '/api/agreements', bearer(TOKENS.report.token))).toContain(
      providerTradeId,
    );
    expect(await ids(script(), '/api/agreements', bearer(TOKENS.buyer.token))).not.toContain(
      providerTradeId,
    );
  });

  it("answers another plant's agreement 404 to a plant's token, as to its session", async () => {
    const buyer = bearer(TOKENS.buyer.token);
    expect(await get(script(), `/api/agreements/${providerTradeId}`, buyer)).toEqual({
      status: 404,
      body: {
        error: { code: 'NOT_FOUND', message: `agreement ${providerTradeId} has not been indexed` },
      },
    });
    expect((await get(script(), `/api/tx/${providerTradeTx}`, buyer)).status).toBe(404);
    expect((await get(script(), `/api/agreements/${idOf(peer)}`, buyer)).status).toBe(200);
    const report = bearer(TOKENS.report.token);
    expect((await get(script(), `/api/agreements/${providerTradeId}`, report)).status).toBe(200);
  });

  it('says at /auth/me whose token it is, and that it does not expire', async () => {
    expect((await get(script(), '/auth/me', bearer(TOKENS.report.token))).body).toEqual({
      who: 'park-report',
      role: 'operator',
      plant: null,
      address: null,
      expiresAt: null,
    });
    expect((await get(script(), '/auth/me', bearer(TOKENS.buyer.token))).body).toEqual({
      who: 'node-red-buyer',
      role: 'plant',
      plant: 'buyer-plant',
      address: park.buyer.address,
      expiresAt: null,
    });
  });

  it('refuses an unknown token and a malformed header with 401, on every route', async () => {
    const forged = `eipt_${'A'.repeat(43)}`;
    for (const path of ['/api/status', '/api/agreements', '/auth/me']) {
      expect(await get(script(), path, bearer(forged))).toEqual({ status: 401, body: unknown });
      // The hash, pasted where the token belongs, is no token either.
      expect((await get(script(), path, bearer(TOKENS.report.hash))).status).toBe(401);
    }
    const malformed = {
      error: {
        code: 'UNAUTHORIZED',
        message:
          'the Authorization header must be "Bearer <API token>" (eip-gateway token makes one)',
      },
    };
    for (const authorization of [
      `Basic ${Buffer.from(`park-report:${TOKENS.report.token}`).toString('base64')}`,
      'Bearer',
      `Bearer ${TOKENS.report.token} extra`,
      TOKENS.report.token,
      '',
    ]) {
      const answer = await get(script(), '/api/agreements', { headers: { authorization } });
      expect({ authorization, ...answer }).toEqual({ authorization, status: 401, body: malformed });
    }
    // The scheme is case-insensitive (RFC 9110).
    const lower = { headers: { authorization: `bearer ${TOKENS.report.token}` } };
    expect((await get(script(), '/api/status', lower)).status).toBe(200);
    const stream = await openEventStream(`${base}/api/events`, {
      authorization: `Bearer ${forged}`,
    });
    expect(stream.response.statusCode).toBe(401);
    stream.close();
  });

  it('lets the token decide when a request also carries a session cookie', async () => {
    const operator = await signIn('operator');
    const buyer = await signIn('buyer-plant');
    expect(await ids(operator, '/api/agreements', bearer(TOKENS.buyer.token))).toEqual(
      await ids(buyer, '/api/agreements'),
    );
    expect(await ids(operator, '/api/agreements', bearer(TOKENS.buyer.token))).not.toContain(
      providerTradeId,
    );
    expect((await get(operator, '/auth/me', bearer(TOKENS.buyer.token))).body.who).toBe(
      'node-red-buyer',
    );
    // A refused token does not fall back on the session.
    expect(await get(operator, '/api/agreements', bearer(`eipt_${'B'.repeat(43)}`))).toEqual({
      status: 401,
      body: unknown,
    });
    expect((await get(operator, '/api/agreements')).status).toBe(200);
  });

  it("streams events to a token's holder within its view", async () => {
    const stream = (token: string) =>
      openEventStream(`${base}/api/events`, { authorization: `Bearer ${token}` });
    const all = await stream(TOKENS.report.token);
    const own = await stream(TOKENS.buyer.token);
    try {
      expect(own.response.statusCode).toBe(200);
      const trade = await sellerBuysFromProvider();
      const next = await agreementTerms(park);
      await openAgreement(park, next);
      const mentions = (events: { data: string }[], text: string) =>
        events.some((e) => e.data.includes(text));
      await until('the new agreement on both streams', () =>
        [own, all].every((s) => mentions(s.events, idOf(next))),
      );
      expect(mentions(all.events, trade.id)).toBe(true);
      expect(mentions(own.events, trade.id)).toBe(false);
      expect(own.ended()).toBe(false);
    } finally {
      all.close();
      own.close();
    }
  });

  it('refuses a token from its expires on, and ends its open streams', async () => {
    const hour = bearer(TOKENS.hour.token);
    expect((await get(script(), '/auth/me', hour)).body).toMatchObject({
      who: 'one-hour',
      expiresAt: Math.floor(HOUR_ENDS.getTime() / 1000),
    });
    const stream = await openEventStream(`${base}/api/events`, hour.headers);
    expect(stream.response.statusCode).toBe(200);
    skewMs = 3_600_000 + 1000;
    try {
      expect(await get(script(), '/api/agreements', hour)).toEqual({
        status: 401,
        body: {
          error: {
            code: 'UNAUTHORIZED',
            message: `the API token "one-hour" expired at ${HOUR_ENDS.toISOString()}: eip-gateway token makes a new one`,
          },
        },
      });
      // Ended at its next heartbeat, as a stream ends with its session.
      await until('the stream to end', () => stream.ended());
      expect((await get(script(), '/api/agreements', bearer(TOKENS.report.token))).status).toBe(
        200,
      );
    } finally {
      skewMs = 0;
      stream.close();
    }
  });
});

describe('API tokens in the config', () => {
  const hash = newApiToken().hash;
  const configWith = (tokens: string) =>
    parseGatewayConfig(
      `broker: { credentials: credentials.yaml }\nplants: {}\nauth:\n  public_url: http://127.0.0.1:8080\n  provider: { issuer: http://127.0.0.1:8081/realm, client_id: dashboard }\n  tokens:\n${tokens}`,
      'gateway.yaml',
    );

  it('refuses a hash that is not a SHA-256 from eip-gateway token, naming its path', () => {
    expect(() =>
      configWith(`    node-red: { role: operator, hash: "${TOKENS.report.token}" }\n`),
    ).toThrow(
      'gateway.yaml: auth.tokens.node-red.hash: must be "sha256:" and 64 lowercase hex digits, as `eip-gateway token` prints: the hash of the token, never the token',
    );
    expect(() => configWith(`    node-red: { role: admin, hash: "${hash}" }\n`)).toThrow(
      'gateway.yaml: auth.tokens.node-red: must be { role: operator, hash } or { plant: <plant id>, hash }',
    );
    expect(() =>
      configWith(`    node-red: { role: operator, hash: "${hash}", expires: soon }\n`),
    ).toThrow('gateway.yaml: auth.tokens.node-red.expires: must be an ISO 8601 date');
    const dated = configWith(
      `    report: { role: operator, hash: "${hash}", expires: 2027-01-01 }\n`,
    );
    expect(dated.auth?.tokens.report?.expires).toBe(Date.UTC(2027, 0, 1));
  });

  it('refuses to start with a token of a plant not in the park, or one hash under two names', async () => {
    const start = (tokens: Record<string, unknown>) =>
      startAuth({
        config: authConfigSchema.parse({
          public_url: base,
          provider: { issuer: `${base}/oidc`, client_id: 'dashboard' },
          tokens,
        }),
        directory,
        logger: silentLogger,
      });
    await expect(start({ 'node-red': { plant: 'moon-base', hash } })).rejects.toThrow(
      'auth.tokens.node-red: plant "moon-base" is not in plants:',
    );
    await expect(
      start({ a: { role: 'operator', hash }, b: { plant: 'buyer-plant', hash } }),
    ).rejects.toThrow('auth.tokens.b: the same hash as auth.tokens.a');
  });
});

describe('claims to principals', () => {
  const mapping: ClaimMapping = {
    role: 'eip_role',
    operator_value: 'operator',
    plant: 'eip_plant',
    groups: 'groups',
    operator_group: 'eip-operator',
    plant_group_prefix: 'eip-plant-',
  };
  const map = (claims: Record<string, unknown>) => principalFromClaims(claims, mapping, directory);

  it('maps the role claim, the plant claim and groups', () => {
    expect(map({ eip_role: 'operator' })).toEqual({ role: 'operator' });
    expect(map({ groups: ['/eip-operator'] })).toEqual({ role: 'operator' });
    const buyer = { role: 'plant', plant: 'buyer-plant', address: park.buyer.address };
    expect(map({ eip_plant: 'buyer-plant' })).toEqual(buyer);
    expect(map({ groups: ['staff', 'eip-plant-buyer-plant'] })).toEqual(buyer);
    expect(map({ eip_plant: 'buyer-plant', eip_role: 'operator' })).toEqual({ role: 'operator' });
  });

  it('refuses what maps to nothing, to two plants, or to a plant not in the park', () => {
    expect(() => map({ eip_role: 'admin', eip_plant: 42 })).toThrow(/no role in this park/);
    expect(() => map({ eip_plant: 'buyer-plant', groups: ['eip-plant-seller-plant'] })).toThrow(
      'your account maps to several plants (buyer-plant, seller-plant)',
    );
    expect(() => map({ eip_plant: 'moon-base' })).toThrow(
      'your account is the staff of plant "moon-base", which is not in this park\'s directory',
    );
  });
});

describe('cookies', () => {
  it('are Secure and __Host- prefixed over https, so no sibling subdomain can plant one', () => {
    expect(new CookieJar(true).set('eip_session', 'id')).toBe(
      '__Host-eip_session=id; HttpOnly; SameSite=Lax; Path=/; Secure',
    );
    expect(new CookieJar(false).clear('eip_login')).toBe(
      'eip_login=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0',
    );
  });
});

describe('an API without sign-in', () => {
  it('is open only when asked with auth: null, and says so loudly at start', async () => {
    const logger = recordingLogger();
    const open = await startApiServer({
      indexer,
      auth: null,
      listen: { host: '127.0.0.1', port: 0 },
      logger,
    });
    try {
      expect(logger.entries).toContainEqual({
        level: 'warn',
        message: expect.stringMatching(/^API OPEN: no sign-in configured/),
      });
      expect((await fetch(`${open.url}/api/agreements`)).status).toBe(200);
    } finally {
      await open.close();
    }
  });
});
