/**
 * The indexer against a real anvil: agreements opened, metered and settled by the park helpers
 * are folded exactly; an indexer that catches up ends where one that followed live does; a
 * reorganisation is undone; the node going away is one warning and no double counting.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JsonRpcProvider, Network, NonceManager, Wallet } from 'ethers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UtilityToken__factory } from '../../contracts/types/index.js';
import { silentLogger } from '../../core/logger.js';
import { type Agreement, structHash } from '../../core/messages/eip712.js';
import {
  accountJson,
  agreementJson,
  blockJson,
  deliveryJson,
  settlementJson,
  txJson,
  utilityJson,
} from '../../gateway/api/views.js';
import { ANVIL_CHAIN_ID, ANVIL_DEV_KEY, startAnvil } from '../../gateway/chain/anvil.js';
import { deployMarkets } from '../../gateway/chain/deploy.js';
import { Indexer, type IndexerEvents } from '../../gateway/indexer/indexer.js';
import type { ReadModel } from '../../gateway/indexer/model.js';
import {
  agreementTerms,
  now,
  openAgreement,
  type Park,
  PRICE,
  QUANTITY,
  reportDelivery,
  send,
  startPark,
  WINDOW,
  warp,
} from '../contracts/park.js';
import { recordingLogger } from '../support/recording-logger.js';
import { until } from '../support/until.js';

const GRACE = 3600n;
const ALL = { limit: 100_000 };

let park: Park;
let follower: Indexer;
const seen: { [K in keyof IndexerEvents]: IndexerEvents[K][0][] } = {
  agreement: [],
  delivery: [],
  settlement: [],
  block: [],
  reorg: [],
};

function indexer(options: { batchBlocks?: number } = {}): Indexer {
  return new Indexer({
    provider: park.provider,
    manifest: park.manifest,
    logger: silentLogger,
    pollMs: 20,
    ...options,
  });
}

async function reachHead(...indexers: Indexer[]): Promise<void> {
  const head = await park.provider.getBlockNumber();
  await until(`the indexers to reach block ${head}`, () =>
    indexers.every((i) => i.status().indexedBlock >= head),
  );
}

const unnamed = () => null;

/** Everything the model answers, as the API's JSON. */
function snapshot(model: ReadModel) {
  const blocks = model.blocks(ALL).items;
  return {
    agreements: model.agreements({}, ALL).items.map((a) => agreementJson(a, unnamed)),
    deliveries: model.deliveries({}, ALL).items.map(deliveryJson),
    settlements: model.settlements({}, ALL).items.map((s) => settlementJson(s, unnamed)),
    blocks: blocks.map(blockJson),
    transactions: blocks.flatMap((b) =>
      b.transactions.map((hash) => txJson(model.transaction(hash) ?? fail(hash))),
    ),
    accounts: model.accounts().map((a) => accountJson(a, unnamed)),
    utilities: model.utilities().map(utilityJson),
  };
}

function fail(what: string): never {
  throw new Error(`missing ${what}`);
}

const idOf = (terms: Agreement) => structHash('Agreement', terms);

beforeAll(async () => {
  park = await startPark();
  follower = indexer();
  follower.on('agreement', (a) => seen.agreement.push(a));
  follower.on('delivery', (d) => seen.delivery.push(d));
  follower.on('settlement', (s) => seen.settlement.push(s));
  follower.on('block', (b) => seen.block.push(b));
  follower.on('reorg', (r) => seen.reorg.push(r));
  follower.start();
}, 60_000);

afterAll(async () => {
  await follower?.stop();
  await park?.close();
});

