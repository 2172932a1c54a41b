/**
 * The delivery oracle's bookkeeping with a fake sender (the real path is in service.test.ts
 * against anvil): a report that cannot reach the chain because the node is down stays stored
 * and goes out on a later tick, as does one ahead of the chain's clock; one the market refuses
 * as stale is marked posted, not resent.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Wallet } from 'ethers';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EipError } from '../../core/errors.js';
import { silentLogger } from '../../core/logger.js';
import { signDigest } from '../../core/messages/ecdsa.js';
import {
  type Agreement,
  marketDomain,
  structHash,
  typedDataDigest,
} from '../../core/messages/eip712.js';
import { agreementStructSchema } from '../../core/messages/schemas.js';
import type { Manifest } from '../../gateway/chain/manifest.js';
import type { TxJob, TxSender } from '../../gateway/chain/tx-sender.js';
import { ParkDirectory } from '../../gateway/park.js';
import type { AgreementRecord } from '../../gateway/relay/book.js';
import { DeliveryOracle } from '../../gateway/relay/oracle.js';
import type { RelayContext } from '../../gateway/relay/relay.js';
import { JsonStore } from '../../gateway/relay/store.js';

const MARKET = '0x5FbDB2315678afecb367f032d93F642f64180aa3';
const seller = new Wallet(Wallet.createRandom().privateKey);
const buyer = new Wallet(Wallet.createRandom().privateKey);
const meterKey = new Wallet(Wallet.createRandom().privateKey);
const market = {
  address: MARKET,
  unit: 'm3',
  providerSellsAt: 1n,
  providerBuysAt: 1n,
  provider: MARKET,
  gracePeriod: 3600,
};
const manifest = {
  chainId: 31337,
  block: 0,
  markets: { biogas: market, electricity: market, heat: market },
} as unknown as Manifest;
const domain = marketDomain(31337, MARKET);
const NOW_S = 1_800_000_000;

let dir: string;
let book: JsonStore<AgreementRecord>;
let sent: TxJob[];
let failures: EipError[];

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'eip-oracle-'));
  book = await JsonStore.open(dir);
  sent = [];
  failures = [];
});
afterEach(async () => {
  await book.close();
  rmSync(dir, { recursive: true, force: true });
});

function oracle(): DeliveryOracle {
  const sender = {
    send: async (job: TxJob) => {
      const failure = failures.shift();
      if (failure) throw failure;
      sent.push(job);
      return `0x${'11'.repeat(32)}`;
    },
  } as unknown as TxSender;
  const context: RelayContext = {
    book,
    sender,
    directory: new ParkDirectory({
      'plant-a': { address: seller.address, meters: {} },
      'plant-b': { address: buyer.address, meters: { 'gas-in': meterKey.address } },
    }),
    manifest,
    notifier: { status: () => undefined, delivered: () => undefined },
    logger: silentLogger,
    now: () => NOW_S * 1000,
    findEvent: async () => null,
  };
  return new DeliveryOracle(context);
}

async function openAgreement(): Promise<Agreement> {
  const terms: Agreement = {
    negotiationId: `0x${'01'.repeat(32)}`,
    seller: seller.address,
    buyer: buyer.address,
    quantity: 10_000n,
    unitPrice: 1n,
    deliveryStart: BigInt(NOW_S - 60),
    deliveryEnd: BigInt(NOW_S + 3600),
    transcriptHash: `0x${'ab'.repeat(32)}`,
    sellerNonce: 1n,
    sellerDeadline: BigInt(NOW_S + 600),
    buyerNonce: 1n,
    buyerDeadline: BigInt(NOW_S + 600),
  };
  const id = structHash('Agreement', terms);
  await book.put(id, {
    id,
    utility: 'biogas',
    terms: agreementStructSchema.encode(terms),
    signatures: { seller: `0x${'00'.repeat(65)}`, buyer: `0x${'00'.repeat(65)}` },
    seller: 'plant-a',
    buyer: 'plant-b',
    state: 'open',
    acceptedAtMs: 0,
    openTx: `0x${'22'.repeat(32)}`,
    openBlock: 1,
    reportTxs: [],
    reports: {},
  });
  return terms;
}

function report(terms: Agreement, delivered: bigint) {
  const value = {
    agreementId: structHash('Agreement', terms),
    delivered,
    measuredAt: BigInt(NOW_S),
    seq: 1n,
  };
  return {
    utility: 'biogas' as const,
    meter: 'gas-in',
    report: value,
    signature: signDigest(meterKey, typedDataDigest(domain, 'DeliveryReport', value)),
  };
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 20));

describe('the delivery oracle', () => {
  it('keeps a report the node could not take, and sends it on a later tick', async () => {
    const o = oracle();
    const terms = await openAgreement();
    failures.push(
      new EipError('IO_ERROR', 'the chain node could not be asked', { retryable: true }),
    );
    await o.report('plant-b', 'gas-in', report(terms, 4_000n));
    await settle();
    expect(sent).toHaveLength(0);
    const id = structHash('Agreement', terms);
    expect(book.get(id)?.reports.buyer?.posted).toBe(false);
    o.tick();
    await settle();
    expect(sent.map((j) => j.key)).toEqual([`report:${id}:buyer:4000`]);
  });

  it('keeps a report ahead of the chain clock and sends it again on a later tick', async () => {
    const o = oracle();
    const terms = await openAgreement();
    failures.push(
      new EipError('CHAIN_REVERTED', 'UtilityMarketMeasuredOutsideWindow(0x.., 1800000000)'),
    );
    await o.report('plant-b', 'gas-in', report(terms, 4_000n));
    await settle();
    o.tick();
    await settle();
    expect(sent).toHaveLength(1);
  });

  it('sends a report that arrived while an older one was being mined, after it', async () => {
    const o = oracle();
    const terms = await openAgreement();
    const id = structHash('Agreement', terms);
    await o.report('plant-b', 'gas-in', report(terms, 4_000n));
    await settle();
    expect(sent.map((j) => j.key)).toEqual([`report:${id}:buyer:4000`]);
    await o.report('plant-b', 'gas-in', report(terms, 6_000n));
    const mined = { kind: 'confirmed', hash: `0x${'33'.repeat(32)}`, blockNumber: 2 } as const;
    await o.outcome('report', id, 'buyer', '4000', { ...mined, receipt: {} as never });
    await settle();
    expect(book.get(id)?.reports.buyer?.posted).toBe(false);
    expect(sent.map((j) => j.key)).toEqual([`report:${id}:buyer:4000`, `report:${id}:buyer:6000`]);
  });

  it('marks a report the market already has as posted instead of resending it', async () => {
    const o = oracle();
    const terms = await openAgreement();
    failures.push(new EipError('CHAIN_REVERTED', 'UtilityMarketStaleReport(0x.., 4000, 4000)'));
    await o.report('plant-b', 'gas-in', report(terms, 4_000n));
    await settle();
    expect(book.get(structHash('Agreement', terms))?.reports.buyer?.posted).toBe(true);
    expect(sent).toHaveLength(0);
  });

  it('refuses a report from a meter the plant does not have, or signed by another key', async () => {
    const o = oracle();
    const terms = await openAgreement();
    await expect(o.report('plant-a', 'gas-in', report(terms, 1n))).rejects.toMatchObject({
      code: 'UNAUTHORIZED',
    });
    const forged = {
      ...report(terms, 1n),
      signature: signDigest(
        seller,
        typedDataDigest(domain, 'DeliveryReport', report(terms, 1n).report),
      ),
    };
    await expect(o.report('plant-b', 'gas-in', forged)).rejects.toMatchObject({
      code: 'INVALID_SIGNATURE',
    });
  });
});
