import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  describeState,
  FEATURES,
  type Feature,
  type Features,
  featuresOf,
  SIDES,
  STATE_COUNT,
  STATE_LAYOUT,
  sideOf,
  stateOf,
  stepsToSettle,
} from '../../../core/policy/context.js';
import type { Observation } from '../../../core/policy/policy.js';
import { type Milli, milli } from '../../../core/units.js';
import { UTILITIES, type Utility } from '../../../core/utilities.js';
import { observation } from '../../support/policy.js';

const MIN_TRADE = milli(1000);
const SURPLUS = SIDES.indexOf('surplus');
const DEFICIT = SIDES.indexOf('deficit');
const BALANCED = SIDES.indexOf('balanced');

const feature = (o: Observation, name: Feature, minTrade: Milli = MIN_TRADE) =>
  featuresOf(o, minTrade)[name];

/** Biogas with other tariffs (milli-tokens per m3), on its own 1-token price tick. */
const tariffs = (buys: number, sells: number): Utility => ({
  ...UTILITIES.biogas,
  provider_buys_at: milli(buys),
  provider_sells_at: milli(sells),
});

describe('the layout', () => {
  it('numbers every combination of features once', () => {
    const sizes = FEATURES.map(([, size]) => size);
    expect(STATE_COUNT).toBe(sizes.reduce((a, b) => a * b, 1));
    expect(STATE_LAYOUT).toBe(FEATURES.map(([name, size]) => `${name}${size}`).join(','));
    expect(FEATURES.map(([name]) => name)).toEqual([
      'side',
      'urgency',
      'amount',
      'counterparts',
      'price',
      'failures',
      'spread',
    ]);
  });
});

describe('side', () => {
  it('is balanced below min_trade and a surplus or deficit from it on', () => {
    expect(feature(observation({ net: milli(0) }), 'side')).toBe(BALANCED);
    expect(feature(observation({ net: milli(999) }), 'side')).toBe(BALANCED);
    expect(feature(observation({ net: milli(-999) }), 'side')).toBe(BALANCED);
    expect(feature(observation({ net: milli(1000) }), 'side')).toBe(SURPLUS);
    expect(feature(observation({ net: milli(-1000) }), 'side')).toBe(DEFICIT);
    expect(feature(observation({ net: milli(250_000) }), 'side', milli(300_000))).toBe(BALANCED);
  });

  it('takes any imbalance at all when min_trade is 0, but never nothing', () => {
    expect(sideOf(milli(0), milli(0))).toBe('balanced');
    expect(sideOf(milli(1), milli(0))).toBe('surplus');
    expect(sideOf(milli(-1), milli(0))).toBe('deficit');
  });
});

