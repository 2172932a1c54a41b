/**
 * Exact fixed-point values. Everything that can end up on the chain (quantities, prices, token
 * amounts) is an integer here, so what two agents agree on is, to the last unit, what the
 * contract escrows.
 *
 * - Quantities and prices are `Milli`: integer thousandths of the utility's unit (litres of m3,
 *   Wh of kWh) or of a token per unit. JS numbers hold integers exactly up to 2^53, i.e. 9e12
 *   whole units, far beyond any trade in a park.
 * - Token amounts are `bigint` in the token's smallest unit (18 decimals, as the ERC-20 default).
 * - On the chain a quantity is counted in milli-units and a unit price in token base units per
 *   milli-unit, so escrow = quantity * unitPrice is a multiplication with no division and no
 *   rounding.
 */
import { EipError } from './errors.js';

declare const milliBrand: unique symbol;
/** An integer count of thousandths. Built only by the functions below. */
export type Milli = number & { readonly [milliBrand]: true };

export const MILLI_PER_UNIT = 1000;
export const TOKEN_DECIMALS = 18;

/** The one number syntax of flags and config values: plain decimals, no exponent. */
export const DECIMAL = /^([+-]?)(\d+)(?:\.(\d+))?$/;
const MAX_WHOLE_UNITS = Math.floor(Number.MAX_SAFE_INTEGER / 1000);

/** Wraps an integer count of thousandths; throws on fractions or unsafe integers. */
export function milli(count: number): Milli {
  if (!Number.isSafeInteger(count)) {
    throw new EipError('INVALID_AMOUNT', `not a whole number of thousandths: ${count}`, {
      details: { value: count },
    });
  }
  // -0 (from rounding a tiny negative) would print and compare oddly downstream.
  return (count === 0 ? 0 : count) as Milli;
}

/** Parses a decimal string ("35", "0.125", "-2.5") exactly, without going through a float. */
export function parseMilli(text: string, what = 'value'): Milli {
  const match = DECIMAL.exec(text.trim());
  if (match === null) {
    throw new EipError('INVALID_AMOUNT', `${what} must be a decimal number (got "${text}")`, {
      details: { what, value: text },
    });
  }
  const [, sign = '', whole = '0', fraction = ''] = match;
  const significant = fraction.replace(/0+$/, '');
  if (significant.length > 3) {
    throw new EipError('INVALID_AMOUNT', `${what} has more than 3 decimals (got "${text}")`, {
      details: { what, value: text },
    });
  }
  const count = Number(whole) * MILLI_PER_UNIT + Number(significant.padEnd(3, '0'));
  if (!Number.isSafeInteger(count)) {
    throw new EipError(
      'INVALID_AMOUNT',
      `${what} must be at most ${MAX_WHOLE_UNITS} in size (got "${text}")`,
      {
        details: { what, value: text },
      },
    );
  }
  return milli(sign === '-' ? -count : count);
}

/**
 * Converts a float that is meant to be a multiple of 0.001 (a parsed flag, a tariff) to Milli,
 * refusing values with finer precision instead of rounding them silently. The only slack allowed
 * is the float's own representation error of a few ulps (80.3 * 1000 = 80299.99999999999).
 */
export function toMilli(value: number, what = 'value'): Milli {
  const scaled = value * MILLI_PER_UNIT;
  const rounded = Math.round(scaled);
  if (
    !Number.isFinite(value) ||
    Math.abs(scaled - rounded) > 8 * Number.EPSILON * Math.max(1, Math.abs(scaled))
  ) {
    throw new EipError('INVALID_AMOUNT', `${what} must be a multiple of 0.001 (got ${value})`, {
      details: { what, value },
    });
  }
  return milli(rounded);
}

/** The float value in whole units, for display and JSON; exact for every Milli below 2^53. */
export function fromMilli(value: Milli): number {
  return value / MILLI_PER_UNIT;
}

