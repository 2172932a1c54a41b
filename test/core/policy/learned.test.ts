import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { EipError } from '../../../core/errors.js';
import {
  ACTION_COUNT,
  ACTION_LAYOUT,
  gridSpec,
  PROVIDER,
  PSI_GRID,
  WAIT,
} from '../../../core/policy/actions.js';
import { STATE_COUNT, STATE_LAYOUT, stateOf } from '../../../core/policy/context.js';
import {
  LearnedPolicy,
  POLICY_FORMAT,
  type PolicyFile,
  parsePolicyFile,
  policyFileSchema,
  QTable,
  TRADE_ACTIONS,
} from '../../../core/policy/learned.js';
import { milli } from '../../../core/units.js';
import { UTILITIES } from '../../../core/utilities.js';
import { observation, thrown } from '../../support/policy.js';

const MIN_TRADE = milli(1000);
const NEGOTIATE = (k: number) => 2 + k;

/** A row of ACTION_COUNT values, NaN (not learned) but where given. */
function rowOf(values: Readonly<Record<number, number>>): number[] {
  return Array.from({ length: ACTION_COUNT }, (_, a) => values[a] ?? Number.NaN);
}

function tableWith(rows: Readonly<Record<number, Readonly<Record<number, number>>>>): QTable {
  const table = new QTable();
  for (const [state, values] of Object.entries(rows)) {
    table.row(Number(state)).set(rowOf(values));
  }
  return table;
}

describe('QTable.best', () => {
  it('picks the highest value among the allowed actions only', () => {
    const table = tableWith({ 7: { 0: 1, 1: 5, 2: 3, 3: 9 } });
    expect(table.best(7, [0, 1, 2, 3])).toBe(3);
    // 3 is not allowed: the best of the rest.
    expect(table.best(7, [0, 1, 2])).toBe(1);
    expect(table.best(7, [2, 0])).toBe(2);
  });

  it('skips actions without a value (NaN)', () => {
    const table = tableWith({ 7: { 1: -10, 4: -20 } });
    expect(table.best(7, [0, 2, 3, 4, 1])).toBe(1);
    expect(table.best(7, [0, 4])).toBe(4);
  });

  it('takes the first allowed when none has a value, or the state has no row', () => {
    const table = tableWith({ 7: { 1: 5 } });
    expect(table.best(7, [3, 0, 2])).toBe(3);
    expect(table.best(8, [PROVIDER, WAIT])).toBe(PROVIDER);
    expect(table.best(8, [])).toBe(WAIT);
  });

  it('gives a tie to the first allowed', () => {
    const table = tableWith({ 7: { 0: 2, 1: 2, 5: 2, 6: 1 } });
    expect(table.best(7, [5, 0, 1])).toBe(5);
    expect(table.best(7, [1, 5, 0])).toBe(1);
  });

  it('is, for any row, an allowed action whose value no other allowed one beats (property)', () => {
    const value = fc.oneof(
      fc.constant(Number.NaN),
      fc.double({ min: -1e6, max: 1e6, noNaN: true, noDefaultInfinity: true }),
    );
    fc.assert(
      fc.property(
        fc.array(value, { minLength: ACTION_COUNT, maxLength: ACTION_COUNT }),
        fc.uniqueArray(fc.integer({ min: 0, max: ACTION_COUNT - 1 }), { minLength: 1 }),
        (row, allowed) => {
          const table = new QTable();
          table.row(3).set(row);
          const best = table.best(3, allowed);
          expect(allowed).toContain(best);
          const known = allowed.filter((a) => !Number.isNaN(row[a] as number));
          if (known.length === 0) {
            expect(best).toBe(allowed[0]);
            return;
          }
          const top = Math.max(...known.map((a) => row[a] as number));
          expect(row[best]).toBe(top);
          expect(best).toBe(known.find((a) => row[a] === top));
        },
      ),
    );
  });
});