describe('urgency', () => {
  const URGENT = 0; // <= 5 steps
  const SOON = 1; // <= 30
  const LATER = 2; // <= 180
  const NOT_PRESSING = 3;

  it('counts the steps until a filling store is full, for a surplus', () => {
    // 100 units of room less the level, at 1 unit a step.
    const filling = (level: number) =>
      observation({ net: milli(5000), storageLevel: milli(level), flow: milli(1000) });
    expect(stepsToSettle(filling(60_000), 'surplus')).toBe(40);
    expect(feature(filling(96_000), 'urgency')).toBe(URGENT); // 4 steps
    expect(feature(filling(95_000), 'urgency')).toBe(URGENT); // 5: the bound is inclusive
    expect(feature(filling(94_000), 'urgency')).toBe(SOON); // 6
    expect(feature(filling(70_000), 'urgency')).toBe(SOON); // 30
    expect(feature(filling(60_000), 'urgency')).toBe(LATER); // 40
    expect(feature(filling(0), 'urgency')).toBe(LATER); // 100
    // A store already past full must settle now, not in negative steps.
    expect(stepsToSettle(filling(120_000), 'surplus')).toBe(0);
    // Slower flow: 0.25 units a step, 100 units of room.
    const slow = observation({
      net: milli(5000),
      storageLevel: milli(0),
      flow: milli(250),
    });
    expect(stepsToSettle(slow, 'surplus')).toBe(400);
    expect(feature(slow, 'urgency')).toBe(NOT_PRESSING);
  });

  it('counts the steps until an emptying store is dry, for a deficit', () => {
    const emptying = (level: number) =>
      observation({ net: milli(-5000), storageLevel: milli(level), flow: milli(-1000) });
    expect(stepsToSettle(emptying(10_000), 'deficit')).toBe(10);
    expect(feature(emptying(3000), 'urgency')).toBe(URGENT);
    expect(feature(emptying(10_000), 'urgency')).toBe(SOON);
    expect(feature(emptying(50_000), 'urgency')).toBe(LATER);
  });

  it('is not pressed by a store moving away from trouble, or standing still', () => {
    // A deficit while the store fills, a surplus while it empties: neither overflows nor runs dry.
    const deficitFilling = observation({ net: milli(-5000), flow: milli(1000) });
    const surplusEmptying = observation({ net: milli(5000), flow: milli(-1000) });
    const still = observation({ net: milli(5000), flow: milli(0) });
    for (const o of [deficitFilling, surplusEmptying, still]) {
      expect(feature(o, 'urgency')).toBe(NOT_PRESSING);
    }
    expect(stepsToSettle(still, 'surplus')).toBe(Number.POSITIVE_INFINITY);
  });

  it('is 0 steps without a store, whatever flows', () => {
    for (const net of [5000, -5000, 0]) {
      for (const flow of [1000, -1000, 0]) {
        const o = observation({
          net: milli(net),
          flow: milli(flow),
          storageLevel: milli(0),
          storageCapacity: milli(0),
        });
        const side = sideOf(o.net, MIN_TRADE);
        expect(stepsToSettle(o, side)).toBe(0);
        expect(feature(o, 'urgency')).toBe(URGENT);
      }
    }
  });

  it("takes the plant's own deadline when it is nearer than the store's", () => {
    // The store fills in 40 steps.
    const filling = (stepsToDeadline: number | null) =>
      observation({
        net: milli(5000),
        storageLevel: milli(60_000),
        flow: milli(1000),
        stepsToDeadline,
      });
    expect(stepsToSettle(filling(3), 'surplus')).toBe(3);
    expect(feature(filling(3), 'urgency')).toBe(URGENT);
    expect(feature(filling(20), 'urgency')).toBe(SOON);
    // Farther than the store: the store wins.
    expect(stepsToSettle(filling(500), 'surplus')).toBe(40);
    expect(feature(filling(500), 'urgency')).toBe(LATER);
    expect(feature(filling(null), 'urgency')).toBe(LATER);
    // Nothing else pressing: the deadline alone.
    const still = observation({ net: milli(-5000), stepsToDeadline: 100 });
    expect(feature(still, 'urgency')).toBe(LATER);
  });
});

describe('amount', () => {
  const SMALL = 0; // <= 10 % of the store
  const MEDIUM = 1; // <= 40 %
  const LARGE = 2;

  it('measures the imbalance against the store', () => {
    // A 100-unit store.
    const of = (net: number) => feature(observation({ net: milli(net) }), 'amount');
    expect(of(5000)).toBe(SMALL);
    expect(of(10_000)).toBe(SMALL);
    expect(of(10_001)).toBe(MEDIUM);
    expect(of(-40_000)).toBe(MEDIUM);
    expect(of(40_001)).toBe(LARGE);
    expect(of(-90_000)).toBe(LARGE);
    // The same imbalance against a store four times the size.
    expect(
      feature(observation({ net: milli(40_000), storageCapacity: milli(400_000) }), 'amount'),
    ).toBe(SMALL);
  });

  it('measures it against an hour of flow without a store', () => {
    // 1 unit a step: an hour is 60 units.
    const of = (net: number, flow: number) =>
      feature(
        observation({
          net: milli(net),
          flow: milli(flow),
          storageLevel: milli(0),
          storageCapacity: milli(0),
        }),
        'amount',
      );
    expect(of(6000, 1000)).toBe(SMALL); // 10 %
    expect(of(-12_000, -1000)).toBe(MEDIUM); // 20 %, flow's sign does not matter
    expect(of(12_000, -1000)).toBe(MEDIUM);
    expect(of(30_000, 1000)).toBe(LARGE); // 50 %
    expect(of(6000, 100)).toBe(LARGE); // 6 units against 6 an hour
    // Neither store nor flow: anything is large.
    expect(of(1000, 0)).toBe(LARGE);
  });
});

