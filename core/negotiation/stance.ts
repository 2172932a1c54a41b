/**
 * One agent's stance on one issue: its psi turned into exact offers on the issue's tick grid,
 * and its acceptance rule.
 */
import { EipError } from '../errors.js';
import { formatMilli, type Milli, quantize, toMilli } from '../units.js';
import { type Issue, PREFERS_HIGHER, type Role } from './issues.js';
import { type Psi, sigma } from './strategy.js';

export interface Stance {
  readonly role: Role;
  readonly issue: Issue;
  readonly psi: Psi;
  /** The exact offer at round t: sigma on the tick grid, between ip and rp. */
  offerAt(t: number): Milli;
  /** Whether the opponent's value is at least as good as `ownOffer`, what I would offer now. */
  accepts(value: Milli, ownOffer: Milli): boolean;
}

/**
 * Builds a stance, checking that psi makes sense for the role: a seller concedes down on price
 * (ip >= rp), a buyer up; values are on the tick grid so that O_0 = ip and O_dl = rp hold exactly.
 */
export function makeStance(role: Role, issue: Issue, psi: Psi, tick: Milli): Stance {
  const fail = (problem: string): never => {
    throw new EipError('INVALID_PSI', `${role} ${issue}: ${problem}`, {
      details: { role, issue, problem },
    });
  };
  const onGrid = (key: 'ip' | 'rp'): Milli => {
    const offGrid = () =>
      fail(`${key} must be a multiple of the ${issue} tick ${formatMilli(tick)} (got ${psi[key]})`);
    let value: Milli;
    try {
      value = toMilli(psi[key], key);
    } catch {
      return offGrid();
    }
    if (value % tick !== 0) offGrid();
    if (value < 0) fail(`${key} must be >= 0 (got ${psi[key]})`);
    return value;
  };
  const ip = onGrid('ip');
  const rp = onGrid('rp');
  const prefersHigher = PREFERS_HIGHER[issue][role];
  if (prefersHigher ? ip < rp : ip > rp) {
    const relation = prefersHigher ? '>=' : '<=';
    const way = prefersHigher ? 'down' : 'up';
    fail(
      `ip (${psi.ip}) must be ${relation} rp (${psi.rp}): a ${role} concedes ${way} from ip to rp`,
    );
  }
  const low = Math.min(ip, rp) as Milli;
  const high = Math.max(ip, rp) as Milli;
  // Quantization rounds toward rp: the grid never makes an agent tougher than its curve, so it
  // cannot delay an agreement the curves allow. This is also what reproduces the seed's
  // agreement on 35 tokens at step 11 (sigma_seller(11) = 35.50 offers 35).
  const direction = prefersHigher ? 'down' : 'up';
  // An agent never takes more of a good than its own bound (a buyer offered 200 m3 needs 150),
  // and a deal on nothing is no deal.
  const bounded = issue === 'quantity';

  return {
    role,
    issue,
    psi,
    offerAt(t) {
      const offer = quantize(sigma(psi, t), tick, direction);
      return Math.min(Math.max(offer, low), high) as Milli;
    },
    accepts(value, ownOffer) {
      if (bounded && (value <= 0 || value > high)) return false;
      return prefersHigher ? value >= ownOffer : value <= ownOffer;
    },
  };
}
