/**
 * The park in simulation: every prosumer's production, consumption and store over the day, step by
 * step, and the market between them, with the same negotiation engine the edge agents run
 * (core/negotiation) and the same policy interface (core/policy). Fast and in one process: no
 * broker, no chain; a negotiation is played out within the step it starts in.
 *
 * Each step, for each prosumer and utility:
 *  1. the store takes the step's production and gives its consumption (the curves, scaled by the
 *     prosumer's size, with seeded noise);
 *  2. in a seeded order, as agents act at their own moments, the policy decides on the
 *     imbalance (level against target): wait, trade it with the provider at its tariff at once,
 *     or negotiate it. One that negotiates asks its peers, as the edge's negotiator does: those
 *     not yet engaged this step whose imbalance is the other side are asked to respond, and of
 *     those whose policy does, the nearest in quantity is chosen; the two negotiate with the
 *     psi their policies chose, and an agreement moves the quantity and the tokens at once. A
 *     request nobody answers found no counterpart;
 *  3. what cannot wait is settled at a penalty: a store past its capacity spills (sold at
 *     spill_factor times the provider's buying tariff), one below empty is filled at
 *     shortage_factor times its selling tariff, and an imbalance past the plant's deadline is
 *     settled the same way. A plant without a store has its untraded imbalance go through the
 *     provider's meter every step, at the tariff, as a grid connection settles it.
 * The day ends with every remaining imbalance traded with the provider at its tariffs.
 *
 * Every trade's gain against the provider's tariffs is a policy's reward: a peer trade gains the
 * price's distance from the tariff, a provider trade nothing, a penalty loses. Summed, it is the
 * prosumer's profit against trading with the provider alone.
 */
import type { Role } from '../../core/negotiation/issues.js';
import { negotiate, type Outcome } from '../../core/negotiation/protocol.js';
import type { Action, Observation, Policy } from '../../core/policy/policy.js';
import { type Milli, milli } from '../../core/units.js';
import type { UtilityId } from '../../core/utilities.js';
import { normal, random, shuffle } from '../random.js';
import type { ParkScenario, PlantUtility, SimProsumer } from './scenario.js';

/** What a policy that learns hears back: the gain of what followed its decisions. */
export interface Learning {
  /** Tokens gained (or lost, negative) against the provider since the last decision. */
  reward(tokens: number): void;
  /** The day is over. */
  end(): void;
}

export type SimPolicy = Policy & Partial<Learning>;

/** One negotiation of the day, as the evaluation measures it. */
export interface NegotiationRecord {
  readonly step: number;
  readonly utility: UtilityId;
  readonly seller: string;
  readonly buyer: string;
  /** What each side put on the table: the seller's surplus, the buyer's deficit. */
  readonly offered: Readonly<Record<Role, Milli>>;
  readonly outcome: Outcome;
}

/** A prosumer's day, in tokens (floats: the evaluation sums and compares them). */
export interface ProsumerDay {
  readonly id: string;
  /** Money in minus money out: sales to peers and the provider, less purchases and penalties. */
  readonly cash: number;
  /** Gain against the provider's tariffs: peer trades' gains less penalties. */
  readonly gain: number;
  /** Milli-units bought and sold with peers, and with the provider (the day's close included). */
  readonly peerVolume: number;
  readonly providerVolume: number;
  /** Milli-units spilled or bought at the shortage penalty. */
  readonly penaltyVolume: number;
  readonly penaltyCost: number;
}

export interface DayResult {
  readonly prosumers: readonly ProsumerDay[];
  /** Requests that found no counterpart. */
  readonly unanswered: number;
}

export interface SimOptions {
  readonly scenario: ParkScenario;
  /** The day's randomness: noise and pairing. The same seed, the same day. */
  readonly seed: number;
  /** The policy of each prosumer for each utility. */
  readonly policyOf: (prosumer: SimProsumer, utility: UtilityId) => SimPolicy;
  /** Hears each negotiation as it ends (the evaluation measures them; training need not). */
  readonly onNegotiation?: (record: NegotiationRecord) => void;
}

interface Seat {
  readonly prosumer: SimProsumer;
  readonly plant: PlantUtility;
  readonly policy: SimPolicy;
  readonly account: Account;
  level: number;
  flow: number;
  failuresInRow: number;
  recentPrice: Milli | null;
  /** The step the current imbalance began, for the plant's deadline; null while balanced. */
  since: number | null;
}

interface Account {
  cash: number;
  gain: number;
  peerVolume: number;
  providerVolume: number;
  penaltyVolume: number;
  penaltyCost: number;
}

type Negotiate = Extract<Action, { kind: 'negotiate' }>;

/** One side of a negotiation: who, with what psi, for how much. */
interface Party {
  readonly seat: Seat;
  readonly spec: Negotiate['spec'];
  readonly quantity: Milli;
}