describe('Indexer', () => {
  let full: Agreement;
  let partial: Agreement;
  let active: Agreement;
  let settleTx: string;

  beforeAll(async () => {
    const { buyerMeter, sellerMeter, market } = park;
    full = await agreementTerms(park);
    await openAgreement(park, full);
    await reportDelivery(park, full, sellerMeter, QUANTITY, 1n);
    await reportDelivery(park, full, buyerMeter, QUANTITY, 1n);
    const settling = await market.settle(full);
    settleTx = settling.hash;
    await settling.wait();

    // Later agreements open under new tariffs: the earlier one keeps those it opened under.
    const { providerSellsAt, providerBuysAt } = park.manifest.markets.biogas;
    await send(market.setTariffs(providerSellsAt - 10n ** 15n, providerBuysAt + 10n ** 15n));

    partial = await agreementTerms(park);
    await openAgreement(park, partial);
    await reportDelivery(park, partial, sellerMeter, 60_000n, 1n);
    await reportDelivery(park, partial, buyerMeter, 40_000n, 1n);
    await warp(park.provider, WINDOW + GRACE);
    await send(market.settle(partial));

    active = await agreementTerms(park);
    await openAgreement(park, active);
    await reportDelivery(park, active, buyerMeter, 10_000n, 1n);
    // A little ahead: the window may not start before the block the trade is mined in, which
    // on a busy machine can come a second after the one read here.
    const start = (await now(park.provider)) + 5n;
    const buying = market.connect(park.buyer);
    const tariff = await market.providerSellsAt();
    await send(buying.tradeWithProvider(1, 5_000n, start, start + 3600n, tariff));
    await reachHead(follower);
  }, 60_000);

  it('folds a fully delivered and a partly delivered settlement exactly', () => {
    const { model } = follower;
    const settled = model.agreement(idOf(full));
    expect(settled?.delivered).toEqual({ buyer: QUANTITY, seller: QUANTITY });
    expect(settled?.reports).toBe(2);
    expect(settled?.settlement).toMatchObject({
      delivered: QUANTITY,
      paidToSeller: QUANTITY * PRICE,
      refundedToBuyer: 0n,
      escrow: QUANTITY * PRICE,
    });
    expect(settled?.settlement?.at.tx).toBe(settleTx);

    const refunded = model.agreement(idOf(partial));
    expect(refunded?.delivered).toEqual({ buyer: 40_000n, seller: 60_000n });
    expect(refunded?.settlement).toMatchObject({
      delivered: 40_000n,
      paidToSeller: 40_000n * PRICE,
      refundedToBuyer: 60_000n * PRICE,
    });
    const { paidToSeller, refundedToBuyer } = refunded?.settlement ?? fail('settlement');
    expect(paidToSeller + refundedToBuyer).toBe(refunded?.escrow);
    expect(refunded?.escrow).toBe(QUANTITY * PRICE);
  });

  it('keeps the tariffs each agreement opened under, and every change of them', () => {
    const { model } = follower;
    const { providerSellsAt, providerBuysAt } = park.manifest.markets.biogas;
    const changed = {
      providerSellsAt: providerSellsAt - 10n ** 15n,
      providerBuysAt: providerBuysAt + 10n ** 15n,
    };
    expect(model.agreement(idOf(full))?.tariffs).toEqual({ providerSellsAt, providerBuysAt });
    expect(model.agreement(idOf(partial))?.tariffs).toEqual(changed);
    const biogas = model.utilities().find((u) => u.utility === 'biogas');
    expect(biogas?.tariffs).toEqual(changed);
    // The constructor's TariffsChanged repeats the manifest's tariffs: no period of its own.
    expect(biogas?.tariffHistory).toEqual([
      { providerSellsAt, providerBuysAt, since: null },
      { ...changed, since: expect.objectContaining({ block: expect.any(Number) }) },
    ]);
    const since = biogas?.tariffHistory[1]?.since ?? fail('since');
    expect(since.block).toBeLessThan(model.agreement(idOf(partial))?.opened.block ?? 0);
    expect(model.utilities().find((u) => u.utility === 'heat')?.tariffHistory).toHaveLength(1);
  });

  it('keeps open agreements with their latest report and marks provider trades', () => {
    const { model } = follower;
    const open = model.agreement(idOf(active));
    expect(open?.settlement).toBeNull();
    expect(open?.lastReport).toMatchObject({ side: 'buyer', delivered: 10_000n, payable: 10_000n });
    const trades = model.agreements({ state: 'active' }, ALL).items;
    expect(trades.map((a) => a.id)).toContain(idOf(active));
    const trade = trades.find((a) => a.providerTrade !== null);
    expect(trade?.providerTrade).toEqual({ prosumer: park.buyer.address, prosumerRole: 'buyer' });
    expect(trade?.terms.seller).toBe(park.utilityProvider.address);
    expect(trade?.terms.quantity).toBe(5_000n);
    expect(model.agreements({ state: 'settled' }, ALL).items.map((a) => a.id)).toEqual([
      idOf(partial),
      idOf(full),
    ]);
  });

  it('has the balances the token reports, and the volumes per prosumer and utility', async () => {
    const { model } = follower;
    for (const wallet of [park.seller, park.buyer, park.utilityProvider, park.operator]) {
      expect(model.account(wallet.address)?.balance ?? 0n, wallet.address).toBe(
        await park.token.balanceOf(wallet.address),
      );
    }
    const biogas = model.utilities().find((u) => u.utility === 'biogas');
    expect(biogas?.escrowed).toBe(await park.token.balanceOf(park.manifest.markets.biogas.address));
    const delivered = QUANTITY + 40_000n;
    expect(biogas).toMatchObject({
      active: 2,
      settled: 2,
      contracted: 3n * QUANTITY + 5_000n,
      delivered,
      paidToSellers: delivered * PRICE,
      refundedToBuyers: 60_000n * PRICE,
      provider: park.utilityProvider.address,
    });
    expect(model.account(park.seller.address)?.volumes.biogas).toEqual({
      boughtContracted: 0n,
      boughtDelivered: 0n,
      paid: 0n,
      soldContracted: 3n * QUANTITY,
      soldDelivered: delivered,
      received: delivered * PRICE,
    });
    expect(model.account(park.buyer.address)?.volumes.biogas).toMatchObject({
      boughtContracted: 3n * QUANTITY + 5_000n,
      boughtDelivered: delivered,
      paid: delivered * PRICE,
    });
    const buyer = model.account(park.buyer.address);
    expect([...(buyer?.prosumerOf ?? [])]).toEqual(['biogas']);
    expect(buyer?.meters).toEqual([{ utility: 'biogas', meter: park.buyerMeter.address }]);
    expect([...(model.account(park.utilityProvider.address)?.providerOf ?? [])]).toEqual([
      'biogas',
      'electricity',
      'heat',
    ]);
  });

  it('records blocks and the transactions that touched the contracts, decoded', async () => {
    const { model } = follower;
    const tx = model.transaction(settleTx);
    expect(tx).toMatchObject({ from: park.operator.address, to: park.market.target });
    expect(tx?.events.map((e) => e.name)).toEqual(['AgreementSettled', 'Transfer']);
    expect(tx?.events[0]).toMatchObject({
      contract: 'UtilityMarket',
      utility: 'biogas',
      args: {
        agreementId: idOf(full),
        delivered: QUANTITY.toString(),
        paidToSeller: (QUANTITY * PRICE).toString(),
        refundedToBuyer: '0',
      },
    });
    const chainBlock = await park.provider.getBlock(tx?.block ?? fail('tx'));
    expect(model.block(tx?.block ?? 0)).toEqual({
      number: chainBlock?.number,
      hash: chainBlock?.hash,
      parentHash: chainBlock?.parentHash,
      timestamp: chainBlock?.timestamp,
      txCount: 1,
      transactions: [settleTx],
    });
  });

  it('pages newest first with a cursor', () => {
    const { model } = follower;
    const all = model.agreements({}, ALL).items.map((a) => a.id);
    const first = model.agreements({}, { limit: 2 });
    expect(first.items.map((a) => a.id)).toEqual(all.slice(0, 2));
    const second = model.agreements({}, { limit: 10, before: first.next ?? fail('next') });
    expect(second.items.map((a) => a.id)).toEqual(all.slice(2));
    expect(second.next).toBeNull();
    const deliveries = model.deliveries({ agreement: idOf(partial) }, ALL).items;
    expect(deliveries.map((d) => [d.side, d.delivered, d.payable])).toEqual([
      ['buyer', 40_000n, 40_000n],
      ['seller', 60_000n, 60_000n],
    ]);
  });

  it('emitted each change once, as it was folded', () => {
    expect(seen.settlement.map((s) => s.agreementId)).toEqual([idOf(full), idOf(partial)]);
    expect(seen.delivery).toHaveLength(5);
    const ids = seen.agreement.map((a) => a.id);
    for (const terms of [full, partial, active]) expect(ids).toContain(idOf(terms));
    const numbers = seen.block.map((b) => b.number);
    expect(new Set(numbers).size).toBe(numbers.length);
    expect(numbers).toEqual(
      follower.model
        .blocks(ALL)
        .items.map((b) => b.number)
        .reverse(),
    );
  });

  /** An indexer started now catches up to the same state the follower reached live. */
  async function expectCatchUpEqualsFollower(options: { batchBlocks?: number } = {}) {
    const late = indexer(options);
    late.start();
    try {
      await reachHead(follower, late);
      expect(snapshot(late.model)).toEqual(snapshot(follower.model));
    } finally {
      await late.stop();
    }
  }

  it('ends in the same state catching up in small ranges as following live', async () => {
    await expectCatchUpEqualsFollower({ batchBlocks: 3 });
  });

  /** Opens an agreement on a branch that `revert` then abandons; returns its id. */
  async function doomedAgreement(): Promise<{ id: string; fork: string }> {
    const fork = (await park.provider.send('evm_snapshot', [])) as string;
    const doomed = await agreementTerms(park);
    await openAgreement(park, doomed);
    await reachHead(follower);
    expect(follower.model.agreement(idOf(doomed))).toBeDefined();
    return { id: idOf(doomed), fork };
  }

  it('rewinds when the chain gets shorter than what it indexed', async () => {
    const doomed = await doomedAgreement();
    const reorgs = seen.reorg.length;
    await park.provider.send('evm_revert', [doomed.fork]);
    await until('the rewind', () => seen.reorg.length > reorgs);
    expect(follower.model.agreement(doomed.id)).toBeUndefined();
    const kept = await agreementTerms(park);
    await openAgreement(park, kept);
    await reachHead(follower);
    expect(follower.model.agreement(idOf(kept))).toBeDefined();
    await expectCatchUpEqualsFollower();
  });

  it('rewinds when the next block is not the child of the last indexed one', async () => {
    const doomed = await doomedAgreement();
    const reorgs = seen.reorg.length;
    // Stopped while the branch is swapped, the indexer sees only a longer, different chain.
    await follower.stop();
    await park.provider.send('evm_revert', [doomed.fork]);
    const kept = await agreementTerms(park);
    await openAgreement(park, kept);
    await park.provider.send('evm_mine', []);
    follower.start();
    await until('the new branch', () => follower.model.agreement(idOf(kept)) !== undefined);
    expect(seen.reorg.length).toBe(reorgs + 1);
    expect(follower.model.agreement(doomed.id)).toBeUndefined();
    await expectCatchUpEqualsFollower();
  });

  it('refuses a node serving another chain than the manifest names', async () => {
    const logger = recordingLogger();
    const wrong = new Indexer({
      provider: park.provider,
      manifest: { ...park.manifest, chainId: 1 },
      logger,
      pollMs: 20,
    });
    wrong.start();
    try {
      await until('the indexer to give up', () => wrong.status().lastError !== null);
      expect(wrong.status().lastError).toMatch(/chain 31337.*chain 1\b/);
      expect(logger.entries.filter((e) => e.level === 'error')).toHaveLength(1);
    } finally {
      await wrong.stop();
    }
  });
});

