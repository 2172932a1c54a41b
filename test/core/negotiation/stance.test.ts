import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { makeStance } from '../../../core/negotiation/stance.js';
import { psi } from '../../../core/negotiation/strategy.js';
import { milli } from '../../../core/units.js';

/** Eq. 1 written out here, independently of core's sigma. */
const eq1 = (ip: number, rp: number, dl: number, cr: number, t: number) =>
  t >= dl ? rp : ip + (rp - ip) * (t / dl) ** (1 / cr);

const grid = fc.integer({ min: 1, max: 2_000 }); // tick in thousandths
const curve = fc.record({
  a: fc.integer({ min: 0, max: 500 }),
  b: fc.integer({ min: 0, max: 500 }),
  dl: fc.double({ min: 0.5, max: 100, noNaN: true }),
  cr: fc.double({ min: 0.1, max: 10, noNaN: true }),
  share: fc.double({ min: 0, max: 1.2, noNaN: true }),
});

describe('a stance turns Eq. 1 into exact offers on the grid', () => {
  // Down when the agent concedes downward (ip > rp), up otherwise: always toward rp.
  it.each([
    ['seller', 'price', 'down'],
    ['buyer', 'price', 'up'],
    ['seller', 'quantity', 'up'],
    ['buyer', 'quantity', 'down'],
  ] as const)(
    '%s %s: on the grid, within one tick of its curve, rounded %s toward rp',
    (role, issue, way) => {
      fc.assert(
        fc.property(grid, curve, (tick, { a, b, dl, cr, share }) => {
          // ip and rp as exact multiples of the tick, in thousandths and in units.
          const [ipMilli, rpMilli] =
            way === 'down'
              ? [Math.max(a, b) * tick, Math.min(a, b) * tick]
              : [Math.min(a, b) * tick, Math.max(a, b) * tick];
          const [ip, rp] = [ipMilli / 1000, rpMilli / 1000];
          const stance = makeStance(role, issue, psi({ ip, rp, dl, cr }), milli(tick));
          const t = Math.floor(share * dl);
          const curveMilli = eq1(ip, rp, dl, cr, t) * 1000;
          const offer = stance.offerAt(t);
          const noise = 1e-6 * tick;
          expect(offer % tick).toBe(0);
          expect(offer).toBeGreaterThanOrEqual(Math.min(ipMilli, rpMilli));
          expect(offer).toBeLessThanOrEqual(Math.max(ipMilli, rpMilli));
          expect(Math.abs(offer - curveMilli)).toBeLessThan(tick + noise);
          if (way === 'down') expect(offer).toBeLessThanOrEqual(curveMilli + noise);
          else expect(offer).toBeGreaterThanOrEqual(curveMilli - noise);
        }),
      );
    },
  );

  it('opens at ip and reaches rp at the deadline exactly', () => {
    const stance = makeStance(
      'buyer',
      'price',
      psi({ ip: 20, rp: 80, dl: 20, cr: 0.5 }),
      milli(1000),
    );
    expect(stance.offerAt(0)).toBe(20_000);
    expect(stance.offerAt(20)).toBe(80_000);
    expect(stance.offerAt(25)).toBe(80_000);
    // 20 + 60 * (11/20)^2 = 38.15, rounded up toward rp.
    expect(stance.offerAt(11)).toBe(39_000);
  });

  it('accepts what is at least as good as its own offer; quantities only within (0, bound]', () => {
    const price = makeStance(
      'seller',
      'price',
      psi({ ip: 80, rp: 20, dl: 20, cr: 2 }),
      milli(1000),
    );
    expect(price.accepts(milli(35_000), milli(35_000))).toBe(true);
    expect(price.accepts(milli(34_000), milli(35_000))).toBe(false);
    expect(price.accepts(milli(90_000), milli(35_000))).toBe(true);
    const need = makeStance(
      'buyer',
      'quantity',
      psi({ ip: 150, rp: 0, dl: 20, cr: 0.5 }),
      milli(1),
    );
    expect(need.accepts(milli(100_000), milli(96_000))).toBe(true);
    expect(need.accepts(milli(95_000), milli(96_000))).toBe(false);
    expect(need.accepts(milli(150_001), milli(0))).toBe(false);
    expect(need.accepts(milli(0), milli(0))).toBe(false);
  });
});