describe('QTable', () => {
  it('makes a row of zeros when first asked, and knows which states it has', () => {
    const table = new QTable();
    expect(table.has(4)).toBe(false);
    const row = table.row(4);
    expect(Array.from(row)).toEqual(new Array(ACTION_COUNT).fill(0));
    expect(table.has(4)).toBe(true);
    expect(table.row(4)).toBe(row);
    expect(table.size).toBe(1);
    expect([...table.states()]).toEqual([4]);
  });

  it('clones deeply: changing one leaves the other', () => {
    const table = tableWith({ 1: { 0: 1 }, 2: { 3: 4 } });
    const copy = table.clone();
    copy.row(1)[0] = 99;
    copy.row(9);
    expect(table.row(1)[0]).toBe(1);
    expect(table.has(9)).toBe(false);
    expect(copy.row(2)[3]).toBe(4);
    expect(copy.size).toBe(3);
  });
});

describe('the policy file', () => {
  const roundTrip = (table: QTable, minTrade = MIN_TRADE, trained = {}) =>
    QTable.fromFile(
      parsePolicyFile(JSON.stringify(table.toFile(minTrade, trained)), 'policy.json'),
    );

  it('names its layout and keeps min_trade and how it was learned', () => {
    const file = tableWith({ 5: { 1: 1 } }).toFile(milli(2500), { episodes: 3, seed: 9 });
    expect(file.format).toBe(POLICY_FORMAT);
    expect(file.states).toBe(STATE_LAYOUT);
    expect(file.actions).toBe(ACTION_LAYOUT);
    const parsed = parsePolicyFile(JSON.stringify(file), 'policy.json');
    expect(parsed.min_trade_milli).toBe(2500);
    expect(parsed.trained).toEqual({ episodes: 3, seed: 9 });
    expect(LearnedPolicy.fromFile(parsed).minTrade).toBe(2500);
  });

  it('round-trips values to 4 significant digits, and NaN as null', () => {
    const table = tableWith({
      0: { 0: 123.456789, 1: -0.000123456, 2: 98765.4321, 3: 0, 4: 1 / 3 },
      [STATE_COUNT - 1]: { 1: -42 },
    });
    const file = table.toFile(MIN_TRADE, {});
    const text = JSON.stringify(file);
    expect((JSON.parse(text) as PolicyFile).values['0']?.[5]).toBeNull();
    const back = roundTrip(table);
    expect(Array.from(back.row(0)).slice(0, 5)).toEqual([123.5, -0.0001235, 98770, 0, 0.3333]);
    expect(Number.isNaN(back.row(0)[5] as number)).toBe(true);
    expect(back.row(STATE_COUNT - 1)[1]).toBe(-42);
    expect(back.size).toBe(2);
  });

  it('round-trips any table within 4 significant digits (property)', () => {
    const value = fc.oneof(
      fc.constant(Number.NaN),
      fc.double({ min: -1e9, max: 1e9, noNaN: true, noDefaultInfinity: true }),
    );
    const rows = fc.dictionary(
      fc.integer({ min: 0, max: STATE_COUNT - 1 }).map(String),
      fc.array(value, { minLength: ACTION_COUNT, maxLength: ACTION_COUNT }),
      { maxKeys: 6 },
    );
    fc.assert(
      fc.property(rows, (given) => {
        const table = new QTable();
        for (const [state, row] of Object.entries(given)) table.row(Number(state)).set(row);
        const back = roundTrip(table);
        expect([...back.states()].sort((a, b) => a - b)).toEqual(
          Object.keys(given)
            .map(Number)
            .sort((a, b) => a - b),
        );
        for (const [state, row] of Object.entries(given)) {
          const read = back.row(Number(state));
          row.forEach((v, a) => {
            const r = read[a] as number;
            if (Number.isNaN(v)) expect(Number.isNaN(r)).toBe(true);
            else expect(Math.abs(r - v)).toBeLessThanOrEqual(5e-4 * Math.abs(v) + 1e-300);
          });
        }
      }),
    );
  });

  it('writes states in order', () => {
    const file = tableWith({ 30: { 0: 1 }, 2: { 0: 1 }, 100: { 0: 1 } }).toFile(MIN_TRADE, {});
    expect(Object.keys(file.values)).toEqual(['2', '30', '100']);
  });
});

