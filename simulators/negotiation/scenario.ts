/**
 * A bilateral negotiation scenario: two prosumers, their psi per issue, their preferences (Fig. 5)
 * and the utility's provider tariffs as outside option. `case-study` and `negotiate` both build
 * one here and run it through the same `core` engine the edge agents use.
 */
import { EipError } from '../../core/errors.js';
import { type Evaluation, evaluate, type Preferences } from '../../core/negotiation/evaluation.js';
import type { Issue, Role } from '../../core/negotiation/issues.js';
import {
  type AfterDeadline,
  DEFAULT_MAX_ROUNDS,
  negotiate,
  type Outcome,
} from '../../core/negotiation/protocol.js';
import { type Psi, psi } from '../../core/negotiation/strategy.js';
import { formatMilli, fromMilli, type Milli, toMilli } from '../../core/units.js';
import type { Utility } from '../../core/utilities.js';

export interface ScenarioParty {
  readonly name: string;
  readonly psi: Readonly<Record<Issue, Psi>>;
  readonly preferences: Preferences;
  readonly afterDeadline: AfterDeadline;
}

export interface Scenario {
  readonly title: string;
  readonly notes: readonly string[];
  readonly utility: Utility;
  readonly ticks: Readonly<Record<Issue, Milli>>;
  readonly seller: ScenarioParty;
  readonly buyer: ScenarioParty;
  readonly opener: Role;
  readonly maxRounds: number;
  /** The park's time step at which round 0 happens. */
  readonly startStep: number;
}

export interface ScenarioResult {
  readonly scenario: Scenario;
  readonly outcome: Outcome;
  readonly evaluation: Evaluation;
}

export function runScenario(scenario: Scenario): ScenarioResult {
  const outcome = negotiate({
    seller: scenario.seller,
    buyer: scenario.buyer,
    ticks: scenario.ticks,
    opener: scenario.opener,
    maxRounds: scenario.maxRounds,
  });
  const evaluation = evaluate(outcome, {
    utility: scenario.utility,
    preferences: { seller: scenario.seller.preferences, buyer: scenario.buyer.preferences },
    startStep: scenario.startStep,
  });
  return { scenario, outcome, evaluation };
}

/** The seed's quantities (section 5): 100 m3 of surplus on offer, 150 m3 needed. */
export const DEFAULT_SURPLUS = 100;
export const DEFAULT_NEED = 150;

export interface SideOptions {
  readonly name?: string | undefined;
  readonly price: Psi;
  /** Quantity psi; by default derived from the price psi as described at `bilateralScenario`. */
  readonly quantity?: Psi | undefined;
  /** Seller: surplus to sell; buyer: need to cover. Defaults to the quantity psi's bound. */
  readonly amount?: Milli | undefined;
  readonly deadlineStep?: number | undefined;
}

export interface BilateralOptions {
  readonly title?: string | undefined;
  readonly notes?: readonly string[] | undefined;
  readonly utility: Utility;
  readonly priceTick?: Milli | undefined;
  readonly seller: SideOptions;
  readonly buyer: SideOptions;
  readonly opener?: Role | undefined;
  readonly afterDeadline?: AfterDeadline | undefined;
  readonly maxRounds?: number | undefined;
  readonly startStep?: number | undefined;
}

/**
 * Builds a scenario. Table 1 of the seed gives psi for price only; on quantity the paper says the
 * seller "does not concede" (it offers all of its surplus throughout) while the buyer does. So by
 * default the seller's quantity psi is ip = rp = surplus, and the buyer concedes from its need
 * down to 0 ("any amount helps") with the same dl and cr as on price. With Table 1 these defaults
 * give the paper's agreement on quantity at step 12.
 */
export function bilateralScenario(options: BilateralOptions): Scenario {
  const { utility } = options;
  const side = (role: Role, o: SideOptions, fallback: number): ScenarioParty => {
    const what = role === 'seller' ? 'surplus' : 'need';
    const quantityProblem = (problem: string) =>
      new EipError('INVALID_PSI', `${role} quantity: ${problem}`, {
        details: { role, issue: 'quantity', problem },
      });
    const bound = o.quantity === undefined ? fallback : Math.max(o.quantity.ip, o.quantity.rp);
    if (o.amount === undefined && !(bound > 0)) {
      throw quantityProblem(`ip or rp must be > 0: the larger is the most the ${role} trades`);
    }
    const amountMilli = o.amount ?? toMilli(bound, what);
    if (amountMilli <= 0) {
      throw new EipError(
        'INVALID_ARGUMENT',
        `${what} must be > 0 (got ${formatMilli(amountMilli)})`,
        { details: { what } },
      );
    }
    const amount = fromMilli(amountMilli);
    const quantity =
      o.quantity ??
      (role === 'seller'
        ? psi({ ip: amount, rp: amount, dl: o.price.dl, cr: o.price.cr })
        : psi({ ip: amount, rp: 0, dl: o.price.dl, cr: o.price.cr }));
    if (Math.max(quantity.ip, quantity.rp) > amount) {
      throw quantityProblem(`ip and rp must not exceed the ${what} (${amount})`);
    }
    return {
      name: o.name ?? (role === 'seller' ? 'Seller' : 'Buyer'),
      psi: { price: o.price, quantity },
      preferences: {
        quantity: amountMilli,
        deadlineStep: o.deadlineStep ?? Number.POSITIVE_INFINITY,
      },
      afterDeadline: options.afterDeadline ?? 'break-off',
    };
  };
  return {
    title: options.title ?? `Bilateral negotiation of ${utility.name.toLowerCase()}`,
    notes: options.notes ?? [],
    utility,
    ticks: { price: options.priceTick ?? utility.price_tick, quantity: utility.quantity_tick },
    seller: side('seller', options.seller, DEFAULT_SURPLUS),
    buyer: side('buyer', options.buyer, DEFAULT_NEED),
    opener: options.opener ?? 'seller',
    maxRounds: options.maxRounds ?? DEFAULT_MAX_ROUNDS,
    startStep: options.startStep ?? 0,
  };
}
