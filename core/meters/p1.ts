/**
 * DSMR / P1 telegrams, the smart-meter port common in Europe: a block of OBIS lines from `/`
 * to `!` followed by a CRC-16 (ARC: poly 0xA001 reflected, init 0) over everything from `/` to
 * `!` inclusive, as four hex digits (P1 companion standard 5.0.2, §6.12). A telegram whose CRC
 * fails is refused whole, never half used. Clause numbers below are those of DSMR 5.0.2 P1.
 */
import { EipError } from '../errors.js';
import { crc16 } from './crc16.js';

/** CRC-16/ARC, as DSMR specifies for P1. */
export function crc16Arc(bytes: Uint8Array): number {
  return crc16(bytes, 0);
}

/**
 * The values the agent uses, by OBIS code; energy in kWh, power in kW. `digits` is the integer
 * part of their fixed format (§6.4): energy is F9(3,3), 000123.456; power F5(3,3), 01.193.
 */
const OBIS = {
  '1-0:1.8.1': { name: 'electricity_import_t1', unit: 'kWh', digits: 6 },
  '1-0:1.8.2': { name: 'electricity_import_t2', unit: 'kWh', digits: 6 },
  '1-0:2.8.1': { name: 'electricity_export_t1', unit: 'kWh', digits: 6 },
  '1-0:2.8.2': { name: 'electricity_export_t2', unit: 'kWh', digits: 6 },
  '1-0:1.7.0': { name: 'power_import', unit: 'kW', digits: 2 },
  '1-0:2.7.0': { name: 'power_export', unit: 'kW', digits: 2 },
} as const;

export type P1ElectricityName = (typeof OBIS)[keyof typeof OBIS]['name'];

/** Every quantity a P1 meter reports, by the name the agent's config uses, with its unit. */
export const P1_QUANTITIES: Readonly<Record<string, { readonly unit: string }>> = Object.freeze(
  Object.fromEntries([
    ...Object.values(OBIS).map(({ name, unit }) => [name, { unit }]),
    ['gas', { unit: 'm3' }],
  ]),
);

/** Gas on M-Bus channel 1 is F8(3,3) in m3: 12785.123. */
const GAS_DIGITS = 5;

export interface P1Telegram {
  /** The meter's identification line after `/`. */
  readonly header: string;
  /** Values by name (see OBIS above), plus `gas` from the M-Bus gas meter when present. */
  readonly values: Readonly<Record<string, { value: number; unit: string }>>;
  /** When the meter made the telegram (0-0:1.0.0), as sent (YYMMDDhhmmssX). */
  readonly measuredAt?: string;
  /** When the gas meter last reported, as sent (YYMMDDhhmmssX). */
  readonly gasMeasuredAt?: string;
}

/** Why a telegram was refused: its CRC, or its form (no block, no CRC, an unreadable value). */
export type P1Fault = 'crc' | 'format';

function telegramError(message: string, fault: P1Fault = 'format'): EipError {
  return new EipError('INVALID_MESSAGE', `P1 telegram: ${message}`, { details: { fault } });
}

/** `(001234.567*kWh)` as a number and its unit. */
function parseValue(text: string, line: string): { value: number; unit: string } {
  const match = /^\((-?\d+(?:\.\d+)?)\*([A-Za-z0-9]+)\)$/.exec(text);
  if (!match) throw telegramError(`cannot read the value of line "${line}"`);
  return { value: Number(match[1]), unit: match[2] as string };
}

function crcHex(text: string): string {
  return crc16Arc(Buffer.from(text, 'latin1')).toString(16).toUpperCase().padStart(4, '0');
}

export interface P1ParseOptions {
  /**
   * DSMR 2.2 and 3 telegrams end in a bare "!": they have no CRC, and their gas reading takes two
   * lines (0-n:24.3.0 then the value). Only a line set up for those meters (9600 baud 7E1) passes
   * this; DSMR 4 and 5 telegrams must carry a CRC and a missing one is refused.
   */
  readonly withoutCrc?: boolean;
}

