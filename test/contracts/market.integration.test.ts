/**
 * The contracts on a real chain (anvil from npm), driven the way the gateway will: typed ethers
 * bindings, and signatures made with core's EIP-712 types.
 */
import { Signature } from 'ethers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Agreement,
  assertSignedBy,
  type DeliveryReport,
  marketDomain,
  negotiationId,
  type Offer,
  offerStruct,
  structHash,
  transcriptHash,
} from '../../core/messages/eip712.js';
import { milli } from '../../core/units.js';
import {
  agreementTerms,
  now,
  openAgreement,
  type Park,
  PRICE,
  QUANTITY,
  reportDelivery,
  send,
  sign,
  startPark,
  WINDOW,
  warp,
} from './park.js';

let park: Park;

beforeAll(async () => {
  park = await startPark();
}, 60_000);

afterAll(async () => {
  await park?.close();
});

/**
 * The custom error a rejected call reverted with. ethers leaves a transaction's revert data
 * undecoded when gas estimation fails, so the binding's interface decodes it.
 */
async function revertName(call: Promise<unknown>): Promise<string> {
  try {
    await call;
  } catch (error) {
    const { data } = error as { data?: string };
    const decoded = data ? park.market.interface.parseError(data) : null;
    if (decoded) return decoded.name;
    throw error;
  }
  throw new Error('expected the call to revert');
}

async function balances() {
  const [seller, buyer, market] = await Promise.all([
    park.token.balanceOf(park.seller.address),
    park.token.balanceOf(park.buyer.address),
    park.token.balanceOf(park.manifest.markets.biogas.address),
  ]);
  return { seller, buyer, market };
}

const GRACE = 3600n;

describe('agreement life cycle on anvil', () => {
  it('hashes agreements exactly as core does', async () => {
    const terms = await agreementTerms(park);
    expect(await park.market.agreementIdOf(terms)).toBe(structHash('Agreement', terms));
  });

  it('records the negotiation, its signed offers and the agreement that concludes it', async () => {
    const { seller, buyer, market } = park;
    const id = negotiationId(seller.address, 'biogas', 7n);
    await send(market.connect(seller).requestNegotiation(7n, 0, QUANTITY, buyer.address));
    await send(market.connect(buyer).joinNegotiation(id));

    const offers: Offer[] = [];
    for (const [round, proposer, price] of [
      [0, seller, 40_000],
      [0, buyer, 30_000],
      [1, seller, 35_000],
    ] as const) {
      const offer = offerStruct({
        negotiationId: id,
        seller: seller.address,
        buyer: buyer.address,
        proposer: proposer.address,
        round,
        quantity: milli(100_000),
        price: milli(price),
        previous:
          offers.length === 0 ? `0x${'0'.repeat(64)}` : structHash('Offer', offers.at(-1) as Offer),
      });
      const signature = await sign(proposer, park.domain, 'Offer', offer);
      assertSignedBy(park.domain, 'Offer', offer, signature, proposer.address);
      await send(market.connect(proposer).postOffer(offer, signature));
      offers.push(offer);
    }
    expect(offers[2]?.unitPrice).toBe(PRICE);

    const terms = await agreementTerms(park, {
      negotiationId: id,
      transcriptHash: transcriptHash(offers),
    });
    await openAgreement(park, terms);
    const negotiation = await market.negotiations(id);
    expect(negotiation.state).toBe(3n); // Agreed
    expect(negotiation.lastOffer).toBe(transcriptHash(offers));
  });

  it('escrows, takes metered reports and pays the seller as soon as everything is delivered', async () => {
    const before = await balances();
    const terms = await agreementTerms(park);
    await openAgreement(park, terms);
    const escrowed = await balances();
    expect(before.buyer - escrowed.buyer).toBe(QUANTITY * PRICE);
    expect(escrowed.market - before.market).toBe(QUANTITY * PRICE);

    await warp(park.provider, 600n);
    await reportDelivery(park, terms, park.buyerMeter, 60_000n, 1n);
    await reportDelivery(park, terms, park.sellerMeter, 100_000n, 1n);
    expect(await revertName(park.market.settle(terms))).toBe('UtilityMarketSettlementTooEarly');
    await warp(park.provider, 600n);
    await reportDelivery(park, terms, park.buyerMeter, 100_000n, 2n);
    await send(park.market.settle(terms));

    const after = await balances();
    expect(after.seller - before.seller).toBe(QUANTITY * PRICE);
    expect(after.buyer).toBe(escrowed.buyer);
    expect(after.market).toBe(before.market);
    expect(await revertName(park.market.settle(terms))).toBe('UtilityMarketAgreementNotOpen');
  });

  it('pays partial delivery after the window and grace period, and refunds the rest', async () => {
    const before = await balances();
    const terms = await agreementTerms(park);
    await openAgreement(park, terms);
    await warp(park.provider, 60n);
    await reportDelivery(park, terms, park.buyerMeter, 40_000n, 1n);
    await warp(park.provider, WINDOW + GRACE);
    await send(park.market.settle(terms));
    const after = await balances();
    expect(after.seller - before.seller).toBe(40_000n * PRICE);
    expect(before.buyer - after.buyer).toBe(40_000n * PRICE);
    expect(after.market).toBe(before.market);
  });

  it('refunds everything when no report arrives by the end of the window plus grace', async () => {
    const before = await balances();
    const terms = await agreementTerms(park);
    await openAgreement(park, terms);
    await warp(park.provider, WINDOW);
    expect(await revertName(park.market.settle(terms))).toBe('UtilityMarketSettlementTooEarly');
    await warp(park.provider, GRACE);
    await send(park.market.settle(terms));
    expect(await balances()).toEqual(before);
  });

  it('settles a batch of agreements in one transaction', async () => {
    const before = await balances();
    const batch: Agreement[] = [];
    for (let i = 0; i < 5; i++) {
      const terms = await agreementTerms(park);
      await openAgreement(park, terms);
      batch.push(terms);
    }
    await warp(park.provider, 60n);
    await reportDelivery(park, batch[0] as Agreement, park.buyerMeter, QUANTITY, 1n);
    await warp(park.provider, WINDOW + GRACE);
    await send(park.market.settleBatch(batch));
    const after = await balances();
    expect(after.seller - before.seller).toBe(QUANTITY * PRICE);
    expect(after.market).toBe(before.market);
  });
});

