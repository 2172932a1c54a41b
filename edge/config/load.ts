/**
 * Loads and checks an edge config file. Every problem is reported at once, each with the line in
 * the file and its path (`config.yaml:14: meters.gas.unit: ...`), so an installer fixes the file
 * in one pass. Beyond the schema it checks what needs the meter profiles: that every
 * METER.QUANTITY names a quantity the meter has, in a unit the utility can be counted in; and
 * it reads each learned policy's file, whose problems are the config's too.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { EipError, isEipError } from '../../core/errors.js';
import { P1_QUANTITIES } from '../../core/meters/p1.js';
import { quantities } from '../../core/meters/profile.js';
import { LearnedPolicy, parsePolicyFile } from '../../core/policy/learned.js';
import type { Policy } from '../../core/policy/policy.js';
import { getUtility, type UtilityId } from '../../core/utilities.js';
import { type Problem, parseYaml } from '../../core/yaml.js';
import { loadProfile } from '../meters/profiles.js';
import { configSchema, type EdgeConfig, type MeterConfig, type UtilityPlan } from './schema.js';

/** How many of the utility's unit one unit of a meter's reading is. */
const TO_UTILITY_UNIT: Readonly<Record<string, Readonly<Record<string, number>>>> = {
  kWh: { Wh: 0.001, kWh: 1, MWh: 1000, GJ: 1e6 / 3600 },
  m3: { l: 0.001, m3: 1 },
};

/** A reading of a meter: its unit, and whether it counts up (energy, volume) or is a level. */
export interface ReadingInfo {
  readonly unit: string;
}

export function readingInfo(meter: MeterConfig, quantity: string): ReadingInfo | string {
  if (meter.type === 'mqtt') {
    return quantity === 'value' ? { unit: meter.unit } : 'an MQTT meter has one quantity, "value"';
  }
  if (meter.type === 'p1') {
    const known = P1_QUANTITIES[quantity];
    return known
      ? { unit: known.unit }
      : `a P1 meter reports ${Object.keys(P1_QUANTITIES).join(', ')}`;
  }
  let all: ReturnType<typeof quantities>;
  try {
    all = quantities(loadProfile(meter.profile));
  } catch (error) {
    return (error as Error).message;
  }
  const found = all.find((q) => q.name === quantity);
  return found
    ? { unit: found.unit }
    : `profile ${meter.profile} has no quantity "${quantity}" (it has ${all.map((q) => q.name).join(', ')})`;
}

/** The factor from a reading's unit to the utility's, or null when they do not convert. */
export function unitFactor(utility: UtilityId, unit: string): number | null {
  return TO_UTILITY_UNIT[getUtility(utility).unit]?.[unit] ?? null;
}

/** Every METER.QUANTITY a utility plan reads, with where it sits in the plan. */
export function planReadings(plan: UtilityPlan): [string, (string | number)[]][] {
  return [
    ...plan.production.map((r, i): [string, (string | number)[]] => [r, ['production', i]]),
    ...plan.consumption.map((r, i): [string, (string | number)[]] => [r, ['consumption', i]]),
    ...(plan.storage ? [[plan.storage.level, ['storage', 'level']] as [string, string[]]] : []),
    ...(['export', 'import'] as const).flatMap((way): [string, string[]][] => {
      const ref = plan.delivery?.[way];
      return ref ? [[ref, ['delivery', way]]] : [];
    }),
  ];
}