export function parseP1Telegram(text: string, options: P1ParseOptions = {}): P1Telegram {
  const start = text.indexOf('/');
  const bang = text.indexOf('!', start);
  if (start < 0 || bang < 0) throw telegramError('no "/" ... "!" block');
  const sent = text.slice(bang + 1, bang + 5);
  const bare = /^\s*$/.test(text.slice(bang + 1));
  if (!(options.withoutCrc && bare)) {
    if (!/^[0-9A-Fa-f]{4}$/.test(sent)) throw telegramError(`no CRC after "!" (got "${sent}")`);
    const crc = crcHex(text.slice(start, bang + 1));
    if (crc !== sent.toUpperCase()) {
      throw telegramError(`CRC ${crc} does not match the telegram's ${sent.toUpperCase()}`, 'crc');
    }
  }
  const lines = text.slice(start, bang).split(/\r?\n/);
  const header = (lines[0] ?? '').slice(1).trim();
  const values: Record<string, { value: number; unit: string }> = {};
  let measuredAt: string | undefined;
  let gasMeasuredAt: string | undefined;
  for (const [index, line] of lines.entries()) {
    if (index === 0) continue; // the header
    // DSMR 2.2/3 gas: 0-n:24.3.0(time)(..)(..)(..)(0-n:24.2.1)(m3), the value on the next line.
    const older = /^0-\d:24\.3\.0\((\d{12})\).*\((m3)\)$/.exec(line.trim());
    if (older) {
      const next = (lines[index + 1] ?? '').trim();
      const value = /^\((\d+(?:\.\d+)?)\)$/.exec(next);
      if (!value) throw telegramError(`no gas value on the line after "${line.trim()}"`);
      gasMeasuredAt = withSeason(older[1] as string);
      values.gas = { value: Number(value[1]), unit: 'm3' };
      continue;
    }
    const match = /^(\d+-\d+:\d+\.\d+\.\d+)(\(.*\))$/.exec(line.trim());
    if (!match) continue;
    const [, code, rest = ''] = match;
    const obis = OBIS[code as keyof typeof OBIS];
    if (obis) values[obis.name] = parseValue(rest, line);
    const stamp = /^0-0:1\.0\.0\((\d{12}[SW])\)$/.exec(line.trim());
    if (stamp) measuredAt = stamp[1];
    // Gas on M-Bus channel 1: 0-1:24.2.1(timestamp)(value*m3).
    const gas = /^0-\d:24\.2\.[13]\((\d{12}[SW])\)(\(.*\))$/.exec(line.trim());
    if (gas) {
      gasMeasuredAt = gas[1];
      values.gas = parseValue(gas[2] as string, line);
    }
  }
  return {
    header,
    values,
    ...(measuredAt !== undefined && { measuredAt }),
    ...(gasMeasuredAt !== undefined && { gasMeasuredAt }),
  };
}

const HOUR_MS = 3_600_000;

/** 01:00 UTC on the last Sunday of `month` (0-based): when EU summer time starts or ends. */
function lastSundayOneUtc(year: number, month: number): number {
  const last = new Date(Date.UTC(year, month + 1, 0, 1));
  return last.getTime() - last.getUTCDay() * 24 * HOUR_MS;
}

/**
 * A TST (§6.4: YYMMDDhhmmssX) as milliseconds since the epoch. Meters keep Dutch local time and
 * say whether summer time is on (X = S, UTC+2) or not (W, UTC+1), so the hour that repeats when
 * summer time ends is still read right.
 */
export function parseP1Time(text: string): number {
  const match = /^(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)([SW])$/.exec(text);
  if (!match) throw telegramError(`"${text}" is not a time stamp YYMMDDhhmmssX`);
  const [year = 0, month = 1, day = 1, hour = 0, minute = 0, second = 0] = match
    .slice(1, 7)
    .map(Number);
  const local = Date.UTC(2000 + year, month - 1, day, hour, minute, second);
  return local - (match[7] === 'S' ? 2 : 1) * HOUR_MS;
}

/** Whether EU summer time is on at an instant (ms since the epoch). */
function summerTimeAt(ms: number): boolean {
  const year = new Date(ms).getUTCFullYear();
  return ms >= lastSundayOneUtc(year, 2) && ms < lastSundayOneUtc(year, 9);
}