describe('counterparts', () => {
  const count = (net: number, requestsSeen: { seller: number; buyer: number }) =>
    feature(observation({ net: milli(net), requestsSeen }), 'counterparts');

  it('counts the requests of the opposite role: buyers for a surplus', () => {
    expect(count(5000, { seller: 9, buyer: 0 })).toBe(0);
    expect(count(5000, { seller: 0, buyer: 1 })).toBe(1);
    expect(count(5000, { seller: 0, buyer: 2 })).toBe(1);
    expect(count(5000, { seller: 0, buyer: 3 })).toBe(2);
    expect(count(5000, { seller: 9, buyer: 50 })).toBe(2);
  });

  it('sellers for a deficit', () => {
    expect(count(-5000, { seller: 0, buyer: 9 })).toBe(0);
    expect(count(-5000, { seller: 1, buyer: 0 })).toBe(1);
    expect(count(-5000, { seller: 2, buyer: 9 })).toBe(1);
    expect(count(-5000, { seller: 3, buyer: 0 })).toBe(2);
  });

  it('none for a balanced plant, which wants nobody', () => {
    expect(count(0, { seller: 5, buyer: 5 })).toBe(0);
  });
});

describe('price', () => {
  // Biogas: the provider buys at 20 and sells at 80 tokens per m3.
  const LOW = 0;
  const MIDDLE = 1;
  const HIGH = 2;
  const at = (recentPrice: number | null, utility: Utility = UTILITIES.biogas) =>
    feature(
      observation({
        net: milli(5000),
        utility,
        recentPrice: recentPrice === null ? null : milli(recentPrice),
      }),
      'price',
    );

  it('is the third of the spread the last price sits in', () => {
    expect(at(20_000)).toBe(LOW); // at the buying tariff
    expect(at(39_999)).toBe(LOW);
    expect(at(40_000)).toBe(LOW); // a third up, inclusive
    expect(at(40_001)).toBe(MIDDLE);
    expect(at(50_000)).toBe(MIDDLE); // the middle
    expect(at(60_000)).toBe(MIDDLE); // two thirds up
    expect(at(60_001)).toBe(HIGH);
    expect(at(80_000)).toBe(HIGH); // at the selling tariff
  });

  it('is the middle third before any agreement is known', () => {
    expect(at(null)).toBe(MIDDLE);
    expect(at(null)).toBe(at(50_000));
  });

  it('puts a price outside the tariffs at the nearer end', () => {
    expect(at(10_000)).toBe(LOW);
    expect(at(95_000)).toBe(HIGH);
  });

  it('is on every utility its own spread', () => {
    // Heat: 3 to 9 tokens/kWh; 5 is a third up, 5.01 past it.
    expect(at(5000, UTILITIES.heat)).toBe(LOW);
    expect(at(5010, UTILITIES.heat)).toBe(MIDDLE);
    expect(at(8000, UTILITIES.heat)).toBe(HIGH);
    // Electricity: 8 to 25; 16.5 is the middle.
    expect(at(16_500, UTILITIES.electricity)).toBe(MIDDLE);
    expect(at(8000, UTILITIES.electricity)).toBe(LOW);
  });

  it('is the middle when the tariffs leave no spread to place it in', () => {
    expect(at(50_000, tariffs(50_000, 50_000))).toBe(MIDDLE);
    expect(at(10_000, tariffs(50_000, 50_000))).toBe(MIDDLE);
  });
});

describe('failures', () => {
  it('counts failures in a row up to 2', () => {
    const of = (failuresInRow: number) =>
      feature(observation({ net: milli(5000), failuresInRow }), 'failures');
    expect([0, 1, 2, 3, 7, 1000].map(of)).toEqual([0, 1, 2, 2, 2, 2]);
  });
});

describe('spread', () => {
  it('is wide when the tariffs are at least half the selling tariff apart', () => {
    const of = (utility: Utility) => feature(observation({ net: milli(5000), utility }), 'spread');
    // 60/80, 17/25 and 6/9 of the selling tariff: all wide.
    expect(of(UTILITIES.biogas)).toBe(1);
    expect(of(UTILITIES.electricity)).toBe(1);
    expect(of(UTILITIES.heat)).toBe(1);
    expect(of(tariffs(40_000, 80_000))).toBe(1); // exactly half
    expect(of(tariffs(41_000, 80_000))).toBe(0);
    expect(of(tariffs(50_000, 80_000))).toBe(0);
    expect(of(tariffs(0, 0))).toBe(0); // free: no spread, no division by 0
  });
});

/**
 * An observation with the given features, built from what each feature means (not from the
 * state's number): a 100-unit store, or for a balanced plant one sized so its small imbalance
 * falls in the amount's bucket.
 */
