/**
 * How good the market is under each policy (`eip-sim evaluate`): every policy plays the same days
 * (the same seeds, so the same production, consumption and order of moves), and each prosumer's
 * day is compared with what trading with the provider alone gave it.
 *
 * Per policy, for the park and for each prosumer: profit against the provider alone; volume
 * traded with peers; the agreement rate (agreements over negotiations that found a
 * counterpart) and requests nobody answered; rounds to agreement; and the quality of each
 * agreement as a negotiation framework such as NegMAS reports it, with each party's utility its
 * gain against the provider's tariff (the seller: price - buying tariff, the buyer: selling
 * tariff - price, per unit traded):
 *  - distance to the Pareto frontier: the share of the joint gain the pair left on the table,
 *    against trading the most both offered (1 - (u_s + u_b) / ((sells - buys) q*), with q* the
 *    lesser of what the seller offered and the buyer asked); 0 on the frontier;
 *  - Nash product: u_s u_b against its largest, at the middle of the spread with q*; 1 at the
 *    Nash bargaining solution;
 *  - fairness of the split: 1 - |u_s - u_b| / (u_s + u_b); 1 when both gain alike.
 */
import type { Utility, UtilityId } from '../../core/utilities.js';
import { type DayResult, type NegotiationRecord, type SimPolicy, simulateDay } from './park-sim.js';
import { type ParkScenario, type SimProsumer, scenarioUtility } from './scenario.js';

export interface PolicyUnderTest {
  readonly name: string;
  /** A policy per prosumer and utility, for the day of `seed`. */
  readonly policyOf: (seed: number) => (prosumer: SimProsumer, utility: UtilityId) => SimPolicy;
}

export interface AgreementQuality {
  readonly paretoDistance: number;
  readonly nashProduct: number;
  readonly fairness: number;
}

export interface Summary {
  /** Tokens, summed over the days. */
  readonly profitVsProvider: number;
  /** Traded between peers over the days, per utility, in its unit. */
  readonly peerVolume: Readonly<Partial<Record<UtilityId, number>>>;
  readonly negotiations: number;
  readonly agreements: number;
  /** agreements / negotiations; null without any. */
  readonly agreementRate: number | null;
  readonly unanswered: number;
  readonly meanRounds: number | null;
  /** Means over the agreements; null without any. */
  readonly quality: AgreementQuality | null;
  readonly penaltyCost: number;
}

export interface ProsumerSummary {
  readonly id: string;
  /** Over the days. */
  readonly profitVsProvider: number;
  /** The worst single day against the provider alone. */
  readonly worstDay: number;
  readonly agreements: number;
}

export interface PolicyEvaluation {
  readonly policy: string;
  readonly park: Summary;
  readonly prosumers: readonly ProsumerSummary[];
  /** Days on which some prosumer did worse than with the provider alone, and by how much at most. */
  readonly individuallyRational: { readonly daysWithLoss: number; readonly worstLoss: number };
  /** Unit prices of every agreement, per utility, for the price distributions. */
  readonly prices: Readonly<Partial<Record<UtilityId, readonly number[]>>>;
  /** The first agreement of the first day that took the most rounds: one to plot. */
  readonly sample: NegotiationRecord | null;
  /** Seconds of simulation, all days. */
  readonly simulatedS: number;
}

export interface Evaluation {
  readonly scenario: string;
  readonly seeds: readonly number[];
  readonly prosumers: number;
  readonly policies: readonly PolicyEvaluation[];
}

const MILLI = 1000;

/** The quality of one agreement (see the header), or null for a negotiation without one. */
export function agreementQuality(n: NegotiationRecord, utility: Utility): AgreementQuality | null {
  if (n.outcome.kind !== 'agreement') return null;
  const { price, quantity } = n.outcome;
  const spread = utility.provider_sells_at - utility.provider_buys_at;
  const most = Math.min(n.offered.seller, n.offered.buyer);
  const seller = (price - utility.provider_buys_at) * quantity;
  const buyer = (utility.provider_sells_at - price) * quantity;
  const best = spread * most;
  const joint = seller + buyer;
  return {
    paretoDistance: best <= 0 ? 0 : Math.max(0, 1 - joint / best),
    nashProduct: best <= 0 ? 1 : (seller * buyer) / (best / 2) ** 2,
    fairness: joint <= 0 ? 1 : 1 - Math.abs(seller - buyer) / joint,
  };
}

/** What the negotiations of a policy's days add up to, taken as each ends (none is kept). */
class Tally {
  negotiations = 0;
  agreements = 0;
  rounds = 0;
  readonly quality = { paretoDistance: 0, nashProduct: 0, fairness: 0 };
  readonly prices: Partial<Record<UtilityId, number[]>> = {};
  readonly peerVolume: Partial<Record<UtilityId, number>> = {};
  readonly agreementsOf = new Map<string, number>();
  /** Of the first day, the agreement that took the most moves: one to plot. */
  sample: NegotiationRecord | null = null;