/** What the schema cannot say alone: references between sections, profiles and units. */
function crossCheck(config: EdgeConfig): Problem[] {
  const problems: Problem[] = [];
  for (const [meterId, meter] of Object.entries(config.meters)) {
    if (meter.type === 'modbus' && !(meter.bus in config.buses)) {
      const known = Object.keys(config.buses).join(', ') || 'none';
      problems.push({
        path: ['meters', meterId, 'bus'],
        message: `no bus "${meter.bus}" in buses (known: ${known})`,
      });
    }
    if (meter.type !== 'modbus') continue;
    try {
      loadProfile(meter.profile);
    } catch (error) {
      problems.push({ path: ['meters', meterId, 'profile'], message: (error as Error).message });
    }
  }
  for (const [utility, plan] of Object.entries(config.utilities)) {
    if (!config.market.contracts[utility as UtilityId]) {
      problems.push({
        path: ['market', 'contracts', utility],
        message: `utilities.${utility} is traded, so its market contract address is needed`,
      });
    }
    const refs = planReadings(plan);
    if (refs.length === 0) {
      problems.push({
        path: ['utilities', utility],
        message: 'needs at least one production, consumption or storage reading',
      });
    }
    if (plan.deadline_s !== undefined && plan.deadline_s < config.step_s) {
      problems.push({
        path: ['utilities', utility, 'deadline_s'],
        message: `must be at least step_s (${config.step_s}): a shorter deadline has passed at the first decision`,
      });
    }
    if (plan.storage && plan.storage.reserve > plan.storage.capacity) {
      problems.push({
        path: ['utilities', utility, 'storage', 'reserve'],
        message: 'must not exceed the capacity',
      });
    }
    for (const [ref, at] of refs) {
      const [meterId = '', quantity = ''] = ref.split('.');
      const path = ['utilities', utility, ...at];
      const meter = config.meters[meterId];
      if (!meter) {
        problems.push({ path, message: `no meter "${meterId}" in meters` });
        continue;
      }
      const info = readingInfo(meter, quantity);
      if (typeof info === 'string') {
        problems.push({ path, message: info });
      } else if (unitFactor(utility as UtilityId, info.unit) === null) {
        problems.push({
          path,
          message: `${ref} is in ${info.unit}, which does not convert to ${getUtility(utility).unit}`,
        });
      }
    }
  }
  return problems;
}

export interface LoadedConfig {
  readonly config: EdgeConfig;
  /** The file's directory: relative paths in the config (keystore, data_dir) start here. */
  readonly baseDir: string;
  /** The learned policies, by utility, each built from its file as read and checked here. */
  readonly policies: Partial<Record<UtilityId, Policy>>;
}

/** What a check found: a value when `problems` is empty. */
interface Checked<T> {
  readonly value: T;
  readonly problems: readonly Problem[];
}

/** Parses config text; throws INVALID_ARGUMENT listing every problem, one per line. */
export function parseConfig(text: string, where: string): EdgeConfig {
  return parseChecked(text, where, () => ({ value: undefined, problems: [] })).config;
}

/**
 * The parse, with `more`: what needs more than the text (the files it names), checked once the
 * rest is valid, its problems listed with the others'.
 */
function parseChecked<T>(
  text: string,
  where: string,
  more: (config: EdgeConfig) => Checked<T>,
): { readonly config: EdgeConfig; readonly more: T } {
  let extra: Checked<T> | undefined;
  const config = parseYaml(configSchema, text, where, (parsed) => {
    extra = more(parsed);
    return [...crossCheck(parsed), ...extra.problems];
  });
  // The cross-check ran: parseYaml returns only a value every check passed.
  return { config, more: (extra as Checked<T>).value };
}

/**
 * Reads and checks each learned policy's file (relative to the config's directory, like the
 * keystore) and builds the policy, once, at load: a missing or wrong file is a config problem,
 * reported by `check-config`, not a surprise at the first step.
 */
function learnedPolicies(config: EdgeConfig, baseDir: string): Checked<LoadedConfig['policies']> {
  const policies: LoadedConfig['policies'] = {};
  const problems: Problem[] = [];
  for (const [id, plan] of Object.entries(config.utilities)) {
    if (plan.policy.type !== 'learned') continue;
    try {
      policies[id as UtilityId] = readLearnedPolicy(resolve(baseDir, plan.policy.file));
    } catch (error) {
      // parsePolicyFile lists each problem of the file in its details, every one naming it.
      const listed = isEipError(error) ? error.details.problems : undefined;
      const messages = Array.isArray(listed) ? (listed as string[]) : [(error as Error).message];
      const path = ['utilities', id, 'policy', 'file'];
      problems.push(...messages.map((message) => ({ path, message })));
    }
  }
  return { value: policies, problems };
}

function readLearnedPolicy(file: string): LearnedPolicy {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new EipError('IO_ERROR', `cannot read policy file ${file}: ${(error as Error).message}`);
  }
  const parsed = parsePolicyFile(text, file);
  try {
    return LearnedPolicy.fromFile(parsed);
  } catch (error) {
    throw new EipError('INVALID_ARGUMENT', `${file}: ${(error as Error).message}`);
  }
}

export function loadConfig(file: string): LoadedConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new EipError(
      'INVALID_ARGUMENT',
      `cannot read config ${file}: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
  const baseDir = dirname(resolve(file));
  const { config, more: policies } = parseChecked(text, file, (parsed) =>
    learnedPolicies(parsed, baseDir),
  );
  return { config, baseDir, policies };
}
