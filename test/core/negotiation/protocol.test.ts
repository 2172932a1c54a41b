import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Role } from '../../../core/negotiation/issues.js';
import {
  type AfterDeadline,
  type NegotiationSetup,
  negotiate,
  type Outcome,
} from '../../../core/negotiation/protocol.js';
import { type Psi, psi, sigma } from '../../../core/negotiation/strategy.js';
import { type Milli, milli, quantize } from '../../../core/units.js';
import { bilateral, TABLE1 } from './setup.js';

// The biogas grid that `bilateral` uses: 1 token per m3, 1 litre.
const TICKS = { price: milli(1000), quantity: milli(1) };
const fixedQuantity = psi({ ip: 100, rp: 100, dl: 1e6, cr: 1 });

/** Quantity settles at round 0, so the outcome is the price issue's alone. */
function priceOnly(
  seller: Psi,
  buyer: Psi,
  extra: Partial<NegotiationSetup> = {},
  afterDeadline: AfterDeadline = 'break-off',
): NegotiationSetup {
  const base = bilateral(
    { price: seller, quantity: fixedQuantity },
    { price: buyer, quantity: fixedQuantity },
    extra,
  );
  return {
    ...base,
    seller: { ...base.seller, afterDeadline },
    buyer: { ...base.buyer, afterDeadline },
  };
}

/** The offer paths as the seed defines them, on the tick grid, rounded toward rp. */
const sellerPath = (p: Psi, t: number) =>
  Math.max(quantize(sigma(p, t), TICKS.price, 'down'), p.rp * 1000);
const buyerPath = (p: Psi, t: number) =>
  Math.min(quantize(sigma(p, t), TICKS.price, 'up'), p.rp * 1000);

/** First round at which the price paths cross, searching rounds 0..last; null if never. */
function firstCrossing(seller: Psi, buyer: Psi, last: number): number | null {
  for (let t = 0; t <= last; t++) if (sellerPath(seller, t) <= buyerPath(buyer, t)) return t;
  return null;
}

const whole = (min: number, max: number) => fc.integer({ min, max });
const sellerPsi = fc
  .record({
    a: whole(0, 200),
    b: whole(0, 200),
    dl: fc.double({ min: 0.5, max: 60, noNaN: true }),
    cr: fc.double({ min: 0.1, max: 10, noNaN: true }),
  })
  .map(({ a, b, dl, cr }) => psi({ ip: Math.max(a, b), rp: Math.min(a, b), dl, cr }));
const buyerPsi = fc
  .record({
    a: whole(0, 200),
    b: whole(0, 200),
    dl: fc.double({ min: 0.5, max: 60, noNaN: true }),
    cr: fc.double({ min: 0.1, max: 10, noNaN: true }),
  })
  .map(({ a, b, dl, cr }) => psi({ ip: Math.min(a, b), rp: Math.max(a, b), dl, cr }));

function expectAlternation(outcome: Outcome, opener: Role) {
  const responder: Role = opener === 'seller' ? 'buyer' : 'seller';
  outcome.transcript.forEach((move, i) => {
    expect(move.by).toBe(i % 2 === 0 ? opener : responder);
    expect(move.round).toBe(Math.floor(i / 2));
    expect(move.kind).toBe(
      i === outcome.transcript.length - 1 && outcome.kind === 'agreement' ? 'accept' : 'offer',
    );
  });
}

