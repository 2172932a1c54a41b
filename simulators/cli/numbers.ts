/** Numeric flags, parsed exactly and refused with the flag's name when out of range. */
import { EipError } from '../../core/errors.js';
import { type Milli, parseMilli } from '../../core/units.js';

/** A decimal > 0 with at most three decimals, as Milli; parseMilli's errors already name the flag. */
export function parsePositive(text: string, flag: string): Milli {
  const value = parseMilli(text, flag);
  if (value <= 0) {
    throw new EipError('INVALID_ARGUMENT', `${flag} must be > 0 (got "${text}")`, {
      details: { flag },
    });
  }
  return value;
}

/** A whole number from 1 to `max`. */
export function parseCount(text: string, flag: string, max: number): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < 1 || value > max) {
    throw new EipError(
      'INVALID_ARGUMENT',
      `${flag} must be a whole number from 1 to ${max} (got "${text}")`,
      {
        details: { flag },
      },
    );
  }
  return value;
}

/** A TCP port to listen on; 0 asks for a free one. */
export function parsePort(text: string): number {
  return text === '0' ? 0 : parseCount(text, '--tcp', 65535);
}