  constructor(private readonly scenario: ParkScenario) {}

  add(n: NegotiationRecord, firstDay: boolean): void {
    this.negotiations++;
    const q = agreementQuality(n, scenarioUtility(this.scenario, n.utility));
    if (n.outcome.kind !== 'agreement' || q === null) return;
    this.agreements++;
    this.rounds += n.outcome.round + 1;
    this.quality.paretoDistance += q.paretoDistance;
    this.quality.nashProduct += q.nashProduct;
    this.quality.fairness += q.fairness;
    const prices = this.prices[n.utility] ?? [];
    prices.push(n.outcome.price / MILLI);
    this.prices[n.utility] = prices;
    this.peerVolume[n.utility] = (this.peerVolume[n.utility] ?? 0) + n.outcome.quantity / MILLI;
    for (const id of [n.seller, n.buyer]) {
      this.agreementsOf.set(id, (this.agreementsOf.get(id) ?? 0) + 1);
    }
    const longest = this.sample?.outcome.transcript.length ?? -1;
    if (firstDay && n.outcome.transcript.length > longest) this.sample = n;
  }
}

/** Plays every day of `seeds` under `policy`, tallying its negotiations. */
function play(scenario: ParkScenario, policy: PolicyUnderTest, seeds: readonly number[]) {
  const started = performance.now();
  const tally = new Tally(scenario);
  const days = seeds.map((seed, d) =>
    simulateDay({
      scenario,
      seed,
      policyOf: policy.policyOf(seed),
      onNegotiation: (n) => tally.add(n, d === 0),
    }),
  );
  return { days, tally, simulatedS: (performance.now() - started) / 1000 };
}

function summarise(
  name: string,
  { days, tally, simulatedS }: ReturnType<typeof play>,
  baseline: readonly DayResult[],
): PolicyEvaluation {
  let daysWithLoss = 0;
  let worstLoss = 0;
  const perProsumer = new Map<string, { profit: number; worst: number }>();
  days.forEach((day, d) => {
    let loss = false;
    day.prosumers.forEach((p, i) => {
      const profit = p.cash - (baseline[d]?.prosumers[i]?.cash ?? 0);
      if (profit < -1e-6) {
        loss = true;
        worstLoss = Math.min(worstLoss, profit);
      }
      const entry = perProsumer.get(p.id) ?? { profit: 0, worst: Number.POSITIVE_INFINITY };
      entry.profit += profit;
      entry.worst = Math.min(entry.worst, profit);
      perProsumer.set(p.id, entry);
    });
    if (loss) daysWithLoss++;
  });
  const prosumers = [...perProsumer].map(([id, e]) => ({
    id,
    profitVsProvider: e.profit,
    worstDay: e.worst,
    agreements: tally.agreementsOf.get(id) ?? 0,
  }));
  const { agreements, negotiations, quality } = tally;
  return {
    policy: name,
    park: {
      profitVsProvider: prosumers.reduce((s, p) => s + p.profitVsProvider, 0),
      peerVolume: tally.peerVolume,
      negotiations,
      agreements,
      agreementRate: negotiations === 0 ? null : agreements / negotiations,
      unanswered: days.reduce((s, d) => s + d.unanswered, 0),
      meanRounds: agreements === 0 ? null : tally.rounds / agreements,
      quality:
        agreements === 0
          ? null
          : {
              paretoDistance: quality.paretoDistance / agreements,
              nashProduct: quality.nashProduct / agreements,
              fairness: quality.fairness / agreements,
            },
      penaltyCost: days.reduce((s, d) => s + d.prosumers.reduce((t, p) => t + p.penaltyCost, 0), 0),
    },
    prosumers,
    individuallyRational: { daysWithLoss, worstLoss },
    prices: tally.prices,
    sample: tally.sample,
    simulatedS,
  };
}

/**
 * Each policy on each of `seeds`, against the provider alone on the same days; the first of
 * `policies` is that baseline. `onPolicy` hears each as it finishes (for progress).
 */
export function evaluate(
  scenario: ParkScenario,
  policies: readonly PolicyUnderTest[],
  seeds: readonly number[],
  onPolicy: (name: string, seconds: number) => void = () => undefined,
): Evaluation {
  const [baselinePolicy] = policies;
  if (baselinePolicy === undefined) throw new RangeError('no policy to evaluate');
  const baseline = play(scenario, baselinePolicy, seeds);
  onPolicy(baselinePolicy.name, baseline.simulatedS);
  const results = [summarise(baselinePolicy.name, baseline, baseline.days)];
  for (const policy of policies.slice(1)) {
    const played = play(scenario, policy, seeds);
    onPolicy(policy.name, played.simulatedS);
    results.push(summarise(policy.name, played, baseline.days));
  }
  return {
    scenario: scenario.name,
    seeds,
    prosumers: scenario.prosumers.length,
    policies: results,
  };
}