describe('the seed case study (section 5, Table 1)', () => {
  const outcome = negotiate(bilateral(TABLE1.seller, TABLE1.buyer));

  it('agrees on 35 tokens/m3 at step 11 and on 100 m3 at step 12', () => {
    expect(outcome).toMatchObject({
      kind: 'agreement',
      round: 12,
      price: 35_000,
      quantity: 100_000,
      settled: {
        price: { round: 11, by: 'seller', value: 35_000 },
        quantity: { round: 12, by: 'buyer', value: 100_000 },
      },
    });
  });

  it('records every offer: both agents each step, seller first, prices along Eq. 1', () => {
    expectAlternation(outcome, 'seller');
    expect(outcome.transcript).toHaveLength(26);
    const sellerPrices = outcome.transcript
      .filter((m) => m.by === 'seller')
      .map((m) => m.price / 1000);
    const buyerPrices = outcome.transcript
      .filter((m) => m.by === 'buyer')
      .map((m) => m.price / 1000);
    expect(sellerPrices).toEqual([80, 66, 61, 56, 53, 50, 47, 44, 42, 39, 37, 35, 35]);
    expect(buyerPrices).toEqual([20, 21, 21, 22, 23, 24, 26, 28, 30, 33, 35, 35, 35]);
    // Prosumer 0 does not concede on quantity; Prosumer 1 does.
    expect(
      new Set(outcome.transcript.filter((m) => m.by === 'seller').map((m) => m.quantity)),
    ).toEqual(new Set([100_000]));
    expect(outcome.transcript.at(-1)).toMatchObject({
      by: 'buyer',
      kind: 'accept',
      accepted: ['quantity'],
    });
  });
});

