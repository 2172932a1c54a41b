/**
 * The market simulation (simulators/market): how long a simulated day of the park of 100 takes
 * under each policy, the provider alone (no market at all) the baseline in the same run; and how
 * fast the policy learns: episodes per second in the parks of 20 and 100, and the time
 * `eip-sim train` takes on the park of 20 to reach the policy it keeps.
 *
 * The code measured is the build's (dist/, as `eip-sim` runs it: `npm run build` first): the
 * sources as tsx runs them carry esbuild's keepNames wrappers on every closure, which cost the
 * simulation's hot loops close to half again.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { textTable } from '../../core/text-table.js';
import type { ParkScenario } from '../../simulators/market/scenario.js';

/** A module of the build, typed as its source. */
const built = <T>(path: string): Promise<T> =>
  import(new URL(`../../dist/${path}`, import.meta.url).href) as Promise<T>;
const { LearnedPolicy, parsePolicyFile } =
  await built<typeof import('../../core/policy/learned.js')>('core/policy/learned.js');
const { simulateDay } = await built<typeof import('../../simulators/market/park-sim.js')>(
  'simulators/market/park-sim.js',
);
const { comparedPolicies } = await built<typeof import('../../simulators/market/policies.js')>(
  'simulators/market/policies.js',
);
const { loadScenario } = await built<typeof import('../../simulators/market/scenario.js')>(
  'simulators/market/scenario.js',
);
const { DEFAULT_TRAINING, train } = await built<typeof import('../../simulators/market/train.js')>(
  'simulators/market/train.js',
);

const SCENARIOS = join(import.meta.dirname, '../../simulators/scenarios');
const DAYS = 3;

function secondsPerDay(
  scenario: ParkScenario,
  policyOf: () => Parameters<typeof simulateDay>[0]['policyOf'],
) {
  const samples: number[] = [];
  for (let day = 0; day < DAYS; day++) {
    const started = performance.now();
    simulateDay({ scenario, seed: 2_000_000 + day, policyOf: policyOf() });
    samples.push((performance.now() - started) / 1000);
  }
  return samples.sort((a, b) => a - b)[Math.floor(DAYS / 2)] ?? 0;
}

export function marketTable(): string {
  const park100 = loadScenario(join(SCENARIOS, 'park-100.yaml'));
  const park20 = loadScenario(join(SCENARIOS, 'park-20.yaml'));
  const learned = LearnedPolicy.fromFile(
    parsePolicyFile(
      readFileSync(join(SCENARIOS, 'park-100.policy.json'), 'utf8'),
      'park-100.policy.json',
    ),
  );
  const policies = comparedPolicies(park100, learned).map(
    (p) => [p.name, () => p.policyOf(2_000_000)] as const,
  );
  const baseline = secondsPerDay(park100, (policies[0] as (typeof policies)[0])[1]);
  const simulation = policies.map(([name, policyOf], i) => {
    const s = i === 0 ? baseline : secondsPerDay(park100, policyOf);
    return [
      `park of 100, one day of 1,440 steps: ${name}${name === 'learned' ? ' (park-100.policy.json)' : ''}`,
      `${s.toFixed(2)} s`,
      i === 0 ? 'baseline' : `${(s / baseline).toFixed(1)}x`,
    ];
  });
  const speed = (scenario: ParkScenario, episodes: number) => {
    const started = performance.now();
    train(scenario, { ...DEFAULT_TRAINING, episodes, seed: 1, validateEvery: episodes });
    return (episodes * 1000) / (performance.now() - started);
  };
  const kept = train(park20, { ...DEFAULT_TRAINING, episodes: 150, seed: 1 });
  return textTable(
    ['measure', 'value', 'vs provider only'],
    [
      ...simulation,
      ['training, park of 20: days learned per second', speed(park20, 20).toFixed(2), ''],
      ['training, park of 100: days learned per second', speed(park100, 5).toFixed(2), ''],
      [
        'training, park of 20, 150 days: the policy kept was reached after',
        `${(kept.elapsedMs / 1000).toFixed(0)} s (day ${kept.episode})`,
        '',
      ],
    ],
    ['left', 'right', 'right'],
  );
}
