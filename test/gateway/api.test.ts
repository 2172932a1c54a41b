/**
 * The HTTP API on an indexer of a real anvil park: every route with real data, parameters refused
 * with their names, and the live event stream delivering a settlement as it happens and resuming
 * from Last-Event-ID.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../core/logger.js';
import { type Agreement, structHash } from '../../core/messages/eip712.js';
import { parkNames } from '../../gateway/api/names.js';
import { type ApiServer, startApiServer } from '../../gateway/api/server.js';
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
} from '../contracts/park.js';
import { openEventStream } from '../support/event-stream.js';
import { startIndexedPark } from '../support/indexed-park.js';
import {
  brokenOff,
  counterpartReport,
  negotiationId,
  type OutcomeReport,
  outcomeReport,
} from '../support/negotiation-reports.js';
import { until } from '../support/until.js';

let park: Park;
let indexer: Indexer;
let api: ApiServer;
let settled: Agreement;
let active: Agreement;
let settleTx: string;
let directory: ParkDirectory;
let negotiations: NegotiationLog;
let negotiationDir: string;

const idOf = (terms: Agreement) => structHash('Agreement', terms);

interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly body: Record<string, unknown> & { items?: Record<string, unknown>[] };
}

async function get(path: string, init: RequestInit = {}): Promise<Answer> {
  const response = await fetch(`${api.url}${path}`, { ...init, signal: AbortSignal.timeout(5000) });
  return {
    status: response.status,
    headers: response.headers,
    body: (await response.json()) as Answer['body'],
  };
}

async function reachHead(): Promise<void> {
  const head = await park.provider.getBlockNumber();
  await until(`the indexer to reach block ${head}`, () => indexer.status().indexedBlock >= head);
}

/** Opens an agreement, has the buyer's meter confirm all of it, and settles; the settle tx. */
async function deliverInFull(terms: Agreement): Promise<string> {
  await openAgreement(park, terms);
  await reportDelivery(park, terms, park.buyerMeter, terms.quantity, 1n);
  const tx = await park.market.settle(terms);
  await tx.wait();
  return tx.hash;
}

beforeAll(async () => {
  ({ park, indexer } = await startIndexedPark());
  directory = new ParkDirectory({
    digester: { address: park.seller.address, meters: {} },
    brewery: { address: park.buyer.address, meters: {} },
  });
  // The open API (no sign-in): what it serves; test/gateway/auth.test.ts narrows it per caller.
  negotiationDir = mkdtempSync(join(tmpdir(), 'eip-api-negotiations-'));
  negotiations = await NegotiationLog.open(negotiationDir, directory, { retainDays: 3660 });
  api = await startApiServer({
    indexer,
    auth: null,
    negotiations,
    nameOf: parkNames(directory, () => indexer.model.utilities()),
    listen: { host: '127.0.0.1', port: 0 },
    logger: silentLogger,
    heartbeatMs: 100,
  });
  settled = await agreementTerms(park);
  settleTx = await deliverInFull(settled);
  active = await agreementTerms(park);
  await openAgreement(park, active);
  await reportDelivery(park, active, park.sellerMeter, 25_000n, 1n);
  await reachHead();
}, 60_000);

afterAll(async () => {
  await api?.close();
  await negotiations?.close();
  if (negotiationDir) rmSync(negotiationDir, { recursive: true, force: true });
  await indexer?.stop();
  await park?.close();
});

