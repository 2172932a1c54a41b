/**
 * What an agent does each time step (seed section 4.2): wait, trade with the main provider, or
 * negotiate with a peer with strategy parameters psi. The policy is an interface, the same in the
 * edge agent and in the park simulation: the rule-based one here, the baselines of the
 * simulation and the policy learned there all sit behind the same two calls.
 */
import type { Role } from '../negotiation/issues.js';
import type { AgentSpec } from '../negotiation/protocol.js';
import { parsePsi } from '../negotiation/strategy.js';
import { type Milli, quantize } from '../units.js';
import type { Utility } from '../utilities.js';

/** What an agent knows of its situation when it decides (the seed's "context"). */
export interface Observation {
  readonly utility: Utility;
  readonly step: number;
  /** Positive: surplus; negative: deficit. */
  readonly net: Milli;
  /** A negotiation for this utility is already under way. */
  readonly busy: boolean;
  /** Negotiations for this utility that ended without agreement since the last success. */
  readonly failuresInRow: number;
  /** The store's level and capacity; both 0 for a plant without one. */
  readonly storageLevel: Milli;
  readonly storageCapacity: Milli;
  /** Production minus consumption in the last step: how fast the store fills (+) or empties. */
  readonly flow: Milli;
  /** Steps left before the plant's own deadline to settle this imbalance; null without one. */
  readonly stepsToDeadline: number | null;
  /** The unit price of the last agreement for this utility the agent knows of; null before. */
  readonly recentPrice: Milli | null;
  /** Requests to negotiate this utility seen in the last step, by the role they asked for. */
  readonly requestsSeen: Readonly<Record<Role, number>>;
}

export type Action =
  | { readonly kind: 'wait'; readonly why: string }
  | { readonly kind: 'provider'; readonly role: Role; readonly quantity: Milli }
  | {
      readonly kind: 'negotiate';
      readonly role: Role;
      readonly quantity: Milli;
      readonly spec: AgentSpec;
    };

export interface Policy {
  decide(observation: Observation): Action;
  /** Whether to answer another plant's request for the opposite role, and with what. */
  respond(
    observation: Observation,
    request: { readonly role: Role; readonly quantity: Milli },
  ): { readonly spec: AgentSpec; readonly quantity: Milli } | null;
}

/**
 * The answer of a policy whose decision this step would be to negotiate the other side: a
 * request for the role it would take itself is no match.
 */
export function respondAsDecided(
  policy: Pick<Policy, 'decide'>,
  observation: Observation,
  request: { readonly role: Role },
): { readonly spec: AgentSpec; readonly quantity: Milli } | null {
  const action = policy.decide(observation);
  if (action.kind !== 'negotiate' || action.role === request.role) return null;
  return { spec: action.spec, quantity: action.quantity };
}

export interface SideRules {
  readonly price: { ip: number; rp: number; dl: number; cr: number };
  readonly quantity: { ip_fraction: number; rp_fraction: number; dl: number; cr: number };
}

export interface RuleSettings {
  /** Smallest amount worth trading, in the utility's unit. */
  readonly min_trade: number;
  readonly sell: SideRules;
  readonly buy: SideRules;
  readonly provider_after_failures: number;
}

/** Surplus: sell; deficit: buy; too little: wait; peers keep failing: the provider. */
export class RulePolicy implements Policy {
  constructor(private readonly rules: RuleSettings) {}

  decide(o: Observation): Action {
    const amount = Math.abs(o.net);
    if (amount === 0 || amount < this.rules.min_trade * 1000) {
      return { kind: 'wait', why: `net ${o.net / 1000} ${o.utility.unit} is below min_trade` };
    }
    if (o.busy) return { kind: 'wait', why: 'a negotiation is under way' };
    const role: Role = o.net > 0 ? 'seller' : 'buyer';
    const quantity = amount as Milli;
    if (
      o.failuresInRow >= this.rules.provider_after_failures &&
      this.rules.provider_after_failures > 0
    ) {
      return { kind: 'provider', role, quantity };
    }
    return { kind: 'negotiate', role, quantity, spec: this.spec(o.utility, role, quantity) };
  }

  respond(o: Observation, request: { readonly role: Role; readonly quantity: Milli }) {
    return respondAsDecided(this, o, request);
  }

  /** psi for this role: price from the rules, quantity as fractions of the amount at stake. */
  spec(utility: Utility, role: Role, amount: Milli): AgentSpec {
    const side = role === 'seller' ? this.rules.sell : this.rules.buy;
    const units = (fraction: number) =>
      quantize((amount * fraction) / 1000, utility.quantity_tick, 'down') / 1000;
    return {
      name: role,
      psi: {
        price: parsePsi(side.price, `${role} price`),
        quantity: parsePsi(
          {
            ip: units(side.quantity.ip_fraction),
            rp: units(side.quantity.rp_fraction),
            dl: side.quantity.dl,
            cr: side.quantity.cr,
          },
          `${role} quantity`,
        ),
      },
    };
  }
}