describe('signatures and replays on anvil', () => {
  it('refuses a replayed agreement', async () => {
    const terms = await agreementTerms(park);
    await openAgreement(park, terms);
    expect(await revertName(openAgreement(park, terms))).toBe('UtilityMarketNonceUsed');
  });

  it('refuses an agreement whose buyer signature was made by someone else', async () => {
    const terms = await agreementTerms(park);
    const sellerSignature = await sign(park.seller, park.domain, 'Agreement', terms);
    const forged = await sign(park.operator, park.domain, 'Agreement', terms);
    expect(await revertName(park.market.openAgreement(terms, sellerSignature, forged))).toBe(
      'UtilityMarketInvalidSignature',
    );
  });

  it('refuses signatures made for another chain or another market', async () => {
    const terms = await agreementTerms(park);
    for (const domain of [
      marketDomain(1, park.manifest.markets.biogas.address),
      marketDomain(park.manifest.chainId, park.manifest.markets.heat.address),
    ]) {
      const sellerSignature = await sign(park.seller, domain, 'Agreement', terms);
      const buyerSignature = await sign(park.buyer, domain, 'Agreement', terms);
      expect(
        await revertName(park.market.openAgreement(terms, sellerSignature, buyerSignature)),
      ).toBe('UtilityMarketInvalidSignature');
    }
  });

  it('refuses the malleable (high-s) twin of a valid signature', async () => {
    const terms = await agreementTerms(park);
    const sellerSignature = await sign(park.seller, park.domain, 'Agreement', terms);
    const valid = Signature.from(await sign(park.buyer, park.domain, 'Agreement', terms));
    const n = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
    const highS = `0x${valid.r.slice(2)}${(n - BigInt(valid.s)).toString(16).padStart(64, '0')}${(valid.v === 27 ? 28 : 27).toString(16)}`;
    expect(await revertName(park.market.openAgreement(terms, sellerSignature, highS))).toBe(
      'UtilityMarketInvalidSignature',
    );
  });

  it('refuses a replayed delivery report and reports of unregistered meters', async () => {
    const terms = await agreementTerms(park);
    await openAgreement(park, terms);
    await warp(park.provider, 60n);
    const report: DeliveryReport = {
      agreementId: structHash('Agreement', terms),
      delivered: 30_000n,
      measuredAt: await now(park.provider),
      seq: 1n,
    };
    const signature = await sign(park.buyerMeter, park.domain, 'DeliveryReport', report);
    await send(park.market.reportDelivery(terms, report, signature));
    expect(await revertName(park.market.reportDelivery(terms, report, signature))).toBe(
      'UtilityMarketStaleReport',
    );
    expect(await revertName(reportDelivery(park, terms, park.operator, 50_000n, 3n))).toBe(
      'UtilityMarketUnknownMeter',
    );
  });

  it("pays what the seller's meter measured when the buyer's meter stays silent", async () => {
    const before = await balances();
    const terms = await agreementTerms(park);
    await openAgreement(park, terms);
    await warp(park.provider, 60n);
    await reportDelivery(park, terms, park.sellerMeter, QUANTITY, 1n);
    // Complete by the seller's figure, but only the buyer's meter can confirm early settlement.
    expect(await revertName(park.market.settle(terms))).toBe('UtilityMarketSettlementTooEarly');
    await warp(park.provider, WINDOW + GRACE);
    await send(park.market.settle(terms));
    expect((await balances()).seller - before.seller).toBe(QUANTITY * PRICE);
  });
});
