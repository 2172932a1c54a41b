/**
 * A utility's balance per time step, from the meters' counters: what was produced and consumed
 * during the step (the increase of cumulative counters such as energy or volume), the level of a
 * store such as a gas holder, and the net amount this plant can sell (+) or must buy (-).
 *
 * With a store, production and consumption flow through it, so the net is what the store holds
 * above its reserve (the seed's Prosumer 0 sells the 100 m3 in its holder); without one, it is
 * the step's production minus consumption. A counter that runs backwards (meter replaced or
 * reset) contributes nothing for that step and is reported, rather than a huge negative flow.
 */
import { type Milli, milli } from '../../core/units.js';

export interface CounterValue {
  /** In the utility's unit (converted from the meter's). */
  readonly value: number;
  readonly stale: boolean;
}

export interface BalancePlan {
  readonly production: readonly string[];
  readonly consumption: readonly string[];
  readonly storage?:
    | { readonly level: string; readonly capacity: number; readonly reserve: number }
    | undefined;
}

export interface StepBalance {
  readonly production: Milli;
  readonly consumption: Milli;
  readonly storageLevel: Milli;
  readonly storageCapacity: Milli;
  /** Positive: surplus to sell; negative: deficit to buy. */
  readonly net: Milli;
  /** Counters that went backwards this step. */
  readonly resets: readonly string[];
}

export type BalanceOutcome =
  | { readonly kind: 'balance'; readonly balance: StepBalance }
  /** Some readings are missing or stale: no decision can rest on them this step. */
  | { readonly kind: 'unknown'; readonly missing: readonly string[] };

const toMilli = (units: number): Milli => milli(Math.round(units * 1000));

export class BalanceTracker {
  private previous = new Map<string, number>();

  constructor(
    private readonly plan: BalancePlan,
    private readonly read: (ref: string) => CounterValue | undefined,
  ) {}

  step(): BalanceOutcome {
    const refs = [
      ...this.plan.production,
      ...this.plan.consumption,
      ...(this.plan.storage ? [this.plan.storage.level] : []),
    ];
    const missing = refs.filter((ref) => {
      const value = this.read(ref);
      return value === undefined || value.stale;
    });
    if (missing.length > 0) return { kind: 'unknown', missing };

    const resets: string[] = [];
    const flow = (list: readonly string[]) =>
      list.reduce((sum, ref) => {
        const now = (this.read(ref) as CounterValue).value;
        const before = this.previous.get(ref);
        this.previous.set(ref, now);
        if (before === undefined) return sum;
        if (now < before) {
          resets.push(ref);
          return sum;
        }
        return sum + (now - before);
      }, 0);
    const produced = flow(this.plan.production);
    const consumed = flow(this.plan.consumption);
    const storage = this.plan.storage;
    const level = storage ? (this.read(storage.level) as CounterValue).value : 0;
    const net = storage ? level - storage.reserve : produced - consumed;
    return {
      kind: 'balance',
      balance: {
        production: toMilli(produced),
        consumption: toMilli(consumed),
        storageLevel: toMilli(Math.max(level, 0)),
        storageCapacity: toMilli(storage?.capacity ?? 0),
        net: toMilli(net),
        resets,
      },
    };
  }
}
