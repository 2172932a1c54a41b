/**
 * DSMR / P1 telegrams, the smart-meter port common in Europe: a block of OBIS lines from `/`
 * to `!` followed by a CRC-16 (ARC: poly 0xA001 reflected, init 0) over everything from `/` to
 * `!` inclusive, as four hex digits. A telegram whose CRC fails is refused whole, never half used.
 */
import { EipError } from '../errors.js';
import { crc16 } from './crc16.js';

/** CRC-16/ARC, as DSMR specifies for P1. */
export function crc16Arc(bytes: Uint8Array): number {
  return crc16(bytes, 0);
}

/** The values the agent uses, by OBIS code; energy in kWh, power in kW, gas in m3. */
const OBIS = {
  '1-0:1.8.1': 'electricity_import_t1',
  '1-0:1.8.2': 'electricity_import_t2',
  '1-0:2.8.1': 'electricity_export_t1',
  '1-0:2.8.2': 'electricity_export_t2',
  '1-0:1.7.0': 'power_import',
  '1-0:2.7.0': 'power_export',
} as const;

export interface P1Telegram {
  /** The meter's identification line after `/`. */
  readonly header: string;
  /** Values by name (see OBIS above), plus `gas` from the M-Bus gas meter when present. */
  readonly values: Readonly<Record<string, { value: number; unit: string }>>;
  /** When the gas meter last reported, as sent (YYMMDDhhmmssX). */
  readonly gasMeasuredAt?: string;
}

function telegramError(message: string): EipError {
  return new EipError('INVALID_MESSAGE', `P1 telegram: ${message}`);
}

/** `(001234.567*kWh)` as a number and its unit. */
function parseValue(text: string, line: string): { value: number; unit: string } {
  const match = /^\((-?\d+(?:\.\d+)?)\*([A-Za-z0-9]+)\)$/.exec(text);
  if (!match) throw telegramError(`cannot read the value of line "${line}"`);
  return { value: Number(match[1]), unit: match[2] as string };
}

export function parseP1Telegram(text: string): P1Telegram {
  const start = text.indexOf('/');
  const bang = text.indexOf('!', start);
  if (start < 0 || bang < 0) throw telegramError('no "/" ... "!" block');
  const sent = text.slice(bang + 1, bang + 5);
  if (!/^[0-9A-Fa-f]{4}$/.test(sent)) throw telegramError(`no CRC after "!" (got "${sent}")`);
  const crc = crc16Arc(Buffer.from(text.slice(start, bang + 1), 'latin1'));
  if (crc !== Number.parseInt(sent, 16)) {
    throw telegramError(
      `CRC ${crc.toString(16).toUpperCase().padStart(4, '0')} does not match the telegram's ${sent.toUpperCase()}`,
    );
  }
  const lines = text.slice(start, bang).split(/\r?\n/);
  const header = (lines[0] ?? '').slice(1).trim();
  const values: Record<string, { value: number; unit: string }> = {};
  let gasMeasuredAt: string | undefined;
  for (const line of lines.slice(1)) {
    const match = /^(\d+-\d+:\d+\.\d+\.\d+)(\(.*\))$/.exec(line.trim());
    if (!match) continue;
    const [, code, rest = ''] = match;
    const name = OBIS[code as keyof typeof OBIS];
    if (name) values[name] = parseValue(rest, line);
    // Gas on M-Bus channel 1: 0-1:24.2.1(timestamp)(value*m3).
    const gas = /^0-\d:24\.2\.[13]\((\d{12}[SW])\)(\(.*\))$/.exec(line.trim());
    if (gas) {
      gasMeasuredAt = gas[1];
      values.gas = parseValue(gas[2] as string, line);
    }
  }
  return { header, values, ...(gasMeasuredAt !== undefined && { gasMeasuredAt }) };
}