/**
 * DSMR 2.2/3 time stamps carry no S/W flag: the meter's Dutch local time. Summer time is taken
 * when the reading as summer time and as winter time both fall in it; so in the hour that repeats
 * when summer time ends, winter time is taken.
 */
function withSeason(local: string): string {
  const winter = parseP1Time(`${local}W`);
  const summer = summerTimeAt(winter - HOUR_MS) && summerTimeAt(winter);
  return `${local}${summer ? 'S' : 'W'}`;
}

/** Milliseconds since the epoch as a TST, to the second, in Dutch local time (see parseP1Time). */
export function formatP1Time(ms: number): string {
  const summer = summerTimeAt(ms);
  const local = new Date(ms + (summer ? 2 : 1) * HOUR_MS);
  const two = (n: number) => String(n).padStart(2, '0');
  return `${two(local.getUTCFullYear() % 100)}${two(local.getUTCMonth() + 1)}${two(local.getUTCDate())}${two(local.getUTCHours())}${two(local.getUTCMinutes())}${two(local.getUTCSeconds())}${summer ? 'S' : 'W'}`;
}

export interface P1TelegramInput {
  /** After `/`: the manufacturer's three letters, the baud-rate digit and the model (§6.12). */
  readonly header: string;
  /** 0-0:1.0.0, when the meter made the telegram; milliseconds since the epoch. */
  readonly measuredAt: number;
  /** 0-0:96.1.1, the meter's serial number; sent hex-coded (§6.5, octet strings). */
  readonly equipmentId: string;
  /** 0-0:96.14.0, the tariff counting now: 1 (low) or 2 (normal). */
  readonly tariff: 1 | 2;
  /** Energy counters in kWh and powers in kW, by the names the parser gives them. */
  readonly electricity: Readonly<Record<P1ElectricityName, number>>;
  /**
   * The gas meter on M-Bus channel 1: DSMR 5 relays its last 5-minute value with the time it
   * was captured (0-1:24.2.1), not the time of the telegram.
   */
  readonly gas?: {
    readonly m3: number;
    readonly measuredAt: number;
    readonly equipmentId: string;
  };
}

/** A value in a fixed format with `digits` before the point and three after it. */
function fixed(value: number, digits: number, what: string): string {
  const text = value.toFixed(3).padStart(digits + 4, '0');
  if (!(value >= 0) || text.length > digits + 4) {
    throw new EipError(
      'INVALID_ARGUMENT',
      `P1 telegram: ${what} ${value} does not fit ${digits} digits before the point`,
    );
  }
  return text;
}

function hexCoded(text: string): string {
  return Buffer.from(text, 'latin1').toString('hex').toUpperCase();
}

/**
 * A DSMR 5 telegram as a meter sends it (§6.12): header, an empty line, the data objects, and
 * `!` with the CRC, every line ended by CR LF.
 */
export function buildP1Telegram(input: P1TelegramInput): string {
  const lines = [
    `/${input.header}`,
    '',
    '1-3:0.2.8(50)', // version 5.0
    `0-0:1.0.0(${formatP1Time(input.measuredAt)})`,
    `0-0:96.1.1(${hexCoded(input.equipmentId)})`,
  ];
  for (const [code, { name, unit, digits }] of Object.entries(OBIS)) {
    lines.push(`${code}(${fixed(input.electricity[name], digits, name)}*${unit})`);
    // The tariff indicator sits between the counters and the powers, as meters send it.
    if (code === '1-0:2.8.2') lines.push(`0-0:96.14.0(${String(input.tariff).padStart(4, '0')})`);
  }
  if (input.gas) {
    lines.push(
      '0-1:24.1.0(003)', // M-Bus device type 3: gas
      `0-1:96.1.0(${hexCoded(input.gas.equipmentId)})`,
      `0-1:24.2.1(${formatP1Time(input.gas.measuredAt)})(${fixed(input.gas.m3, GAS_DIGITS, 'gas')}*m3)`,
    );
  }
  const body = `${lines.join('\r\n')}\r\n!`;
  return `${body}${crcHex(body)}\r\n`;
}
