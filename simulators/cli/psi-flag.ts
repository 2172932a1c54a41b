/** `ip=80,rp=20,dl=20,cr=2` -> a validated Psi, with errors that name the flag and the key. */
import { EipError } from '../../core/errors.js';
import { type Psi, parsePsi } from '../../core/negotiation/strategy.js';
import { DECIMAL } from '../../core/units.js';

const KEYS = ['ip', 'rp', 'dl', 'cr'] as const;
const EXPECTED = 'expected ip=..,rp=..,dl=..,cr=..';

export function parsePsiFlag(text: string, flag: string): Psi {
  const usage = (problem: string) =>
    new EipError('INVALID_ARGUMENT', `${flag}: ${problem}`, { details: { flag } });
  const values: Record<string, number> = {};
  for (const part of text.split(',')) {
    const eq = part.indexOf('=');
    if (eq < 0) throw usage(`"${part}" is not key=value (${EXPECTED})`);
    const key = part.slice(0, eq).trim();
    const raw = part.slice(eq + 1).trim();
    if (!(KEYS as readonly string[]).includes(key))
      throw usage(`unknown key "${key}" (allowed: ${KEYS.join(', ')})`);
    if (key in values) throw usage(`${key} is given twice`);
    if (!DECIMAL.test(raw))
      throw usage(`${key} must be a decimal number like 20 or 0.5 (got "${raw}")`);
    values[key] = Number(raw);
  }
  const missing = KEYS.filter((key) => !(key in values));
  if (missing.length > 0) throw usage(`missing ${missing.join(', ')} (${EXPECTED})`);
  return parsePsi(values, flag);
}
