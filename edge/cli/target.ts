/** Parsing the link (`--tcp HOST:PORT` or `--rtu DEVICE --baud N`) and `--unit` flags an installer types. */
import { parseHostPort } from '../../core/cli.js';
import { EipError } from '../../core/errors.js';
import type { Link } from '../meters/modbus-client.js';
import { BAUD_RATES, FRAMINGS, type Framing } from '../meters/serial-line.js';

/** Exactly one of --tcp and --rtu. */
export function parseLink(flags: {
  tcp?: string | undefined;
  rtu?: string | undefined;
  baud: string;
  framing?: string | undefined;
}): Link {
  if ((flags.tcp === undefined) === (flags.rtu === undefined)) {
    throw new EipError(
      'INVALID_ARGUMENT',
      'give the meter as either --tcp HOST:PORT or --rtu DEVICE',
    );
  }
  if (flags.tcp !== undefined) return { kind: 'tcp', ...parseHostPort(flags.tcp, '--tcp') };
  const baudRate = Number(flags.baud);
  if (!(BAUD_RATES as readonly number[]).includes(baudRate)) {
    throw new EipError(
      'INVALID_ARGUMENT',
      `--baud: "${flags.baud}" is not one of ${BAUD_RATES.join(', ')}`,
    );
  }
  const framing = (flags.framing ?? '8N1').toUpperCase();
  if (!(FRAMINGS as readonly string[]).includes(framing)) {
    throw new EipError(
      'INVALID_ARGUMENT',
      `--framing: "${flags.framing}" is not one of ${FRAMINGS.join(', ')}`,
    );
  }
  return { kind: 'rtu', path: flags.rtu as string, baudRate, framing: framing as Framing };
}

/** Modbus unit ids: 1 to 247 address a device (0 is broadcast, 248+ reserved). */
export function parseUnit(text: string, flag = '--unit'): number {
  const unit = Number(text);
  if (!/^\d{1,3}$/.test(text) || unit < 1 || unit > 247) {
    throw new EipError(
      'INVALID_ARGUMENT',
      `${flag}: "${text}" is not a Modbus unit id from 1 to 247`,
    );
  }
  return unit;
}

/** `1-10,17` as the list of unit ids it names. */
export function parseUnits(text: string): number[] {
  const units = new Set<number>();
  for (const part of text.split(',')) {
    const [from, to = from] = part.split('-');
    const first = parseUnit(from ?? '', '--units');
    const last = parseUnit(to ?? '', '--units');
    if (last < first) throw new EipError('INVALID_ARGUMENT', `--units: "${part}" runs backwards`);
    for (let unit = first; unit <= last; unit++) units.add(unit);
  }
  return [...units].sort((a, b) => a - b);
}

export function parseMilliseconds(text: string, flag: string): number {
  const ms = Number(text);
  if (!/^\d{1,6}$/.test(text) || ms < 10) {
    throw new EipError(
      'INVALID_ARGUMENT',
      `${flag}: "${text}" is not a time in milliseconds from 10 to 999999`,
    );
  }
  return ms;
}
