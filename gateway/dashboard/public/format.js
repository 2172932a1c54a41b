/**
 * Amounts as people read them, exactly: the API's decimal strings are shifted as strings (a
 * uint256 has 78 digits, a float 17), and Intl rounds and groups the decimal string itself.
 *
 * The API's units (gateway/api/README.md): quantities in milli-units, prices in token base units
 * per milli-unit, token amounts in base units of an 18-decimal token.
 */

const TOKEN_DECIMALS = 18;
const MILLI_DECIMALS = 3;
/** A price per milli-unit in base units, as tokens per unit: 10^18 / 10^3. */
const PRICE_DECIMALS = TOKEN_DECIMALS - MILLI_DECIMALS;

/** @type {Map<number, Intl.NumberFormat>} */
const numberFormats = new Map();
const timeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const hourFormat = new Intl.DateTimeFormat(undefined, {
  weekday: 'short',
  hour: '2-digit',
  minute: '2-digit',
});

/**
 * `value` / 10^decimals as a decimal string, without rounding.
 * @param {string | bigint} value an integer
 * @param {number} decimals
 * @returns {`${number}`}
 */
export function shift(value, decimals) {
  const integer = BigInt(value);
  const sign = integer < 0n ? '-' : '';
  const digits = (integer < 0n ? -integer : integer).toString().padStart(decimals + 1, '0');
  const cut = digits.length - decimals;
  const text = decimals === 0 ? digits : `${digits.slice(0, cut)}.${digits.slice(cut)}`;
  return /** @type {`${number}`} */ (`${sign}${text}`);
}

/**
 * @param {number | bigint | `${number}`} value
 * @param {number} maxFraction
 */
export function number(value, maxFraction) {
  let format = numberFormats.get(maxFraction);
  if (format === undefined) {
    format = new Intl.NumberFormat(undefined, { maximumFractionDigits: maxFraction });
    numberFormats.set(maxFraction, format);
  }
  return format.format(value);
}

/** @param {string | bigint} baseUnits */
export const tokens = (baseUnits) => `${number(shift(baseUnits, TOKEN_DECIMALS), 2)} tokens`;

/**
 * @param {string | bigint} milliUnits
 * @param {string} unit
 */
export const quantity = (milliUnits, unit) =>
  `${number(shift(milliUnits, MILLI_DECIMALS), 3)} ${unit}`;

/**
 * @param {string | bigint} perMilliUnit token base units per milli-unit
 * @param {string} unit
 */
export const price = (perMilliUnit, unit) =>
  `${number(shift(perMilliUnit, PRICE_DECIMALS), 3)} tokens/${unit}`;

/** Numbers for charts, where a float's precision is plenty. */
export const toNumber = {
  /** @param {string | bigint} milliUnits */
  units: (milliUnits) => Number(shift(milliUnits, MILLI_DECIMALS)),
  /** @param {string | bigint} baseUnits */
  tokens: (baseUnits) => Number(shift(baseUnits, TOKEN_DECIMALS)),
  /** @param {string | bigint} perMilliUnit */
  price: (perMilliUnit) => Number(shift(perMilliUnit, PRICE_DECIMALS)),
};

/**
 * `part` of `whole` in whole percent, rounded down so that 99.6 % is not shown as done.
 * @param {string | bigint} part
 * @param {string | bigint} whole
 */
export function percent(part, whole) {
  const of = BigInt(whole);
  return of === 0n ? 0 : Number((BigInt(part) * 100n) / of);
}

/** @param {number} unixSeconds */
export const time = (unixSeconds) => timeFormat.format(unixSeconds * 1000);

const secondsFormat = new Intl.DateTimeFormat(undefined, {
  dateStyle: 'medium',
  timeStyle: 'medium',
});
const clockFormat = new Intl.DateTimeFormat(undefined, { timeStyle: 'short' });
const clockSecondsFormat = new Intl.DateTimeFormat(undefined, { timeStyle: 'medium' });

/**
 * A delivery window, "8 Dec 2026, 09:00 to 13:00": the end's date only when it is another day's,
 * and seconds when the window is shorter than an hour (a simulated day's are seconds long, and
 * minutes alone would show them as starting and ending at once).
 * @param {number} startS unix seconds
 * @param {number} endS
 */
export function span(startS, endS) {
  const seconds = endS - startS < 3600;
  const start = new Date(startS * 1000);
  const end = new Date(endS * 1000);
  const sameDay = start.toDateString() === end.toDateString();
  const from = (seconds ? secondsFormat : timeFormat).format(start);
  const to = sameDay
    ? (seconds ? clockSecondsFormat : clockFormat).format(end)
    : (seconds ? secondsFormat : timeFormat).format(end);
  return `${from} to ${to}`;
}

/** @param {number} ms */
export const hour = (ms) => hourFormat.format(ms);

/**
 * An address or hash shortened for reading: 0x7099…79C8.
 * @param {string} hex
 */
export const short = (hex) => `${hex.slice(0, 6)}…${hex.slice(-4)}`;