describe('agreement if and only if the concession paths cross before both deadlines', () => {
  it('break-off: agrees at the first crossing no later than both deadlines, else breaks off', () => {
    fc.assert(
      fc.property(
        sellerPsi,
        buyerPsi,
        fc.constantFrom<Role>('seller', 'buyer'),
        (seller, buyer, opener) => {
          const outcome = negotiate(priceOnly(seller, buyer, { opener }));
          const crossing = firstCrossing(seller, buyer, Math.floor(Math.min(seller.dl, buyer.dl)));
          expectAlternation(outcome, opener);
          if (crossing === null) {
            expect(outcome).toMatchObject({
              kind: 'no-agreement',
              reason: 'deadline',
              round: Math.floor(Math.min(seller.dl, buyer.dl)) + 1,
            });
            // Whoever reports the break-off is past its own deadline (if both are, the opener reports).
            const brokenOffBy = outcome.kind === 'no-agreement' ? outcome.brokenOffBy : null;
            expect((brokenOffBy === 'seller' ? seller : buyer).dl).toBeLessThan(outcome.round);
            return;
          }
          expect(outcome.kind).toBe('agreement');
          if (outcome.kind !== 'agreement') return;
          expect(outcome.settled.price.round).toBe(crossing);
          // The agreed price is acceptable to both at that step.
          expect(outcome.price).toBeGreaterThanOrEqual(sellerPath(seller, crossing));
          expect(outcome.price).toBeLessThanOrEqual(buyerPath(buyer, crossing));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('stand: agents keep offering rp after their deadlines, so a later crossing still agrees', () => {
    fc.assert(
      fc.property(sellerPsi, buyerPsi, (seller, buyer) => {
        const outcome = negotiate(priceOnly(seller, buyer, {}, 'stand'));
        const crossing = firstCrossing(seller, buyer, Math.ceil(Math.max(seller.dl, buyer.dl)) + 1);
        if (crossing === null) {
          expect(outcome).toMatchObject({
            kind: 'no-agreement',
            reason: 'reserves-apart',
            brokenOffBy: null,
          });
          expect(seller.rp).toBeGreaterThan(buyer.rp);
        } else {
          expect(outcome).toMatchObject({
            kind: 'agreement',
            settled: { price: { round: crossing } },
          });
        }
      }),
      { numRuns: 300 },
    );
  });

  it('reserves that overlap always agree when both stand', () => {
    fc.assert(
      fc.property(sellerPsi, buyerPsi, (seller, buyer) => {
        fc.pre(seller.rp <= buyer.rp);
        expect(negotiate(priceOnly(seller, buyer, {}, 'stand')).kind).toBe('agreement');
      }),
    );
  });

  it('two issues: agrees iff each issue crosses before its own deadlines, at the later crossing', () => {
    const quantityCrossing = (s: Psi, b: Psi, last: number) => {
      for (let t = 0; t <= last; t++) {
        const supply = Math.min(quantize(sigma(s, t), TICKS.quantity, 'up'), s.rp * 1000);
        const ask = Math.max(quantize(sigma(b, t), TICKS.quantity, 'down'), b.rp * 1000);
        if (supply >= ask && supply > 0 && ask > 0) return t;
      }
      return null;
    };
    const qty = (low: number, high: number) =>
      fc.record({
        a: whole(low, high),
        b: whole(low, high),
        dl: fc.double({ min: 0.5, max: 40, noNaN: true }),
        cr: fc.double({ min: 0.2, max: 5, noNaN: true }),
      });
    fc.assert(
      fc.property(sellerPsi, buyerPsi, qty(1, 100), qty(1, 100), (sp, bp, sq, bq) => {
        // The buyer's bound (its ip) is at least anything the seller offers, so it never binds.
        const sellerQty = psi({
          ip: Math.min(sq.a, sq.b),
          rp: Math.max(sq.a, sq.b),
          dl: sq.dl,
          cr: sq.cr,
        });
        const buyerQty = psi({ ip: 100, rp: Math.min(bq.a, bq.b), dl: bq.dl, cr: bq.cr });
        const outcome = negotiate(
          bilateral({ price: sp, quantity: sellerQty }, { price: bp, quantity: buyerQty }),
        );
        const cPrice = firstCrossing(sp, bp, Math.floor(Math.min(sp.dl, bp.dl)));
        const cQty = quantityCrossing(
          sellerQty,
          buyerQty,
          Math.floor(Math.min(sellerQty.dl, buyerQty.dl)),
        );
        if (cPrice === null || cQty === null) {
          expect(outcome.kind).toBe('no-agreement');
        } else {
          expect(outcome).toMatchObject({
            kind: 'agreement',
            round: Math.max(cPrice, cQty),
            settled: { price: { round: cPrice }, quantity: { round: cQty } },
          });
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('protocol details', () => {
  const seller = psi({ ip: 80, rp: 20, dl: 20, cr: 2 });
  const buyer = psi({ ip: 20, rp: 80, dl: 20, cr: 0.5 });

  it('is deterministic: the same inputs give the same transcript', () => {
    fc.assert(
      fc.property(sellerPsi, buyerPsi, (s, b) => {
        expect(negotiate(priceOnly(s, b))).toEqual(negotiate(priceOnly(s, b)));
      }),
      { numRuns: 50 },
    );
  });

  it('a settled issue stays fixed in every later offer', () => {
    const outcome = negotiate(
      bilateral(
        { price: seller, quantity: { ip: 100, rp: 100, dl: 20, cr: 1 } },
        { price: buyer, quantity: { ip: 150, rp: 0, dl: 40, cr: 1 } },
      ),
    );
    expect(outcome.kind).toBe('agreement');
    expect(outcome.settled).toMatchObject({ price: { round: 11 }, quantity: { round: 14 } });
    const priceRound = outcome.settled.price?.round ?? -1;
    for (const move of outcome.transcript.filter((m) => m.round > priceRound))
      expect(move.price).toBe(35_000);
  });

  it('breaks off with no agreement when the reserves never meet', () => {
    const outcome = negotiate(
      priceOnly(psi({ ip: 80, rp: 60, dl: 10, cr: 1 }), psi({ ip: 20, rp: 40, dl: 12, cr: 1 })),
    );
    expect(outcome).toMatchObject({
      kind: 'no-agreement',
      reason: 'deadline',
      brokenOffBy: 'seller',
      round: 11,
    });
    expect(outcome.transcript).toHaveLength(22);
  });

  it('an agent past its deadline cannot have its old offer accepted', () => {
    // The buyer's deadline is 5; the seller concedes to the buyer's standing 50 only at round 6.
    const outcome = negotiate(
      priceOnly(psi({ ip: 80, rp: 20, dl: 12, cr: 1 }), psi({ ip: 50, rp: 50, dl: 5, cr: 1 })),
    );
    expect(outcome).toMatchObject({
      kind: 'no-agreement',
      reason: 'deadline',
      brokenOffBy: 'buyer',
      round: 6,
    });
  });

  it('stops at maxRounds', () => {
    const outcome = negotiate(
      priceOnly(
        psi({ ip: 80, rp: 20, dl: 1000, cr: 1 }),
        psi({ ip: 20, rp: 80, dl: 1000, cr: 0.01 }),
        { maxRounds: 5 },
      ),
    );
    expect(outcome).toMatchObject({ kind: 'no-agreement', reason: 'round-limit', round: 4 });
    expect(outcome.transcript).toHaveLength(10);
  });

  it('the buyer may open', () => {
    const outcome = negotiate(priceOnly(seller, buyer, { opener: 'buyer' }));
    expectAlternation(outcome, 'buyer');
    expect(outcome.transcript[0]).toMatchObject({ by: 'buyer', price: 20_000 });
  });

  it('a buyer does not take more than it wants, and nobody agrees on nothing', () => {
    const outcome = negotiate(
      bilateral(
        { price: { ip: 30, rp: 30, dl: 10, cr: 1 }, quantity: { ip: 200, rp: 200, dl: 10, cr: 1 } },
        { price: { ip: 30, rp: 30, dl: 10, cr: 1 }, quantity: { ip: 150, rp: 150, dl: 10, cr: 1 } },
      ),
    );
    // The buyer refuses 200 m3; the seller then accepts the buyer's 150.
    expect(outcome).toMatchObject({
      kind: 'agreement',
      quantity: 150_000,
      settled: { quantity: { by: 'seller', round: 1 } },
    });
    const nothing = negotiate(
      bilateral(
        { price: { ip: 30, rp: 30, dl: 3, cr: 1 }, quantity: { ip: 0, rp: 0, dl: 3, cr: 1 } },
        { price: { ip: 30, rp: 30, dl: 3, cr: 1 }, quantity: { ip: 10, rp: 0, dl: 3, cr: 1 } },
      ),
    );
    expect(nothing.kind).toBe('no-agreement');
  });

  it.each([
    [
      'seller',
      'price',
      { ip: 20, rp: 80, dl: 20, cr: 1 },
      'seller price: ip (20) must be >= rp (80): a seller concedes down from ip to rp',
    ],
    [
      'buyer',
      'price',
      { ip: 80, rp: 20, dl: 20, cr: 1 },
      'buyer price: ip (80) must be <= rp (20): a buyer concedes up from ip to rp',
    ],
    [
      'seller',
      'price',
      { ip: 80.5, rp: 20, dl: 20, cr: 1 },
      'seller price: ip must be a multiple of the price tick 1 (got 80.5)',
    ],
    [
      'buyer',
      'price',
      { ip: -10, rp: 20, dl: 20, cr: 1 },
      'buyer price: ip must be >= 0 (got -10)',
    ],
    [
      'seller',
      'quantity',
      { ip: 100, rp: 50, dl: 20, cr: 1 },
      'seller quantity: ip (100) must be <= rp (50): a seller concedes up from ip to rp',
    ],
  ] as const)('refuses a %s %s psi that makes no sense: %s', (role, issue, bad, message) => {
    const base = priceOnly(seller, buyer);
    const agent = base[role];
    const setup = { ...base, [role]: { ...agent, psi: { ...agent.psi, [issue]: psi(bad) } } };
    expect(() => negotiate(setup)).toThrow(
      expect.objectContaining({
        code: 'INVALID_PSI',
        message,
        details: expect.objectContaining({ role, issue }),
      }),
    );
  });

  it('refuses bad ticks and round limits', () => {
    expect(() =>
      negotiate({ ...priceOnly(seller, buyer), ticks: { price: milli(0), quantity: milli(1) } }),
    ).toThrow('price tick must be > 0');
    expect(() => negotiate({ ...priceOnly(seller, buyer), maxRounds: 0 })).toThrow(
      'maxRounds must be a whole number from 1 to 100000 (got 0)',
    );
    expect(() => negotiate({ ...priceOnly(seller, buyer), maxRounds: 100_001 })).toThrow(
      'maxRounds must be a whole number from 1 to 100000',
    );
    expect(() =>
      negotiate({
        ...priceOnly(seller, buyer),
        ticks: { price: 0.5 as Milli, quantity: milli(1) },
      }),
    ).toThrow('price tick must be > 0');
  });
});