const MILLI = 1000;
const NONE_SEEN: Readonly<Record<Role, number>> = { seller: 0, buyer: 0 };
/** Tokens of `quantity` milli-units at `price` milli-tokens per unit. */
const tokens = (quantity: number, price: number) => (quantity * price) / (MILLI * MILLI);

export function simulateDay(options: SimOptions): DayResult {
  const { scenario } = options;
  const uniform = random(options.seed);
  const accounts = new Map<string, Account>();
  const seats: Seat[] = scenario.prosumers.flatMap((prosumer) => {
    const account: Account = {
      cash: 0,
      gain: 0,
      peerVolume: 0,
      providerVolume: 0,
      penaltyVolume: 0,
      penaltyCost: 0,
    };
    accounts.set(prosumer.id, account);
    return prosumer.utilities.map((plant) => ({
      prosumer,
      plant,
      policy: options.policyOf(prosumer, plant.utility.id),
      account,
      level: plant.level,
      flow: 0,
      failuresInRow: 0,
      recentPrice: null,
      since: null,
    }));
  });
  const seatsOf = new Map<UtilityId, Seat[]>();
  for (const seat of seats) {
    const list = seatsOf.get(seat.plant.utility.id) ?? [];
    list.push(seat);
    seatsOf.set(seat.plant.utility.id, list);
  }
  let engaged = new Set<Seat>();
  let unanswered = 0;
  let requestsSeen = new Map<UtilityId, Record<Role, number>>();

  const trade = (seat: Seat, role: Role, quantity: number, price: number, gain: number) => {
    const sign = role === 'seller' ? 1 : -1;
    seat.level -= sign * quantity;
    seat.account.cash += sign * tokens(quantity, price);
    seat.account.gain += gain;
    seat.policy.reward?.(gain);
  };
  const withProvider = (seat: Seat, role: Role, quantity: number) => {
    const { provider_buys_at: buys, provider_sells_at: sells } = seat.plant.utility;
    trade(seat, role, quantity, role === 'seller' ? buys : sells, 0);
    seat.account.providerVolume += quantity;
  };
  /** What cannot wait, at the penalty: spilled or bought dear, against the tariff it missed. */
  const penalise = (seat: Seat, role: Role, quantity: number) => {
    const { provider_buys_at: buys, provider_sells_at: sells } = seat.plant.utility;
    const price = role === 'seller' ? buys * scenario.spillFactor : sells * scenario.shortageFactor;
    const lost =
      role === 'seller' ? tokens(quantity, buys - price) : tokens(quantity, price - sells);
    trade(seat, role, quantity, price, -lost);
    seat.account.penaltyVolume += quantity;
    seat.account.penaltyCost += lost;
  };

  for (let step = 0; step < options.scenario.steps; step++) {
    const fromMs = step * scenario.stepMs;
    for (const seat of seats) {
      const { plant, prosumer } = seat;
      const amount = (curve: PlantUtility['production']) => {
        const exact = Math.abs(curve.integral(fromMs, fromMs + scenario.stepMs)) * MILLI;
        return Math.max(0, exact * prosumer.size * (1 + plant.noise * normal(uniform)));
      };
      seat.flow = amount(plant.production) - amount(plant.consumption);
      seat.level += seat.flow;
    }

    // In a seeded order, as agents act at their own moments within a step: each decides; one
    // that negotiates asks its peers, and those whose policy would take the other side answer
    // (as the edge's responder does); it negotiates with the one nearest its quantity.
    engaged = new Set<Seat>();
    const seen = new Map<UtilityId, Record<Role, number>>();
    for (const seat of seats) {
      const imbalanced = Math.abs(seat.level - seat.plant.target) >= scenario.minTrade;
      if (!imbalanced) seat.since = null;
      else seat.since ??= step;
    }
    for (const seat of shuffle(uniform, [...seats])) {
      if (engaged.has(seat)) continue;
      const action = seat.policy.decide(observe(seat, step, seenOf(seat)));
      if (action.kind === 'wait') continue;
      engaged.add(seat);
      if (action.kind === 'provider') {
        const net = Math.abs(seat.level - seat.plant.target);
        withProvider(seat, action.role, Math.min(action.quantity, net));
        seat.failuresInRow = 0;
        continue;
      }
      const utility = seat.plant.utility.id;
      const counts = seen.get(utility) ?? { seller: 0, buyer: 0 };
      counts[action.role]++;
      seen.set(utility, counts);
      const partner = answer(seat, action, step);
      if (partner === null) {
        unanswered++;
        seat.failuresInRow++;
        continue;
      }
      engaged.add(partner.seat);
      const [seller, buyer] =
        action.role === 'seller'
          ? [{ seat, spec: action.spec, quantity: action.quantity }, partner]
          : [partner, { seat, spec: action.spec, quantity: action.quantity }];
      const outcome = negotiate({
        seller: seller.spec,
        buyer: buyer.spec,
        ticks: { price: seat.plant.utility.price_tick, quantity: seat.plant.utility.quantity_tick },
        opener: action.role,
      });
      if (options.onNegotiation) {
        options.onNegotiation({
          step,
          utility,
          seller: seller.seat.prosumer.id,
          buyer: buyer.seat.prosumer.id,
          offered: { seller: seller.quantity, buyer: buyer.quantity },
          outcome,
        });
      }
      settle(seller.seat, buyer.seat, outcome);
    }
    requestsSeen = seen;

    for (const seat of seats) {
      const { capacity, target } = seat.plant;
      if (capacity > 0) {
        // The store overflows or runs dry: what it cannot hold is spilled, what it lacks bought.
        if (seat.level > capacity) penalise(seat, 'seller', seat.level - capacity);
        if (seat.level < 0) penalise(seat, 'buyer', -seat.level);
      }
      const net = seat.level - target;
      const role = net > 0 ? 'seller' : 'buyer';
      if (capacity === 0) {
        // Nowhere to keep it: what was not traded goes through the provider's meter, at tariff.
        if (net !== 0) withProvider(seat, role, Math.abs(net));
        continue;
      }
      // A trade that settled the imbalance ended it: its deadline runs no more.
      if (Math.abs(net) < scenario.minTrade) seat.since = null;
      const overdue =
        seat.since !== null &&
        seat.plant.deadlineSteps !== null &&
        step - seat.since + 1 >= seat.plant.deadlineSteps;
      if (overdue) {
        penalise(seat, role, Math.abs(net));
        seat.since = null;
      }
    }
  }

  // The day closes with the provider: what is left is traded at its tariffs.
  for (const seat of seats) {
    const net = seat.level - seat.plant.target;
    if (net !== 0) withProvider(seat, net > 0 ? 'seller' : 'buyer', Math.abs(net));
    seat.policy.end?.();
  }

  /**
   * The peer that answers `requester`'s request: among those of the utility not yet engaged this
   * step whose imbalance is the other side, the ones whose policy responds (told of this
   * request), and of them the nearest in quantity; null when nobody answers.
   */
  function answer(requester: Seat, ask: Negotiate, step: number): Party | null {
    const wanted = ask.role === 'seller' ? -1 : 1;
    let best: Party | null = null;
    for (const peer of seatsOf.get(requester.plant.utility.id) ?? []) {
      if (peer === requester || engaged.has(peer)) continue;
      const net = peer.level - peer.plant.target;
      if (Math.sign(net) !== wanted || Math.abs(net) < scenario.minTrade) continue;
      const counts = seenOf(peer);
      const told = { ...counts, [ask.role]: counts[ask.role] + 1 };
      const reply = peer.policy.respond(observe(peer, step, told), {
        role: ask.role,
        quantity: ask.quantity,
      });
      if (reply === null) continue;
      const gap = Math.abs(reply.quantity - ask.quantity);
      if (best === null || gap < Math.abs(best.quantity - ask.quantity)) {
        best = { seat: peer, spec: reply.spec, quantity: reply.quantity };
      }
    }
    return best;
  }

  function seenOf(seat: Seat): Readonly<Record<Role, number>> {
    return requestsSeen.get(seat.plant.utility.id) ?? NONE_SEEN;
  }

  function settle(seller: Seat, buyer: Seat, outcome: Outcome) {
    if (outcome.kind !== 'agreement') {
      seller.failuresInRow++;
      buyer.failuresInRow++;
      return;
    }
    const { price, quantity } = outcome;
    const utility = seller.plant.utility;
    trade(seller, 'seller', quantity, price, tokens(quantity, price - utility.provider_buys_at));
    trade(buyer, 'buyer', quantity, price, tokens(quantity, utility.provider_sells_at - price));
    for (const seat of [seller, buyer]) {
      seat.account.peerVolume += quantity;
      seat.failuresInRow = 0;
      seat.recentPrice = price;
    }
  }

  return {
    prosumers: scenario.prosumers.map((p) => ({ id: p.id, ...(accounts.get(p.id) as Account) })),
    unanswered,
  };
}

function observe(
  seat: Seat,
  step: number,
  requestsSeen: Readonly<Record<Role, number>>,
): Observation {
  const { plant } = seat;
  const net = Math.round(seat.level - plant.target);
  return {
    utility: plant.utility,
    step,
    net: milli(net),
    busy: false,
    failuresInRow: seat.failuresInRow,
    storageLevel: milli(Math.max(0, Math.round(seat.level))),
    storageCapacity: plant.capacity,
    flow: milli(Math.round(seat.flow)),
    stepsToDeadline:
      seat.since === null || plant.deadlineSteps === null
        ? null
        : Math.max(0, plant.deadlineSteps - (step - seat.since) - 1),
    recentPrice: seat.recentPrice,
    requestsSeen,
  };
}
