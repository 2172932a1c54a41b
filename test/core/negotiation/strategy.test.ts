import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { concessionShape, parsePsi, psi, sigma } from '../../../core/negotiation/strategy.js';

// Down to subnormals and up to the limit: one fresh-clone run found sigma overshooting rp by an ulp.
const price = fc.oneof(
  fc.double({ min: -1e6, max: 1e6, noNaN: true, noDefaultInfinity: true }),
  fc.double({ min: -1e12, max: 1e12, noNaN: true, noDefaultInfinity: true }),
  fc.double({ min: -1e-300, max: 1e-300, noNaN: true }),
);
const positive = fc.double({ min: 1e-3, max: 1e4, noNaN: true, noDefaultInfinity: true });
const anyPsi = fc
  .record({
    ip: price,
    rp: price,
    dl: positive,
    cr: fc.double({ min: 0.05, max: 20, noNaN: true }),
  })
  .map(psi);

describe('sigma (Eq. 1)', () => {
  it('matches the formula on the case study', () => {
    const seller = psi({ ip: 80, rp: 20, dl: 20, cr: 2 });
    expect(sigma(seller, 5)).toBe(50);
    expect(sigma(seller, 11)).toBeCloseTo(80 - 60 * Math.sqrt(0.55), 12);
    expect(sigma(psi({ ip: 20, rp: 80, dl: 20, cr: 0.5 }), 10)).toBe(35);
  });

  it('O_0 = ip exactly', () => {
    fc.assert(fc.property(anyPsi, (p) => sigma(p, 0) === p.ip));
  });

  it('O_dl = rp exactly, and it stands at rp after the deadline', () => {
    fc.assert(
      fc.property(
        anyPsi,
        fc.double({ min: 0, max: 1e6, noNaN: true }),
        (p, extra) => sigma(p, p.dl) === p.rp && sigma(p, p.dl + extra) === p.rp,
      ),
    );
  });

  it('stays within [ip, rp] where the float formula overshoots (regression)', () => {
    const p = psi({ ip: -6.901113595585032e-308, rp: -6.4e-323, dl: 0.001, cr: 8.000000000000002 });
    expect(sigma(p, 0.001 * 0.9999999999999996)).toBeLessThanOrEqual(p.rp);
  });

  it('moves monotonically from ip toward rp and stays between them', () => {
    fc.assert(
      fc.property(
        anyPsi,
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (p, a, b) => {
          const [early, late] = [Math.min(a, b) * p.dl, Math.max(a, b) * p.dl];
          const direction = Math.sign(p.rp - p.ip);
          const low = Math.min(p.ip, p.rp);
          const high = Math.max(p.ip, p.rp);
          const o1 = sigma(p, early);
          const o2 = sigma(p, late);
          return direction * (o2 - o1) >= 0 && o1 >= low && o1 <= high && o2 >= low && o2 <= high;
        },
      ),
    );
  });

  it('cr < 1 is Boulware (concedes less than linear), cr > 1 a conceder (more than linear)', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 1, max: 1e3, noNaN: true }),
        fc.double({ min: 1, max: 100, noNaN: true }),
        fc.double({ min: 0.05, max: 0.95, noNaN: true }),
        fc.double({ min: 0.01, max: 0.99, noNaN: true }),
        (span, dl, boulwareCr, share) => {
          const t = share * dl;
          const linear = share * span; // conceded by a linear agent at t
          const boulware = psi({ ip: span, rp: 0, dl, cr: boulwareCr });
          const conceder = psi({ ip: span, rp: 0, dl, cr: 1 / boulwareCr });
          const concededBoulware = span - sigma(boulware, t);
          const concededConceder = span - sigma(conceder, t);
          return concededBoulware < linear && concededConceder > linear;
        },
      ),
    );
    expect(concessionShape(psi({ ip: 1, rp: 0, dl: 1, cr: 0.5 }))).toBe('boulware');
    expect(concessionShape(psi({ ip: 1, rp: 0, dl: 1, cr: 1 }))).toBe('linear');
    expect(concessionShape(psi({ ip: 1, rp: 0, dl: 1, cr: 2 }))).toBe('conceder');
    expect(concessionShape(psi({ ip: 1, rp: 1, dl: 1, cr: 2 }))).toBe('constant');
  });

  it('refuses a negative time step', () => {
    expect(() => sigma(psi({ ip: 1, rp: 0, dl: 1, cr: 1 }), -1)).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
    expect(() => sigma(psi({ ip: 1, rp: 0, dl: 1, cr: 1 }), Number.NaN)).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
  });
});

describe('psi validation', () => {
  it.each([
    [{ ip: 80, rp: 20, dl: 0, cr: 1 }, 'dl must be a finite number > 0 (got 0)'],
    [{ ip: 80, rp: 20, dl: -5, cr: 1 }, 'dl must be a finite number > 0 (got -5)'],
    [{ ip: 80, rp: 20, dl: 20, cr: 0 }, 'cr must be a finite number > 0 (got 0)'],
    [{ ip: 80, rp: 20, dl: 20, cr: -1 }, 'cr must be a finite number > 0 (got -1)'],
    [
      { ip: Number.NaN, rp: 20, dl: 20, cr: 1 },
      'ip must be a finite number between -1e12 and 1e12 (got NaN)',
    ],
    [
      { ip: 80, rp: Number.POSITIVE_INFINITY, dl: 20, cr: 1 },
      'rp must be a finite number between -1e12 and 1e12 (got Infinity)',
    ],
    [
      { ip: 2e12, rp: 20, dl: 20, cr: 1 },
      'ip must be a finite number between -1e12 and 1e12 (got 2000000000000)',
    ],
    [
      { ip: 80, rp: 20, dl: Number.POSITIVE_INFINITY, cr: 1 },
      'dl must be a finite number > 0 (got Infinity)',
    ],
    [{ ip: 80, rp: 20, dl: 20 }, 'cr must be a finite number'],
    [{ ip: 80, rp: 20, dl: 20, cr: 1, x: 3 }, 'unknown key "x" (allowed: ip, rp, dl, cr)'],
    [{ ip: '80', rp: 20, dl: 20, cr: 1 }, 'ip must be a finite number'],
  ])('%o -> %s', (input, message) => {
    expect(() => parsePsi(input, '--seller')).toThrow(
      expect.objectContaining({
        code: 'INVALID_PSI',
        message: expect.stringContaining(`--seller: ${message}`),
      }),
    );
  });

  it('returns a frozen psi', () => {
    expect(Object.isFrozen(psi({ ip: 1, rp: 2, dl: 3, cr: 4 }))).toBe(true);
  });
});
