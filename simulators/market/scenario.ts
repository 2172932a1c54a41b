/**
 * A park for the market simulation (`eip-sim train`, `eip-sim evaluate`): its prosumers, what
 * each produces, consumes and stores of each utility over the day, their deadlines, the
 * provider's tariffs and what an imbalance costs when it cannot wait any longer. A YAML file,
 * validated with every problem named by line and path; `count` makes many similar prosumers, each
 * of a size drawn (seeded) around the one described.
 *
 * ```yaml
 * name: A biogas park
 * steps: 1440          # one day of 1-minute steps
 * step_s: 60
 * min_trade: 1         # units: less is not worth a trade (the edge agent's min_trade)
 * penalty: { shortage_factor: 1.5, spill_factor: 0 }
 * prosumers:
 *   - id: digester
 *     count: 10
 *     utilities:
 *       biogas:
 *         production: "12"                          # a curve: units per hour over the day
 *         consumption: "0"
 *         storage: { capacity: 200, level: 100, target: 50 }
 *   - id: dairy
 *     count: 10
 *     utilities:
 *       biogas:
 *         consumption: "06:00=0,08:00=20,18:00=20,20:00=0"
 *         storage: { capacity: 150, level: 60, target: 60 }
 *         deadline_min: 120                         # an imbalance must be settled within 2 h
 * ```
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { EipError } from '../../core/errors.js';
import { id } from '../../core/messages/schemas.js';
import { type Milli, milli, toMilli } from '../../core/units.js';
import { UTILITIES, UTILITY_IDS, type Utility, type UtilityId } from '../../core/utilities.js';
import { type Problem, parseYaml } from '../../core/yaml.js';
import { type Curve, parseCurve } from '../meters/curve.js';
import { random } from '../random.js';

const amount = (what: string) =>
  z
    .number()
    .nonnegative()
    .max(1e9)
    .meta({ description: `${what}, in the utility's unit` });

const curve = z.union([z.string(), z.number()]).transform((spec, ctx) => {
  try {
    return parseCurve(String(spec), 'curve');
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: (error as Error).message.replace(/^curve: /, '') });
    return z.NEVER;
  }
});

const plantUtility = z.strictObject({
  production: curve
    .prefault('0')
    .meta({ description: "Units per hour over the day: '12' or 'HH:MM=rate,...'" }),
  consumption: curve
    .prefault('0')
    .meta({ description: 'Units per hour over the day, as production' }),
  noise: z.number().min(0).max(2).default(0.1).meta({
    description: "Standard deviation of each step's production and consumption, as a share",
  }),
  storage: z
    .strictObject({
      capacity: amount('What the store holds at most'),
      level: amount('What it holds at the start of the day'),
      target: amount('The level the plant keeps: above it is surplus, below it deficit'),
    })
    .optional()
    .meta({
      description: 'A store (gas holder, tank); without one every imbalance is settled at once',
    }),
  deadline_min: z.number().positive().max(10_080).optional().meta({
    description: 'Minutes an imbalance may wait before the plant must have it settled (Fig. 5)',
  }),
});

const prosumerSchema = z.strictObject({
  id,
  count: z.number().int().min(1).max(1000).default(1),
  size_spread: z.number().min(0).max(0.9).default(0.2).meta({
    description: 'Each copy is scaled by a size drawn from 1 - spread to 1 + spread',
  }),
  utilities: z
    .partialRecord(z.enum(UTILITY_IDS), plantUtility)
    .refine((u) => Object.keys(u).length > 0, 'needs at least one utility'),
});

const tariffs = z.strictObject({
  sells_at: z.number().nonnegative().max(1e9),
  buys_at: z.number().nonnegative().max(1e9),
});

export const scenarioSchema = z.strictObject({
  name: z.string().min(1).default('park'),
  steps: z.number().int().min(1).max(100_000).default(1440),
  step_s: z.number().int().min(1).max(86_400).default(60),
  min_trade: z.number().positive().max(1e6).default(1),
  penalty: z
    .strictObject({
      shortage_factor: z.number().min(1).max(100).default(1.5).meta({
        description: "A deficit that cannot wait is bought at this times the provider's tariff",
      }),
      spill_factor: z.number().min(0).max(1).default(0).meta({
        description: "A surplus with nowhere to go fetches this times the provider's buying tariff",
      }),
    })
    .prefault({}),
  tariffs: z.partialRecord(z.enum(UTILITY_IDS), tariffs).default({}),
  prosumers: z.array(prosumerSchema).min(2, 'needs at least two prosumers'),
});

export type ScenarioFile = z.output<typeof scenarioSchema>;

/** One prosumer's part in one utility, as the simulation runs it (milli-units). */
export interface PlantUtility {
  readonly utility: Utility;
  readonly production: Curve;
  readonly consumption: Curve;
  readonly noise: number;
  /** 0 without a store. */
  readonly capacity: Milli;
  readonly level: Milli;
  readonly target: Milli;
  /** In steps; null without one. */
  readonly deadlineSteps: number | null;
}

export interface SimProsumer {
  readonly id: string;
  /** Its scale against the described prosumer. */
  readonly size: number;
  readonly utilities: readonly PlantUtility[];
}

