import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isEipError } from '../../core/errors.js';
import {
  formatMilli,
  formatTokens,
  milli,
  parseMilli,
  quantize,
  SNAP_TICKS,
  signedTokenAmount,
  tokenAmount,
  toMilli,
  unitPriceBaseUnits,
} from '../../core/units.js';

const safeMilli = fc.integer({ min: -1e12, max: 1e12 }).map(milli);

describe('parseMilli', () => {
  it('parses decimal strings exactly, without floats', () => {
    expect(parseMilli('35')).toBe(35_000);
    expect(parseMilli('0.125')).toBe(125);
    expect(parseMilli('-2.5')).toBe(-2_500);
    expect(parseMilli('1.2300')).toBe(1_230);
    // 0.1 + 0.2 style drift cannot happen: the digits are read, not computed.
    expect(parseMilli('0.3')).toBe(300);
    expect(parseMilli('+5')).toBe(5_000);
  });

  it('names the parameter when a value is too large', () => {
    expect(() => parseMilli('99999999999999999999', '--surplus')).toThrow(
      '--surplus must be at most 9007199254740 in size (got "99999999999999999999")',
    );
  });

  it.each(['', 'abc', '1e3', '1.0001', '12.', '.5', 'NaN', 'Infinity', '1,5'])(
    'refuses "%s" with INVALID_AMOUNT',
    (text) => {
      expect(() => parseMilli(text, '--surplus')).toThrow(
        expect.objectContaining({ code: 'INVALID_AMOUNT' }),
      );
    },
  );

  it('round-trips with formatMilli for every safe value', () => {
    fc.assert(fc.property(safeMilli, (m) => parseMilli(formatMilli(m)) === m));
  });
});

describe('toMilli', () => {
  it('accepts floats that are whole thousandths despite binary noise', () => {
    expect(toMilli(0.1 + 0.2)).toBe(300);
    expect(toMilli(80)).toBe(80_000);
  });

  it('refuses finer precision and non-finite values instead of rounding them, at any size', () => {
    expect(toMilli(80.3)).toBe(80_300);
    expect(toMilli(123_456_789.123)).toBe(123_456_789_123);
    for (const value of [
      0.0001,
      1 / 3,
      1000.0004,
      123456.7894,
      Number.NaN,
      Number.POSITIVE_INFINITY,
    ]) {
      expect(() => toMilli(value)).toThrow(expect.objectContaining({ code: 'INVALID_AMOUNT' }));
    }
  });
});

describe('quantize', () => {
  it('rounds down or up to the tick', () => {
    expect(quantize(35.5028, milli(1000), 'down')).toBe(35_000);
    expect(quantize(35.5028, milli(1000), 'up')).toBe(36_000);
    expect(quantize(0.0123, milli(10), 'up')).toBe(20);
  });

  it('treats float noise next to a grid point as that grid point', () => {
    // 0.1 * 3 = 0.30000000000000004: rounding up must not jump to the next tick.
    expect(quantize(0.1 * 3, milli(100), 'up')).toBe(300);
    expect(quantize(0.7 - 0.1, milli(100), 'down')).toBe(600);
  });

  it('always lands on the grid, within one tick, on the requested side', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.double({ min: -1e6, max: 1e6, noNaN: true }),
          fc.double({ min: -1e-6, max: 1e-6, noNaN: true }),
        ),
        fc.integer({ min: 1, max: 10_000 }),
        fc.constantFrom('down' as const, 'up' as const),
        (value, tick, direction) => {
          const q = quantize(value, milli(tick), direction);
          const ticks = (value * 1000) / tick;
          // The documented snap, plus the float error of computing `ticks` itself.
          const slack = SNAP_TICKS + 4 * Number.EPSILON * Math.abs(ticks);
          const qTicks = q / tick;
          return (
            Number.isInteger(qTicks) &&
            Math.abs(qTicks - ticks) < 1 + slack &&
            (direction === 'down' ? qTicks <= ticks + slack : qTicks >= ticks - slack)
          );
        },
      ),
    );
  });

  it('keeps its direction for large values (regression: a relative snap rounded to nearest)', () => {
    // 600000.0004 m3 on a 1-litre grid: 0.4 of a tick above a grid point.
    expect(quantize(600_000.0004, milli(1), 'up')).toBe(600_000_001);
    expect(quantize(600_000.0004, milli(1), 'down')).toBe(600_000_000);
    // Tiny values next to zero (regression found by fast-check).
    expect(quantize(-1e-9, milli(1001), 'down')).toBe(0);
    expect(quantize(1e-9, milli(1001), 'up')).toBe(0);
  });
});

describe('token amounts', () => {
  it('escrow is exactly quantity x price in base units (18 decimals)', () => {
    // 100 m3 at 35 tokens/m3 = 3500 tokens.
    expect(tokenAmount(parseMilli('100'), parseMilli('35'))).toBe(3500n * 10n ** 18n);
    expect(formatTokens(tokenAmount(parseMilli('0.001'), parseMilli('0.001')))).toBe('0.000001');
    expect(unitPriceBaseUnits(parseMilli('35'))).toBe(35n * 10n ** 15n);
  });

  it('has no float drift: the exact decimal product, for any amounts', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1e12 }), fc.integer({ min: 0, max: 1e9 }), (q, p) => {
        const exact = BigInt(q) * BigInt(p); // in 1e-6 tokens
        return tokenAmount(milli(q), milli(p)) === exact * 10n ** 12n;
      }),
    );
  });

  it('formats negative gains and refuses negative escrow inputs', () => {
    expect(formatTokens(signedTokenAmount(parseMilli('100'), parseMilli('-15')))).toBe('-1500');
    expect(() => tokenAmount(milli(-1), milli(1))).toThrow(
      expect.objectContaining({ code: 'INVALID_AMOUNT' }),
    );
  });

  it('milli() refuses fractions and unsafe integers', () => {
    for (const value of [0.5, 2 ** 53, Number.NaN]) {
      let caught: unknown;
      try {
        milli(value);
      } catch (error) {
        caught = error;
      }
      expect(isEipError(caught, 'INVALID_AMOUNT')).toBe(true);
    }
  });
});