describe('Indexer with the chain node going away', () => {
  it('warns once, retries, resumes without folding twice, and re-indexes after a restart', async () => {
    const stateFile = join(mkdtempSync(join(tmpdir(), 'eip-indexer-')), 'chain.json');
    let anvil = await startAnvil({ stateFile });
    const port = Number(new URL(anvil.url).port);
    const provider = new JsonRpcProvider(anvil.url, undefined, {
      cacheTimeout: -1,
      // No network detection: it would retry and print while the node is down.
      staticNetwork: Network.from(ANVIL_CHAIN_ID),
    });
    const logger = recordingLogger();
    let running: Indexer | undefined;
    let restarted: Indexer | undefined;
    try {
      const operator = new Wallet(ANVIL_DEV_KEY, provider);
      const manifest = await deployMarkets({ signer: new NonceManager(operator) });
      const token = UtilityToken__factory.connect(manifest.token, operator);
      const holder = Wallet.createRandom().address;
      const first = await send(token.mint(holder, 5n));
      expect(first?.status).toBe(1);
      running = new Indexer({ provider, manifest, logger, pollMs: 20, maxBackoffMs: 100 });
      running.start();
      const indexed = running;
      await until('the first mint', () => indexed.model.account(holder)?.balance === 5n);

      await anvil.stop();
      await until(
        'failed reads',
        () => logger.entries.filter((e) => e.level === 'debug').length >= 3,
      );
      expect(indexed.status()).toMatchObject({ nodeReachable: false });
      expect(indexed.status().lastError).toBeTruthy();
      expect(logger.entries.filter((e) => e.level === 'warn')).toHaveLength(1);

      anvil = await startAnvil({ stateFile, port });
      await send(token.mint(holder, 7n));
      await until('the second mint', () => indexed.model.account(holder)?.balance === 12n);
      expect(indexed.status()).toMatchObject({ nodeReachable: true, lastError: null });
      expect(
        logger.entries.some((e) => e.level === 'info' && /answers again/.test(e.message)),
      ).toBe(true);
      const transfers = indexed.model
        .blocks(ALL)
        .items.flatMap((b) => b.transactions)
        .flatMap((h) => indexed.model.transaction(h)?.events ?? [])
        .filter((e) => e.name === 'Transfer');
      expect(transfers).toHaveLength(2);

      // A restarted gateway indexes again from the manifest's block, the chain being the record.
      restarted = new Indexer({ provider, manifest, logger: silentLogger, pollMs: 20 });
      restarted.start();
      const again = restarted;
      await until('the re-index', () => again.model.account(holder)?.balance === 12n);
    } finally {
      await restarted?.stop();
      await running?.stop();
      provider.destroy();
      await anvil.stop();
    }
  }, 60_000);
});
