/**
 * The context a learned policy decides in (seed section 4.2: "decisions ... based on the context
 * information perceived ... as well as its own preferences"), as a small discrete state: what a
 * table of action values can be learned over in simulation and read by an edge agent.
 *
 * Every feature is relative (shares of the store, of the tariff spread, steps), so one table
 * serves every utility and plant size:
 *
 * - side: surplus to sell, deficit to buy, or too little to trade;
 * - urgency: steps before the imbalance must be settled, by the store filling or running dry at
 *   the last step's flow, or by the plant's own deadline (Fig. 5), whichever comes first;
 * - amount: the imbalance against the store (or against an hour of flow, without one);
 * - counterparts: requests for the opposite role seen in the last step;
 * - price: where the last known agreement price sits between the provider's tariffs, in thirds;
 *   the middle one before the agent knows any (an agent that waits for a price of its own to
 *   decide on never learns one: it stays in states training hardly met, and trades with the
 *   provider there for ever, as training showed);
 * - failures: negotiations failed in a row;
 * - spread: how far apart the provider's tariffs are, against its selling tariff.
 */
import type { Role } from '../negotiation/issues.js';
import type { Milli } from '../units.js';
import type { Observation } from './policy.js';

export const SIDES = ['balanced', 'surplus', 'deficit'] as const;
export type Side = (typeof SIDES)[number];

/** Upper bounds (inclusive) of each urgency bucket but the last, in steps. */
const URGENCY_STEPS = [5, 30, 180] as const;
/** Bounds of the amount buckets, as shares of the store. */
const AMOUNT_SHARES = [0.1, 0.4] as const;
/** A store-less plant's amount is measured against this many steps of its flow. */
const FLOW_STEPS = 60;

/** The features and how many values each takes; the state is their mixed-radix number. */
export const FEATURES = [
  ['side', SIDES.length],
  ['urgency', URGENCY_STEPS.length + 1],
  ['amount', AMOUNT_SHARES.length + 1],
  ['counterparts', 3],
  ['price', 3],
  ['failures', 3],
  ['spread', 2],
] as const;

export type Feature = (typeof FEATURES)[number][0];
export type Features = Readonly<Record<Feature, number>>;

export const STATE_COUNT = FEATURES.reduce((n, [, size]) => n * size, 1);

/** What the state space looks like: a learned policy is valid only for the layout it was learned on. */
export const STATE_LAYOUT = FEATURES.map(([name, size]) => `${name}${size}`).join(',');

export function sideOf(net: Milli, minTrade: Milli): Side {
  if (Math.abs(net) < Math.max(minTrade, 1)) return 'balanced';
  return net > 0 ? 'surplus' : 'deficit';
}

export function roleOf(side: Exclude<Side, 'balanced'>): Role {
  return side === 'surplus' ? 'seller' : 'buyer';
}

/**
 * Steps until the imbalance must be settled: the store is full (a surplus has nowhere to go) or
 * empty (a deficit cannot be met), at the last step's flow; a plant without a store must settle
 * at once. The plant's own deadline, when nearer, wins. Infinity when nothing presses.
 */
export function stepsToSettle(o: Observation, side: Side): number {
  let steps = Number.POSITIVE_INFINITY;
  if (o.storageCapacity <= 0) steps = 0;
  else if (side === 'surplus' && o.flow > 0) {
    steps = Math.max(0, (o.storageCapacity - o.storageLevel) / o.flow);
  } else if (side === 'deficit' && o.flow < 0) {
    steps = Math.max(0, o.storageLevel / -o.flow);
  }
  return o.stepsToDeadline === null ? steps : Math.min(steps, o.stepsToDeadline);
}

function bucket(value: number, bounds: readonly number[]): number {
  const i = bounds.findIndex((bound) => value <= bound);
  return i === -1 ? bounds.length : i;
}

export function featuresOf(o: Observation, minTrade: Milli): Features {
  const side = sideOf(o.net, minTrade);
  const amount = Math.abs(o.net);
  const scale = o.storageCapacity > 0 ? o.storageCapacity : Math.abs(o.flow) * FLOW_STEPS;
  const { provider_buys_at: buys, provider_sells_at: sells } = o.utility;
  const spread = sells - buys;
  const opposite = side === 'deficit' ? o.requestsSeen.seller : o.requestsSeen.buyer;
  const pricePosition =
    o.recentPrice === null || spread <= 0 ? null : (o.recentPrice - buys) / spread;
  return {
    side: SIDES.indexOf(side),
    urgency: bucket(stepsToSettle(o, side), URGENCY_STEPS),
    amount: scale > 0 ? bucket(amount / scale, AMOUNT_SHARES) : AMOUNT_SHARES.length,
    counterparts: side === 'balanced' ? 0 : opposite === 0 ? 0 : opposite <= 2 ? 1 : 2,
    price: bucket(pricePosition ?? 0.5, [1 / 3, 2 / 3]),
    failures: Math.min(o.failuresInRow, 2),
    spread: sells > 0 && spread / sells >= 0.5 ? 1 : 0,
  };
}

/** The state's number, 0 to STATE_COUNT - 1. */
export function stateOf(o: Observation, minTrade: Milli): number {
  const features = featuresOf(o, minTrade);
  return FEATURES.reduce((state, [name, size]) => state * size + features[name], 0);
}

/** The features of a state's number, for reports and debugging. */
export function describeState(state: number): Features {
  const features = {} as Record<Feature, number>;
  let rest = state;
  for (const [name, size] of [...FEATURES].reverse()) {
    features[name] = rest % size;
    rest = Math.floor(rest / size);
  }
  return features;
}
