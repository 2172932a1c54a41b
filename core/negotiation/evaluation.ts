/**
 * What a negotiation is worth to each party, measured against its outside option: trading the
 * same quantity with the main provider at its tariffs (section 5: "Prosumer 0 gets 35 tokens per
 * m3, when it would receive only 20").
 */
import { EipError } from '../errors.js';
import { formatMilli, type Milli, milli, signedTokenAmount, tokenAmount } from '../units.js';
import type { Utility } from '../utilities.js';
import type { Role } from './issues.js';
import type { Outcome } from './protocol.js';

/** A prosumer's preferences as in Fig. 5: how much, and by when. */
export interface Preferences {
  /** The surplus it wants to sell, or the need it wants to cover, in milli-units. */
  readonly quantity: Milli;
  /** Time step after which a deal is worth little to it; Infinity when timing does not matter. */
  readonly deadlineStep: number;
  /** Worth of a deal closed after the deadline, relative to one closed in time (0..1). */
  readonly lateValue?: number;
}

export interface PartyResult {
  readonly role: Role;
  /** Quantity traded with the peer (0 without agreement), milli-units. */
  readonly traded: Milli;
  /** What is left to trade with the provider: unsold surplus or uncovered deficit. */
  readonly remaining: Milli;
  /** Token base units received (seller) or paid (buyer) for the peer trade. */
  readonly tokens: bigint;
  /** Gain over trading the same quantity with the provider, token base units. */
  readonly gain: bigint;
  /** Gain per unit traded, milli-tokens per unit (0 without agreement). */
  readonly gainPerUnit: Milli;
  /** Time steps between the agreement and the prosumer's deadline (negative when late). */
  readonly stepsToDeadline: number | null;
  /** Fig. 5's preference value of the outcome, 0..1: share of the quantity, in time or late. */
  readonly satisfaction: number;
}

export interface Evaluation {
  readonly seller: PartyResult;
  readonly buyer: PartyResult;
  /** Tokens that change hands between the peers: exactly what the contract would escrow. */
  readonly escrow: bigint;
}

export interface EvaluationContext {
  readonly utility: Utility;
  readonly preferences: Readonly<Record<Role, Preferences>>;
  /** The park's time step at which the negotiation started (its round 0). */
  readonly startStep?: number;
}

export function evaluate(outcome: Outcome, context: EvaluationContext): Evaluation {
  const { utility, preferences } = context;
  const agreed = outcome.kind === 'agreement';
  const traded = agreed ? outcome.quantity : milli(0);
  const price = agreed ? outcome.price : milli(0);
  const closedAt = agreed ? (context.startStep ?? 0) + outcome.round : null;
  // What the buyer pays and the seller receives: one amount, exactly the escrow.
  const escrow = tokenAmount(traded, price);

  const result = (role: Role, perUnit: Milli): PartyResult => {
    const pref = preferences[role];
    if (traded > pref.quantity) {
      throw new EipError(
        'INVALID_ARGUMENT',
        `${role} traded ${formatMilli(traded)} but its preferences cover only ${formatMilli(pref.quantity)}`,
      );
    }
    const stepsToDeadline =
      closedAt === null || !Number.isFinite(pref.deadlineStep)
        ? null
        : pref.deadlineStep - closedAt;
    const timely = stepsToDeadline === null || stepsToDeadline >= 0;
    const share = pref.quantity === 0 ? 0 : traded / pref.quantity;
    return {
      role,
      traded,
      remaining: milli(pref.quantity - traded),
      tokens: escrow,
      gain: agreed ? signedTokenAmount(traded, perUnit) : 0n,
      gainPerUnit: agreed ? perUnit : milli(0),
      stepsToDeadline,
      satisfaction: share * (timely ? 1 : (pref.lateValue ?? 0.1)),
    };
  };

  return {
    seller: result('seller', milli(price - utility.provider_buys_at)),
    buyer: result('buyer', milli(utility.provider_sells_at - price)),
    escrow,
  };
}
