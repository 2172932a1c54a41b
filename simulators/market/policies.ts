/**
 * The policies the learned one is measured against (`eip-sim evaluate`), all behind the policy
 * interface the edge agents use:
 *
 * - provider only: every imbalance traded with the provider at once, the outside option every
 *   profit is counted against;
 * - fixed psi: the edge's rule-based policy with the seed's Table 1 strategies on every utility
 *   (the seller opens at the provider's selling tariff and concedes to its buying tariff in 20
 *   steps, cr 2; the buyer the other way, cr 0.5), the provider after two failures in a row;
 * - random: any action of the learned policy's, drawn uniformly (seeded).
 */

import { actionOf, describeAction } from '../../core/policy/actions.js';
import { choicesOf, type LearnedPolicy, TRADE_ACTIONS } from '../../core/policy/learned.js';
import type { Action, Observation, Policy } from '../../core/policy/policy.js';
import { RulePolicy, respondAsDecided } from '../../core/policy/policy.js';
import { fromMilli, type Milli } from '../../core/units.js';
import type { Utility } from '../../core/utilities.js';
import { below, random } from '../random.js';
import type { PolicyUnderTest } from './evaluate.js';
import { type ParkScenario, scenarioUtility } from './scenario.js';

export class ProviderOnlyPolicy implements Policy {
  constructor(private readonly minTrade: Milli) {}

  decide(o: Observation): Action {
    const { role } = choicesOf(o, this.minTrade);
    if (role === null) return { kind: 'wait', why: 'nothing to trade' };
    return { kind: 'provider', role, quantity: Math.abs(o.net) as Milli };
  }

  respond() {
    return null;
  }
}

/** Table 1 of the seed on `utility`'s tariffs, through the edge's rule-based policy. */
export function fixedPsiPolicy(utility: Utility, minTrade: Milli): RulePolicy {
  const sells = fromMilli(utility.provider_sells_at);
  const buys = fromMilli(utility.provider_buys_at);
  return new RulePolicy({
    min_trade: fromMilli(minTrade),
    sell: {
      price: { ip: sells, rp: buys, dl: 20, cr: 2 },
      quantity: { ip_fraction: 1, rp_fraction: 1, dl: 20, cr: 1 },
    },
    buy: {
      price: { ip: buys, rp: sells, dl: 20, cr: 0.5 },
      quantity: { ip_fraction: 1, rp_fraction: 0.5, dl: 20, cr: 1 },
    },
    provider_after_failures: 2,
  });
}

export class RandomPolicy implements Policy {
  constructor(
    private readonly minTrade: Milli,
    private readonly uniform: () => number,
  ) {}

  decide(o: Observation): Action {
    const { role } = choicesOf(o, this.minTrade);
    if (role === null) return { kind: 'wait', why: 'nothing to trade' };
    const action = TRADE_ACTIONS[below(this.uniform, TRADE_ACTIONS.length)] as number;
    const quantity = Math.abs(o.net) as Milli;
    return actionOf(action, role, quantity, o.utility, `random: ${describeAction(action)}`);
  }

  respond(o: Observation, request: Parameters<Policy['respond']>[1]) {
    return respondAsDecided(this, o, request);
  }
}

/**
 * The policies `eip-sim evaluate` compares, the provider alone first (every profit is counted
 * against it), and the learned one last when there is one.
 */
export function comparedPolicies(
  scenario: ParkScenario,
  learned: LearnedPolicy | null,
): PolicyUnderTest[] {
  const providerOnly = new ProviderOnlyPolicy(scenario.minTrade);
  const policies: PolicyUnderTest[] = [
    { name: 'provider only', policyOf: () => () => providerOnly },
    {
      name: 'fixed psi',
      // On the scenario's own tariffs: each prosumer's utility as the simulation runs it.
      policyOf: () => (_prosumer, utility) =>
        fixedPsiPolicy(scenarioUtility(scenario, utility), scenario.minTrade),
    },
    {
      name: 'random',
      policyOf: (seed) => {
        const policy = new RandomPolicy(scenario.minTrade, random(seed * 31 + 7));
        return () => policy;
      },
    },
  ];
  if (learned) policies.push({ name: 'learned', policyOf: () => () => learned });
  return policies;
}