export interface ParkScenario {
  readonly name: string;
  readonly steps: number;
  readonly stepMs: number;
  readonly minTrade: Milli;
  readonly shortageFactor: number;
  readonly spillFactor: number;
  readonly prosumers: readonly SimProsumer[];
  /** The utilities anyone in the park trades, with the scenario's tariffs. */
  readonly utilities: readonly Utility[];
}

/** Whether `value` (units) is a whole number of `tick` (milli-units). */
function onGrid(value: number, tick: Milli): boolean {
  const milli = value * 1000;
  return Math.abs(milli - Math.round(milli)) < 1e-6 && Math.round(milli) % tick === 0;
}

function crossCheck(file: ScenarioFile): Problem[] {
  const problems: Problem[] = [];
  const seen = new Set<string>();
  file.prosumers.forEach((p, i) => {
    if (seen.has(p.id)) problems.push({ path: ['prosumers', i, 'id'], message: `"${p.id}" twice` });
    seen.add(p.id);
    for (const [u, plant] of Object.entries(p.utilities)) {
      const storage = plant?.storage;
      const at = ['prosumers', i, 'utilities', u, 'storage'];
      if (storage && storage.level > storage.capacity) {
        problems.push({ path: [...at, 'level'], message: 'must not exceed the capacity' });
      }
      if (storage && storage.target > storage.capacity) {
        problems.push({ path: [...at, 'target'], message: 'must not exceed the capacity' });
      }
    }
  });
  for (const [u, t] of Object.entries(file.tariffs)) {
    if (!t) continue;
    if (t.buys_at > t.sells_at) {
      problems.push({ path: ['tariffs', u, 'buys_at'], message: 'must not exceed sells_at' });
    }
    // Offers are made on the price tick: a tariff off it could not be offered (nor its spread).
    const tick = UTILITIES[u as UtilityId].price_tick;
    for (const key of ['sells_at', 'buys_at'] as const) {
      if (!onGrid(t[key], tick)) {
        problems.push({
          path: ['tariffs', u, key],
          message: `must be a multiple of ${u}'s price tick, ${tick / 1000} tokens`,
        });
      }
    }
  }
  if (!onGrid(file.min_trade, milli(1))) {
    problems.push({ path: ['min_trade'], message: 'must have at most three decimals' });
  }
  return problems;
}

/** The utility of `id` with the scenario's tariffs. */
export function scenarioUtility(scenario: ParkScenario, id: UtilityId): Utility {
  const utility = scenario.utilities.find((u) => u.id === id);
  if (utility === undefined) throw new RangeError(`no prosumer of ${scenario.name} trades ${id}`);
  return utility;
}

/** The utility with the file's tariffs, on the utility's price grid. */
function utilityOf(id: UtilityId, file: ScenarioFile): Utility {
  const base = UTILITIES[id];
  const t = file.tariffs[id];
  if (!t) return base;
  return {
    ...base,
    provider_sells_at: toMilli(t.sells_at, `tariffs.${id}.sells_at`),
    provider_buys_at: toMilli(t.buys_at, `tariffs.${id}.buys_at`),
  };
}

/**
 * The scenario as the simulation runs it: `count` copies of each prosumer (`id-1`, `id-2`, ...)
 * with sizes drawn from `sizeSeed`, so the park is the same however often it is read.
 */
export function buildScenario(file: ScenarioFile, sizeSeed = 1): ParkScenario {
  const uniform = random(sizeSeed);
  const stepsPerMinute = 60 / file.step_s;
  const prosumers: SimProsumer[] = file.prosumers.flatMap((p) =>
    Array.from({ length: p.count }, (_, k) => {
      const size = p.count === 1 ? 1 : 1 + p.size_spread * (2 * uniform() - 1);
      const scaled = (units: number) => toMilli(Math.round(units * size * 1000) / 1000, 'amount');
      return {
        id: p.count === 1 ? p.id : `${p.id}-${k + 1}`,
        size,
        utilities: Object.entries(p.utilities).flatMap(([u, plant]) =>
          plant === undefined
            ? []
            : [
                {
                  utility: utilityOf(u as UtilityId, file),
                  production: plant.production,
                  consumption: plant.consumption,
                  noise: plant.noise,
                  capacity: scaled(plant.storage?.capacity ?? 0),
                  level: scaled(plant.storage?.level ?? 0),
                  target: scaled(plant.storage?.target ?? 0),
                  deadlineSteps:
                    plant.deadline_min === undefined
                      ? null
                      : Math.max(1, Math.round(plant.deadline_min * stepsPerMinute)),
                },
              ],
        ),
      };
    }),
  );
  const utilities = UTILITY_IDS.filter((u) =>
    prosumers.some((p) => p.utilities.some((pu) => pu.utility.id === u)),
  ).map((u) => utilityOf(u, file));
  return {
    name: file.name,
    steps: file.steps,
    stepMs: file.step_s * 1000,
    minTrade: toMilli(file.min_trade, 'min_trade'),
    shortageFactor: file.penalty.shortage_factor,
    spillFactor: file.penalty.spill_factor,
    prosumers,
    utilities,
  };
}

export function parseScenario(text: string, where: string): ParkScenario {
  return buildScenario(parseYaml(scenarioSchema, text, where, crossCheck));
}

export function loadScenario(file: string): ParkScenario {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new EipError(
      'INVALID_ARGUMENT',
      `cannot read scenario ${file}: ${(error as Error).message}`,
    );
  }
  return parseScenario(text, file);
}