describe('parsePolicyFile refuses', () => {
  const good = () =>
    tableWith({ 3: { 1: 2 } }).toFile(MIN_TRADE, { scenario: 'x' }) as unknown as Record<
      string,
      unknown
    >;
  const refusal = (file: unknown, where = 'some/dir/policy.json') =>
    thrown(() => parsePolicyFile(JSON.stringify(file), where));
  /** Every problem listed names the file and the path. */
  const expectProblem = (error: EipError, path: string, text?: string | RegExp) => {
    expect(error.code).toBe('INVALID_ARGUMENT');
    const problems = error.details.problems as string[];
    const hit = problems.find((p) => p.startsWith(`some/dir/policy.json: ${path}: `));
    expect(hit, problems.join('\n')).toBeDefined();
    if (text !== undefined) expect(hit).toMatch(text);
    expect(error.message).toContain(hit as string);
  };

  it('accepts the file QTable writes', () => {
    expect(() => parsePolicyFile(JSON.stringify(good()), 'p.json')).not.toThrow();
    expect(policyFileSchema.safeParse(good()).success).toBe(true);
  });

  it('text that is not JSON', () => {
    const error = thrown(() => parsePolicyFile('{"format": ', 'some/dir/policy.json'));
    expect(error.code).toBe('INVALID_ARGUMENT');
    expect(error.message).toMatch(/^some\/dir\/policy\.json: not JSON/);
  });

  it('another format', () => {
    expectProblem(refusal({ ...good(), format: 'eip-q-policy/2' }), 'format');
    expectProblem(refusal({ ...good(), format: undefined }), 'format');
  });

  it('a policy learned on another state layout', () => {
    const error = refusal({ ...good(), states: 'side3,urgency4' });
    expectProblem(error, 'states', /another context/);
    expect(error.message).toContain(STATE_LAYOUT);
  });

  it('a policy learned on another action grid', () => {
    expectProblem(
      refusal({ ...good(), actions: 'wait,provider,psi12' }),
      'actions',
      /another action grid/,
    );
  });

  it('a row of the wrong length', () => {
    const short = Array.from({ length: ACTION_COUNT - 1 }, () => 0);
    const long = Array.from({ length: ACTION_COUNT + 1 }, () => 0);
    expectProblem(refusal({ ...good(), values: { '5': short } }), 'values.5');
    expectProblem(refusal({ ...good(), values: { '6': long } }), 'values.6');
  });

  it('a value that is not a number, or not finite', () => {
    const row = rowOf({ 0: 1 }).map((v) => (Number.isNaN(v) ? null : v));
    expectProblem(refusal({ ...good(), values: { '2': ['x', ...row.slice(1)] } }), 'values.2.0');
    // JSON cannot say Infinity, but 1e400 reads as it.
    const text = JSON.stringify({ ...good(), values: { '2': row } }).replace('[1,', '[1e400,');
    const error = thrown(() => parsePolicyFile(text, 'some/dir/policy.json'));
    expectProblem(error, 'values.2.0', /Infinity|finite/);
  });

  it('a state that is not a number', () => {
    const row = rowOf({}).map(() => null);
    const error = refusal({ ...good(), values: { abc: row } });
    expect(error.details.problems as string[]).toEqual([
      expect.stringMatching(/^some\/dir\/policy\.json: values(\.abc)?: /),
    ]);
  });

  it('a min_trade below one thousandth, and unknown keys', () => {
    expectProblem(refusal({ ...good(), min_trade_milli: 0 }), 'min_trade_milli');
    expectProblem(refusal({ ...good(), min_trade_milli: 1.5 }), 'min_trade_milli');
    expectProblem(refusal({ ...good(), extra: 1 }), '(file)');
  });

  it('listing every problem at once', () => {
    const error = refusal({ ...good(), format: 'x', actions: 'y', min_trade_milli: -1 });
    expect(error.details.problems).toHaveLength(3);
    for (const path of ['format', 'actions', 'min_trade_milli']) expectProblem(error, path);
  });

  it('the last state number, and none beyond', () => {
    const row = rowOf({ 1: 1 }).map((v) => (Number.isNaN(v) ? null : v));
    const file = parsePolicyFile(
      JSON.stringify({ ...good(), values: { [String(STATE_COUNT - 1)]: row } }),
      'p.json',
    );
    expect(QTable.fromFile(file).has(STATE_COUNT - 1)).toBe(true);
  });

  it('a state number beyond STATE_COUNT, naming the file and the path', () => {
    const row = rowOf({ 1: 1 }).map((v) => (Number.isNaN(v) ? null : v));
    expectProblem(
      refusal({ ...good(), values: { [String(STATE_COUNT)]: row } }),
      `values.${STATE_COUNT}`,
    );
  });
});

