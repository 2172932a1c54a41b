/**
 * The policy learned in simulation (`eip-sim train`), as the edge agent runs it: a table of action
 * values over the context's states (context.ts) and the actions' grid (actions.ts). In a state
 * the agent takes the action of highest value among those training tried often enough to know
 * (the others have no value: null in the file); in a state training never reached it trades with
 * the provider, the choice that can never do worse than the provider alone.
 *
 * The policy file is JSON: the layout of states and actions it was learned on (a file of another
 * layout is refused, rather than read wrongly), the values of each state visited, and how it was
 * learned.
 */
import { z } from 'zod';
import { EipError } from '../errors.js';
import type { Role } from '../negotiation/issues.js';
import type { AgentSpec } from '../negotiation/protocol.js';
import type { Milli } from '../units.js';
import {
  ACTION_COUNT,
  ACTION_LAYOUT,
  actionOf,
  describeAction,
  PROVIDER,
  PROVIDER_HALF,
  WAIT,
} from './actions.js';
import { roleOf, STATE_COUNT, STATE_LAYOUT, sideOf, stateOf } from './context.js';
import { type Action, type Observation, type Policy, respondAsDecided } from './policy.js';

export const POLICY_FORMAT = 'eip-q-policy/1';

const finite = z.number().refine(Number.isFinite, 'must be a finite number');

export const policyFileSchema = z.strictObject({
  format: z.literal(POLICY_FORMAT),
  states: z.literal(STATE_LAYOUT, {
    error: `states must be "${STATE_LAYOUT}": this policy was learned on another context`,
  }),
  actions: z.literal(ACTION_LAYOUT, {
    error: `actions must be "${ACTION_LAYOUT}": this policy was learned on another action grid`,
  }),
  /** Below this many thousandths of a unit the agent does not trade. */
  min_trade_milli: z.number().int().min(1),
  /** Action values by state number; states never visited are absent, actions not learned null. */
  values: z.record(
    z
      .string()
      .regex(/^\d+$/, 'must be a state number')
      .refine(
        (state) => Number(state) < STATE_COUNT,
        `must be a state from 0 to ${STATE_COUNT - 1}`,
      ),
    z.array(finite.nullable()).length(ACTION_COUNT),
  ),
  /** How it was learned, for people: the scenario, episodes, seed, and what it was worth. */
  trained: z.record(z.string(), z.unknown()).default({}),
});

export type PolicyFile = z.output<typeof policyFileSchema>;

/** The action values, by state: the learner writes them, the policy reads them. NaN: not learned. */
export class QTable {
  private readonly values = new Map<number, Float64Array>();

  static fromFile(file: PolicyFile): QTable {
    const table = new QTable();
    // States are in range: policyFileSchema checked them.
    for (const [state, values] of Object.entries(file.values)) {
      table.values.set(
        Number(state),
        Float64Array.from(values, (v) => v ?? Number.NaN),
      );
    }
    return table;
  }

  /** The values of `state`, made (all 0) when first asked for. */
  row(state: number): Float64Array {
    let row = this.values.get(state);
    if (row === undefined) {
      row = new Float64Array(ACTION_COUNT);
      this.values.set(state, row);
    }
    return row;
  }

  has(state: number): boolean {
    return this.values.has(state);
  }

  clone(): QTable {
    const copy = new QTable();
    for (const [state, row] of this.values) copy.values.set(state, row.slice());
    return copy;
  }

  /** The states it has values for. */
  states(): IterableIterator<number> {
    return this.values.keys();
  }

  get size(): number {
    return this.values.size;
  }

  /**
   * The best action of `state` among `allowed` that has a value; the first of them wins a tie,
   * and the first of `allowed` is the answer when none has one.
   */
  best(state: number, allowed: readonly number[]): number {
    const row = this.values.get(state);
    let best = allowed[0] ?? WAIT;
    if (row === undefined) return best;
    let value = Number.NEGATIVE_INFINITY;
    for (const action of allowed) {
      const v = row[action] ?? Number.NaN;
      if (v > value) {
        value = v;
        best = action;
      }
    }
    return best;
  }

  toFile(minTrade: Milli, trained: Record<string, unknown>): PolicyFile {
    const values: Record<string, (number | null)[]> = {};
    for (const [state, row] of [...this.values].sort(([a], [b]) => a - b)) {
      // Four significant digits are plenty to rank actions, and keep the file small.
      values[String(state)] = Array.from(row, (v) =>
        Number.isNaN(v) ? null : Number(v.toPrecision(4)),
      );
    }
    return {
      format: POLICY_FORMAT,
      states: STATE_LAYOUT,
      actions: ACTION_LAYOUT,
      min_trade_milli: minTrade,
      values,
      trained,
    };
  }
}

/** Every action but waiting and the provider: negotiations with each grid psi. */
const NEGOTIATIONS = Array.from({ length: PROVIDER_HALF - 2 }, (_, k) => k + 2);
/** What may be chosen with an imbalance to trade: the provider first, so it wins a tie. */
export const TRADE_ACTIONS: readonly number[] = [PROVIDER, WAIT, ...NEGOTIATIONS, PROVIDER_HALF];

/**
 * The state, and what may be done in it: nothing but wait with too little to trade or while a
 * negotiation is under way.
 */
export function choicesOf(
  o: Observation,
  minTrade: Milli,
): { readonly state: number; readonly role: Role | null } {
  const side = sideOf(o.net, minTrade);
  return {
    state: stateOf(o, minTrade),
    role: side === 'balanced' || o.busy ? null : roleOf(side),
  };
}

export class LearnedPolicy implements Policy {
  readonly minTrade: Milli;

  constructor(
    private readonly table: QTable,
    minTrade: Milli,
  ) {
    this.minTrade = minTrade;
  }

  static fromFile(file: PolicyFile): LearnedPolicy {
    return new LearnedPolicy(QTable.fromFile(file), file.min_trade_milli as Milli);
  }

  decide(o: Observation): Action {
    const { state, role } = choicesOf(o, this.minTrade);
    if (role === null) {
      return { kind: 'wait', why: o.busy ? 'a negotiation is under way' : 'too little to trade' };
    }
    // Never seen in training: the provider, which is never worse than the provider alone.
    const action = this.table.has(state) ? this.table.best(state, TRADE_ACTIONS) : PROVIDER;
    const quantity = Math.abs(o.net) as Milli;
    return actionOf(action, role, quantity, o.utility, `learned: ${describeAction(action)}`);
  }

  respond(
    o: Observation,
    request: { readonly role: Role; readonly quantity: Milli },
  ): { readonly spec: AgentSpec; readonly quantity: Milli } | null {
    return respondAsDecided(this, o, request);
  }
}

/** Reads a policy file's JSON text; every problem is named with its path. */
export function parsePolicyFile(text: string, where: string): PolicyFile {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new EipError('INVALID_ARGUMENT', `${where}: not JSON (${(error as Error).message})`);
  }
  const result = policyFileSchema.safeParse(json);
  if (!result.success) {
    const problems = result.error.issues.map(
      (issue) => `${where}: ${issue.path.join('.') || '(file)'}: ${issue.message}`,
    );
    throw new EipError('INVALID_ARGUMENT', problems.join('\n'), { details: { problems } });
  }
  return result.data;
}