describe('JSON routes', () => {
  it('GET /api/status: indexed and head block, chain and contracts', async () => {
    const head = await park.provider.getBlockNumber();
    const { status, headers, body } = await get('/api/status');
    expect(status).toBe(200);
    expect(headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(headers.get('access-control-allow-origin')).toBeNull();
    expect(body).toMatchObject({
      chainId: 31337,
      startBlock: park.manifest.block,
      indexedBlock: head,
      headBlock: head,
      lag: 0,
      nodeReachable: true,
      lastError: null,
      contracts: { token: park.manifest.token, markets: { biogas: park.market.target } },
    });
  });

  it('GET /api/agreements: newest first, filtered, paged with a cursor', async () => {
    const all = await get('/api/agreements');
    expect(all.body.items?.map((a) => a.id)).toEqual([idOf(active), idOf(settled)]);
    expect(all.body.next).toBeNull();
    expect(all.body.items?.[0]).toMatchObject({
      state: 'active',
      kind: 'peer',
      utility: 'biogas',
      unit: 'm3',
      quantity: QUANTITY.toString(),
      unitPrice: PRICE.toString(),
      escrow: (QUANTITY * PRICE).toString(),
      seller: park.seller.address,
      sellerName: 'digester',
      buyer: park.buyer.address,
      buyerName: 'brewery',
      tariffs: {
        providerSellsAt: park.manifest.markets.biogas.providerSellsAt.toString(),
        providerBuysAt: park.manifest.markets.biogas.providerBuysAt.toString(),
      },
      delivered: { buyer: null, seller: '25000', payable: '25000' },
      lastReport: { side: 'seller', delivered: '25000', quantity: QUANTITY.toString() },
      settlement: null,
    });
    const ids = async (query: string) =>
      (await get(`/api/agreements?${query}`)).body.items?.map((a) => a.id);
    expect(await ids('state=settled')).toEqual([idOf(settled)]);
    expect(await ids('state=active&utility=biogas')).toEqual([idOf(active)]);
    expect(await ids('utility=heat')).toEqual([]);
    expect(await ids(`party=${park.seller.address.toLowerCase()}`)).toHaveLength(2);
    expect(await ids(`party=${park.operator.address}`)).toEqual([]);
    const first = await get('/api/agreements?limit=1');
    expect(first.body.items?.map((a) => a.id)).toEqual([idOf(active)]);
    expect(first.body.next).toMatch(/^\d+:\d+$/);
    expect(await ids(`limit=1&before=${first.body.next}`)).toEqual([idOf(settled)]);
  });

  it('GET /api/agreements/:id: delivered against contracted, paid, refunded and the tx', async () => {
    const { status, body } = await get(`/api/agreements/${idOf(settled)}`);
    expect(status).toBe(200);
    expect(body).toMatchObject({
      id: idOf(settled),
      state: 'settled',
      seller: park.seller.address,
      buyer: park.buyer.address,
      delivered: { buyer: QUANTITY.toString(), seller: null, payable: QUANTITY.toString() },
      settlement: {
        delivered: QUANTITY.toString(),
        paidToSeller: (QUANTITY * PRICE).toString(),
        refundedToBuyer: '0',
        tx: settleTx,
      },
    });
    const missing = await get(`/api/agreements/0x${'00'.repeat(32)}`);
    expect(missing.status).toBe(404);
    expect(missing.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(missing.body).toEqual({
      error: { code: 'NOT_FOUND', message: `agreement 0x${'00'.repeat(32)} has not been indexed` },
    });
  });

  it('GET /api/deliveries and /api/settlements', async () => {
    const deliveries = await get(`/api/deliveries?agreement=${idOf(active)}`);
    expect(deliveries.body.items).toEqual([
      expect.objectContaining({ agreementId: idOf(active), side: 'seller', delivered: '25000' }),
    ]);
    expect((await get('/api/deliveries')).body.items).toHaveLength(2);
    const settlements = await get('/api/settlements');
    expect(settlements.body.items).toEqual([
      expect.objectContaining({
        agreementId: idOf(settled),
        paidToSeller: (QUANTITY * PRICE).toString(),
        refundedToBuyer: '0',
        tx: settleTx,
      }),
    ]);
    expect(
      (await get(`/api/settlements?party=${park.utilityProvider.address}`)).body.items,
    ).toEqual([]);
  });

  it('GET /api/prosumers and /api/prosumers/:address: balances and volumes', async () => {
    const list = await get('/api/prosumers');
    const seller = list.body.items?.find((p) => p.address === park.seller.address);
    expect(seller).toMatchObject({
      name: 'digester',
      balance: (await park.token.balanceOf(park.seller.address)).toString(),
      prosumerOf: ['biogas'],
      providerOf: [],
      volumes: {
        biogas: {
          sold: {
            contracted: (2n * QUANTITY).toString(),
            delivered: QUANTITY.toString(),
            received: (QUANTITY * PRICE).toString(),
          },
          bought: { contracted: '0', delivered: '0', paid: '0' },
        },
      },
    });
    const one = await get(`/api/prosumers/${park.buyer.address.toLowerCase()}`);
    expect(one.body).toMatchObject({
      address: park.buyer.address,
      balance: (await park.token.balanceOf(park.buyer.address)).toString(),
      meters: [{ utility: 'biogas', meter: park.buyerMeter.address }],
    });
    expect((await get(`/api/prosumers/0x${'12'.repeat(20)}`)).status).toBe(404);
    // The main provider by its role; an account the park does not name, by none.
    const named = (address: string) => list.body.items?.find((p) => p.address === address)?.name;
    expect(named(park.utilityProvider.address)).toBe('provider');
    const nameOf = parkNames(new ParkDirectory({}), () => indexer.model.utilities());
    expect(nameOf(park.seller.address)).toBeNull();
    expect(nameOf(park.utilityProvider.address.toLowerCase())).toBe('provider');
  });

  it('GET /api/utilities: park-wide volumes and the tariffs', async () => {
    const { body } = await get('/api/utilities');
    expect(body.items?.map((u) => u.utility)).toEqual(['biogas', 'electricity', 'heat']);
    const biogas = park.manifest.markets.biogas;
    expect(body.items?.[0]).toMatchObject({
      name: 'Biogas / natural gas',
      unit: 'm3',
      market: biogas.address,
      provider: biogas.provider,
      tariffs: {
        providerSellsAt: biogas.providerSellsAt.toString(),
        providerBuysAt: biogas.providerBuysAt.toString(),
      },
      tariffHistory: [
        {
          providerSellsAt: biogas.providerSellsAt.toString(),
          providerBuysAt: biogas.providerBuysAt.toString(),
          since: null,
        },
      ],
      agreements: { active: 1, settled: 1 },
      contracted: (2n * QUANTITY).toString(),
      delivered: QUANTITY.toString(),
      paidToSellers: (QUANTITY * PRICE).toString(),
      refundedToBuyers: '0',
      escrowed: (await park.token.balanceOf(biogas.address)).toString(),
    });
  });

  it('GET /api/blocks, /api/blocks/:number and /api/tx/:hash: the explorer', async () => {
    const page = await get('/api/blocks?limit=2');
    const [newer, second] = (page.body.items ?? []) as { number: number }[];
    expect(page.body.items).toHaveLength(2);
    expect(page.body.next).toBe(String(second?.number));
    const older = await get(`/api/blocks?limit=1&before=${page.body.next}`);
    const [oldest] = (older.body.items ?? []) as { number: number }[];
    expect(oldest?.number).toBeLessThan(second?.number ?? 0);

    const tx = await get(`/api/tx/${settleTx}`);
    expect(tx.body).toMatchObject({
      hash: settleTx,
      from: park.operator.address,
      to: park.market.target,
      events: [
        { name: 'AgreementSettled', contract: 'UtilityMarket', utility: 'biogas' },
        {
          name: 'Transfer',
          contract: 'UtilityToken',
          utility: null,
          args: {
            from: park.market.target,
            to: park.seller.address,
            value: (QUANTITY * PRICE).toString(),
          },
        },
      ],
    });
    const block = await get(`/api/blocks/${tx.body.block}`);
    expect(block.body).toMatchObject({ number: tx.body.block, txCount: 1 });
    expect(block.body.transactions).toEqual([tx.body]);
    expect((await get(`/api/blocks/${newer?.number}`)).status).toBe(200);
    expect((await get('/api/blocks/999999')).status).toBe(404);
    expect((await get(`/api/tx/0x${'ab'.repeat(32)}`)).status).toBe(404);
  });
});

describe('errors', () => {
  it.each([
    ['/api/agreements?limit=0', 'limit'],
    ['/api/agreements?limit=ten', 'limit'],
    ['/api/agreements?state=open', 'state'],
    ['/api/agreements?utility=water', 'utility'],
    ['/api/agreements?party=0x1234', 'party'],
    ['/api/agreements?before=yesterday', 'before'],
    ['/api/agreements?colour=red', 'colour'],
    ['/api/agreements/0x1234', 'id'],
    ['/api/deliveries?agreement=42', 'agreement'],
    ['/api/settlements?party=nobody', 'party'],
    ['/api/prosumers/0xnot', 'address'],
    ['/api/blocks?before=-1', 'before'],
    ['/api/blocks/latest', 'number'],
    ['/api/tx/0xzz', 'hash'],
    ['/api/status?verbose=1', 'verbose'],
    ['/api/events?since=1', 'since'],
  ])('%s is refused naming %s', async (path, parameter) => {
    const { status, headers, body } = await get(path);
    expect(status).toBe(400);
    expect(headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(body.error).toMatchObject({ code: 'INVALID_ARGUMENT', parameter });
    expect((body.error as { message: string }).message).toContain(parameter);
  });

  it('answers an unknown route 404 and another method 405 with Allow', async () => {
    const unknown = await get('/api/nothing');
    expect(unknown.status).toBe(404);
    expect(unknown.body).toEqual({
      error: { code: 'NOT_FOUND', message: 'no route /api/nothing' },
    });
    const post = await get('/api/agreements', { method: 'POST', body: '{}' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET');
    expect(post.body.error).toMatchObject({ code: 'METHOD_NOT_ALLOWED' });
  });
});

describe('GET /api/events', () => {
  it('streams a settlement as it happens, and resumes from Last-Event-ID', async () => {
    const live = await openEventStream(`${api.url}/api/events`);
    let resumed: Awaited<ReturnType<typeof openEventStream>> | undefined;
    try {
      expect(live.response.statusCode).toBe(200);
      expect(live.response.headers['content-type']).toBe('text/event-stream; charset=utf-8');
      const terms = await agreementTerms(park);
      const tx = await deliverInFull(terms);
      await until('the settlement on the stream', () =>
        live.events.some((e) => e.event === 'settlement'),
      );
      const settlement = live.events.find((e) => e.event === 'settlement');
      expect(JSON.parse(settlement?.data ?? '{}')).toMatchObject({
        agreementId: idOf(terms),
        delivered: QUANTITY.toString(),
        paidToSeller: (QUANTITY * PRICE).toString(),
        refundedToBuyer: '0',
        tx,
      });
      await until('the block after it', () => live.events.at(-1)?.event === 'block');
      expect(live.events.map((e) => e.event)).toEqual(
        expect.arrayContaining(['agreement', 'delivery', 'settlement', 'block']),
      );
      await until('a heartbeat', () => live.comments.includes('heartbeat'));
      const lastId = live.events.at(-1)?.id as string;
      expect(lastId).toMatch(/^[0-9a-f]+-\d+$/);
      live.close();

      // Missed while disconnected, replayed on reconnection.
      const missed = await agreementTerms(park);
      await openAgreement(park, missed);
      await reachHead();
      resumed = await openEventStream(`${api.url}/api/events`, { 'last-event-id': lastId });
      const replay = resumed;
      await until('the replay', () => replay.events.some((e) => e.event === 'block'));
      expect(replay.events.map((e) => e.event)).toEqual(['agreement', 'block']);
      expect(JSON.parse(replay.events[0]?.data ?? '{}')).toMatchObject({
        id: idOf(missed),
        state: 'active',
      });
      expect(live.events.map((e) => e.id)).not.toContain(replay.events[0]?.id);
    } finally {
      live.close();
      resumed?.close();
    }
  });

  it('tells a client whose id it cannot resume from to refetch', async () => {
    const stale = await openEventStream(`${api.url}/api/events`, { 'last-event-id': 'beef-7' });
    try {
      await until('the reset', () => stale.events.length > 0);
      expect(stale.events[0]).toMatchObject({ event: 'reset', data: '{"reason":"unknown"}' });
    } finally {
      stale.close();
    }
  });

  it('ends every stream when the server closes', async () => {
    const own = await startApiServer({
      indexer,
      auth: null,
      listen: { host: '127.0.0.1', port: 0 },
      logger: silentLogger,
    });
    const client = await openEventStream(`${own.url}/api/events`);
    // Without a negotiation log, its routes say so rather than answer empty.
    const none = await fetch(`${own.url}/api/negotiations/summary`);
    expect(none.status).toBe(503);
    expect(await none.json()).toMatchObject({ error: { code: 'NOT_CONFIGURED' } });
    await own.close();
    await until('the stream to end', () => client.ended());
  });
});

describe('negotiations', () => {
  /** An hour ago: the log keeps what ended within its retention. */
  const T0 = Date.now() - 3_600_000;
  const report = (n: number, fields: Partial<OutcomeReport> = {}) =>
    outcomeReport({
      prosumer: 'digester',
      counterpart: 'brewery',
      negotiation_id: negotiationId(n),
      rounds: 11,
      started_at_ms: T0 + 1_000 * n,
      ended_at_ms: T0 + 1_000 * n + 500,
      ...fields,
    });

  beforeAll(async () => {
    await negotiations.record('digester', report(1));
    const broken = report(2, brokenOff('counterpart'));
    await negotiations.record('digester', broken);
    await negotiations.record('brewery', counterpartReport(broken));
    await negotiations.record('digester', report(3, { utility: 'heat' }));
  });

  it('GET /api/negotiations: newest first, filtered, paged', async () => {
    const all = await get('/api/negotiations');
    expect(all.body.items?.map((n) => n.id)).toEqual([3, 2, 1].map(negotiationId));
    expect(all.body.items?.[1]).toEqual({
      id: negotiationId(2),
      utility: 'biogas',
      requester: 'digester',
      responder: 'brewery',
      seller: 'digester',
      buyer: 'brewery',
      outcome: 'no-agreement',
      reason: 'deadline',
      endedBy: 'brewery',
      rounds: 11,
      startedAtMs: T0 + 2_000,
      endedAtMs: T0 + 2_500,
      reported: { digester: 'no-agreement', brewery: 'no-agreement' },
    });
    const first = await get('/api/negotiations?limit=2');
    expect(first.body.next).toBe('2');
    const rest = await get(`/api/negotiations?limit=2&before=${first.body.next}`);
    expect(rest.body.items?.map((n) => n.id)).toEqual([negotiationId(1)]);
    const failed = await get('/api/negotiations?outcome=no-agreement&utility=biogas&party=brewery');
    expect(failed.body.items?.map((n) => n.id)).toEqual([negotiationId(2)]);
    expect((await get(`/api/negotiations/${negotiationId(1)}`)).body).toMatchObject({
      outcome: 'agreed',
    });
    expect((await get(`/api/negotiations/${negotiationId(9)}`)).status).toBe(404);
    const bad = await get('/api/negotiations?outcome=maybe');
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ error: { code: 'INVALID_ARGUMENT', parameter: 'outcome' } });
  });

  it('GET /api/negotiations/summary: the agreement rate per utility', async () => {
    const { body } = await get('/api/negotiations/summary');
    expect(body.retainDays).toBe(3660);
    expect(body.items?.map((u) => u.utility)).toEqual(['biogas', 'electricity', 'heat']);
    expect(body.items?.[0]).toEqual({
      utility: 'biogas',
      park: {
        requests: 2,
        unanswered: 0,
        agreed: 1,
        failed: 1,
        pending: 0,
        agreementRate: 0.5,
        meanRoundsToAgreement: 11,
        reasons: { deadline: 1 },
      },
      // The operator has no plant of its own.
      own: null,
    });
    expect(body.items?.[2]).toMatchObject({ park: { agreed: 1, agreementRate: 1 } });
  });
});