describe('LearnedPolicy', () => {
  const surplus = observation({ net: milli(7500) });
  const deficit = observation({ net: milli(-7500) });
  const stateOfSurplus = stateOf(surplus, MIN_TRADE);
  const stateOfDeficit = stateOf(deficit, MIN_TRADE);

  it('waits when balanced, whatever the table says', () => {
    const balanced = observation({ net: milli(999) });
    const table = tableWith({ [stateOf(balanced, MIN_TRADE)]: { 1: 100, 0: -100 } });
    const action = new LearnedPolicy(table, MIN_TRADE).decide(balanced);
    expect(action.kind).toBe('wait');
    expect(action.kind === 'wait' && action.why).toMatch(/too little/);
  });

  it('waits while a negotiation is under way, whatever the table says', () => {
    const busy = { ...surplus, busy: true };
    const table = tableWith({ [stateOf(busy, MIN_TRADE)]: { 1: 100, 3: 200 } });
    const action = new LearnedPolicy(table, MIN_TRADE).decide(busy);
    expect(action.kind).toBe('wait');
    expect(action.kind === 'wait' && action.why).toMatch(/under way/);
  });

  it('trades the whole imbalance with the provider in a state training never saw', () => {
    // Another state is known and prefers negotiating: it must not leak into this one.
    const table = tableWith({ [stateOfDeficit]: { 2: 100 } });
    expect(stateOfDeficit).not.toBe(stateOfSurplus);
    const policy = new LearnedPolicy(table, MIN_TRADE);
    expect(policy.decide(surplus)).toEqual({ kind: 'provider', role: 'seller', quantity: 7500 });
    expect(new LearnedPolicy(new QTable(), MIN_TRADE).decide(deficit)).toEqual({
      kind: 'provider',
      role: 'buyer',
      quantity: 7500,
    });
  });

  it("takes the table's best, negotiating the whole imbalance with that grid point", () => {
    const k = 5;
    const table = tableWith({
      [stateOfSurplus]: { [PROVIDER]: 1, [WAIT]: 2, [NEGOTIATE(k)]: 3, [NEGOTIATE(0)]: 2.5 },
      [stateOfDeficit]: { [PROVIDER]: 1, [NEGOTIATE(k + 1)]: 4 },
    });
    const policy = new LearnedPolicy(table, MIN_TRADE);
    const sell = policy.decide(surplus);
    expect(sell).toEqual({
      kind: 'negotiate',
      role: 'seller',
      quantity: 7500,
      spec: gridSpec(
        PSI_GRID[k] as (typeof PSI_GRID)[number],
        'seller',
        milli(7500),
        UTILITIES.biogas,
      ),
    });
    const buy = policy.decide(deficit);
    expect(buy).toMatchObject({ kind: 'negotiate', role: 'buyer', quantity: 7500 });
    expect(buy.kind === 'negotiate' && buy.spec).toEqual(
      gridSpec(
        PSI_GRID[k + 1] as (typeof PSI_GRID)[number],
        'buyer',
        milli(7500),
        UTILITIES.biogas,
      ),
    );
  });

  it('waits when waiting is worth most, and takes the provider on a tie or with nothing learned', () => {
    const waits = new LearnedPolicy(
      tableWith({ [stateOfSurplus]: { [WAIT]: 5, [PROVIDER]: 1 } }),
      MIN_TRADE,
    ).decide(surplus);
    expect(waits.kind).toBe('wait');
    expect(waits.kind === 'wait' && waits.why).toMatch(/learned: wait/);
    const tie = tableWith({ [stateOfSurplus]: { [WAIT]: 5, [PROVIDER]: 5, [NEGOTIATE(2)]: 5 } });
    expect(new LearnedPolicy(tie, MIN_TRADE).decide(surplus).kind).toBe('provider');
    // A row all NaN: visited, nothing learned.
    const nothing = tableWith({ [stateOfSurplus]: {} });
    expect(new LearnedPolicy(nothing, MIN_TRADE).decide(surplus).kind).toBe('provider');
    expect(TRADE_ACTIONS[0]).toBe(PROVIDER);
  });

  it('uses its own min_trade to tell balanced from not', () => {
    const table = new QTable();
    expect(new LearnedPolicy(table, milli(10_000)).decide(surplus).kind).toBe('wait');
    expect(new LearnedPolicy(table, milli(7500)).decide(surplus).kind).toBe('provider');
  });

  it('responds only to a request for the opposite role, and only when it would negotiate', () => {
    const table = tableWith({
      [stateOfSurplus]: { [NEGOTIATE(3)]: 9 },
      [stateOfDeficit]: { [PROVIDER]: 9 },
    });
    const policy = new LearnedPolicy(table, MIN_TRADE);
    const reply = policy.respond(surplus, { role: 'buyer', quantity: milli(2000) });
    expect(reply).toEqual({
      spec: gridSpec(
        PSI_GRID[3] as (typeof PSI_GRID)[number],
        'seller',
        milli(7500),
        UTILITIES.biogas,
      ),
      quantity: 7500,
    });
    // Another seller is no match for a seller.
    expect(policy.respond(surplus, { role: 'seller', quantity: milli(2000) })).toBeNull();
    // It would go to the provider: it does not answer.
    expect(policy.respond(deficit, { role: 'seller', quantity: milli(2000) })).toBeNull();
    // Balanced or busy: nothing to answer with.
    expect(
      policy.respond(observation({ net: milli(10) }), { role: 'buyer', quantity: milli(2000) }),
    ).toBeNull();
    expect(
      policy.respond({ ...surplus, busy: true }, { role: 'buyer', quantity: milli(2000) }),
    ).toBeNull();
  });

  it('reads a file QTable wrote and decides as the table did (to 4 digits)', () => {
    const table = tableWith({ [stateOfSurplus]: { [PROVIDER]: 1.00001, [NEGOTIATE(7)]: 1.2 } });
    const file = parsePolicyFile(JSON.stringify(table.toFile(MIN_TRADE, {})), 'p.json');
    const action = LearnedPolicy.fromFile(file).decide(surplus);
    expect(action).toEqual(new LearnedPolicy(table, MIN_TRADE).decide(surplus));
    expect(action.kind).toBe('negotiate');
  });

  it('never decides anything but wait, provider or a grid negotiation (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: -200_000, max: 200_000 }),
        fc.array(fc.oneof(fc.constant(Number.NaN), fc.double({ min: -10, max: 10, noNaN: true })), {
          minLength: ACTION_COUNT,
          maxLength: ACTION_COUNT,
        }),
        (net, row) => {
          const o = observation({ net: milli(net) });
          const table = new QTable();
          table.row(stateOf(o, MIN_TRADE)).set(row);
          const action = new LearnedPolicy(table, MIN_TRADE).decide(o);
          if (Math.abs(net) < 1000) {
            expect(action.kind).toBe('wait');
            return;
          }
          if (action.kind === 'wait') return;
          // The whole imbalance, or half of it to the provider (on the litre grid, at least one).
          const half = Math.max(Math.floor(Math.abs(net) / 2), 1);
          const quantities = action.kind === 'provider' ? [Math.abs(net), half] : [Math.abs(net)];
          expect(quantities).toContain(action.quantity);
          expect(action.role).toBe(net > 0 ? 'seller' : 'buyer');
        },
      ),
    );
  });
});