/** "35", "35.5", "0.125", "-2" — the shortest exact decimal form. */
export function formatMilli(value: Milli): string {
  const sign = value < 0 ? '-' : '';
  const abs = Math.abs(value);
  const whole = Math.trunc(abs / MILLI_PER_UNIT);
  const fraction = (abs % MILLI_PER_UNIT).toString().padStart(3, '0').replace(/0+$/, '');
  return `${sign}${whole}${fraction === '' ? '' : `.${fraction}`}`;
}

export type RoundingDirection = 'down' | 'up';

/** How close (in ticks) a float must be to a grid point to count as on it. */
export const SNAP_TICKS = 1e-9;

/**
 * Snaps a float to a multiple of `tick`, rounding in `direction`. A float within SNAP_TICKS of a
 * grid point is taken as that grid point: the strategy function's floats carry rounding noise
 * (0.1 * 3 = 0.30000000000000004) that must not turn an exact offer into the next tick. The slack
 * is absolute, so rounding keeps its direction however large the value.
 */
export function quantize(value: number, tick: Milli, direction: RoundingDirection): Milli {
  const ticks = (value * MILLI_PER_UNIT) / tick;
  const nearest = Math.round(ticks);
  if (Math.abs(ticks - nearest) <= SNAP_TICKS) {
    return milli(nearest * tick);
  }
  return milli((direction === 'down' ? Math.floor(ticks) : Math.ceil(ticks)) * tick);
}

const BASE_PER_MILLI_PRICE = 10n ** BigInt(TOKEN_DECIMALS - 6);

/**
 * Unit price as the chain counts it: token base units per milli-unit of quantity.
 * A price of p milli-tokens per unit is p / 1e6 tokens per milli-unit = p * 10^(decimals - 6).
 */
export function unitPriceBaseUnits(price: Milli): bigint {
  assertNonNegative(price, 'unit price');
  return BigInt(price) * BASE_PER_MILLI_PRICE;
}

/** Quantity as the chain counts it: milli-units. */
export function quantityBaseUnits(quantity: Milli): bigint {
  assertNonNegative(quantity, 'quantity');
  return BigInt(quantity);
}

/** The exact price behind an on-chain unit price; refuses one that is not a whole milli-token. */
export function priceFromBaseUnits(baseUnits: bigint): Milli {
  if (baseUnits % BASE_PER_MILLI_PRICE !== 0n) {
    throw new EipError(
      'INVALID_AMOUNT',
      `unit price ${baseUnits} is not a whole number of milli-tokens per unit`,
    );
  }
  return fromBaseUnits(baseUnits / BASE_PER_MILLI_PRICE, 'unit price');
}

/** The exact quantity behind an on-chain quantity (milli-units). */
export function quantityFromBaseUnits(baseUnits: bigint): Milli {
  return fromBaseUnits(baseUnits, 'quantity');
}

function fromBaseUnits(value: bigint, what: string): Milli {
  if (value < 0n || value > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new EipError('INVALID_AMOUNT', `${what} ${value} is outside the exact range`);
  }
  return milli(Number(value));
}

/** quantity x unit price in token base units: exactly what the contract escrows. */
export function tokenAmount(quantity: Milli, price: Milli): bigint {
  return quantityBaseUnits(quantity) * unitPriceBaseUnits(price);
}

/** Signed token amount (gains can be negative) for quantity x price difference. */
export function signedTokenAmount(quantity: Milli, priceDifference: Milli): bigint {
  return BigInt(quantity) * BigInt(priceDifference) * BASE_PER_MILLI_PRICE;
}

/** "3500", "0.000000000000000001", "-12.5": token base units as an exact decimal string. */
export function formatTokens(baseUnits: bigint): string {
  const sign = baseUnits < 0n ? '-' : '';
  const abs = baseUnits < 0n ? -baseUnits : baseUnits;
  const scale = 10n ** BigInt(TOKEN_DECIMALS);
  const fraction = (abs % scale).toString().padStart(TOKEN_DECIMALS, '0').replace(/0+$/, '');
  return `${sign}${abs / scale}${fraction === '' ? '' : `.${fraction}`}`;
}

function assertNonNegative(value: Milli, what: string): void {
  if (value < 0) {
    throw new EipError(
      'INVALID_AMOUNT',
      `${what} must not be negative (got ${formatMilli(value)})`,
    );
  }
}