function observationWith(f: Features): Observation {
  const side = SIDES[f.side];
  const share = [0.05, 0.2, 0.8][f.amount] as number;
  const opposite = [0, 1, 3][f.counterparts] as number;
  let net: number;
  let capacity: number;
  if (side === 'balanced') {
    net = 500;
    capacity = Math.round(net / share);
  } else {
    capacity = 100_000;
    net = (side === 'surplus' ? 1 : -1) * capacity * share;
  }
  const utility = f.spread === 1 ? UTILITIES.biogas : tariffs(50_000, 80_000);
  const { provider_buys_at: buys, provider_sells_at: sells } = utility;
  const recentPrice = [buys, (buys + sells) / 2, sells][f.price] as number;
  return observation({
    utility,
    net: milli(net),
    storageCapacity: milli(capacity),
    storageLevel: milli(Math.round(capacity / 2)),
    flow: milli(0),
    stepsToDeadline: [2, 20, 100, null][f.urgency] as number | null,
    recentPrice: milli(recentPrice),
    failuresInRow: f.failures,
    requestsSeen:
      side === 'deficit' ? { seller: opposite, buyer: 7 } : { seller: 7, buyer: opposite },
  });
}

describe('stateOf and describeState', () => {
  it('describeState gives every state number features within their ranges, each once', () => {
    const seen = new Set<string>();
    for (let state = 0; state < STATE_COUNT; state++) {
      const f = describeState(state);
      for (const [name, size] of FEATURES) {
        expect(Number.isInteger(f[name])).toBe(true);
        expect(f[name]).toBeGreaterThanOrEqual(0);
        expect(f[name]).toBeLessThan(size);
      }
      seen.add(JSON.stringify(f));
    }
    expect(seen.size).toBe(STATE_COUNT);
  });

  it('are inverse over every state an observation can be in', () => {
    let reachable = 0;
    for (let state = 0; state < STATE_COUNT; state++) {
      const f = describeState(state);
      // A balanced plant wants nobody: it never counts counterparts, so those states never occur.
      if (f.side === BALANCED && f.counterparts !== 0) continue;
      const o = observationWith(f);
      expect(featuresOf(o, MIN_TRADE), `state ${state}`).toEqual(f);
      expect(stateOf(o, MIN_TRADE), `state ${state}`).toBe(state);
      reachable++;
    }
    expect(reachable).toBe(STATE_COUNT - (STATE_COUNT / 9) * 2);
  });

  it('describeState(stateOf(o)) is featuresOf(o) for any observation (property)', () => {
    const utility = fc.oneof(
      fc.constantFrom(UTILITIES.biogas, UTILITIES.electricity, UTILITIES.heat),
      fc
        .tuple(fc.integer({ min: 0, max: 200 }), fc.integer({ min: 0, max: 200 }))
        .map(([a, b]) => tariffs(Math.min(a, b) * 1000, Math.max(a, b) * 1000)),
    );
    const anObservation = fc
      .record({
        utility,
        net: fc.integer({ min: -500_000, max: 500_000 }),
        capacity: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 1_000_000 })),
        fill: fc.double({ min: 0, max: 1, noNaN: true }),
        flow: fc.integer({ min: -20_000, max: 20_000 }),
        stepsToDeadline: fc.option(fc.integer({ min: 0, max: 2000 })),
        recentPrice: fc.option(fc.integer({ min: 0, max: 300_000 })),
        failuresInRow: fc.nat(20),
        sellers: fc.nat(10),
        buyers: fc.nat(10),
        minTrade: fc.integer({ min: 0, max: 50_000 }),
      })
      .map((r) => ({
        minTrade: milli(r.minTrade),
        o: observation({
          utility: r.utility,
          net: milli(r.net),
          storageCapacity: milli(r.capacity),
          storageLevel: milli(Math.round(r.capacity * r.fill)),
          flow: milli(r.flow),
          stepsToDeadline: r.stepsToDeadline,
          recentPrice: r.recentPrice === null ? null : milli(r.recentPrice),
          failuresInRow: r.failuresInRow,
          requestsSeen: { seller: r.sellers, buyer: r.buyers },
        }),
      }));
    fc.assert(
      fc.property(anObservation, ({ o, minTrade }) => {
        const state = stateOf(o, minTrade);
        expect(Number.isInteger(state)).toBe(true);
        expect(state).toBeGreaterThanOrEqual(0);
        expect(state).toBeLessThan(STATE_COUNT);
        expect(describeState(state)).toEqual(featuresOf(o, minTrade));
      }),
      { numRuns: 500 },
    );
  });
});
