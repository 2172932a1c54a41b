/**
 * Issue 7's goals, checked on the policy shipped for the park of 100
 * (simulators/scenarios/park-100.policy.json, from `eip-sim train --scenario
 * simulators/scenarios/park-100.yaml --episodes 150 --seed 1`): on days training never played,
 * it beats every baseline on the park's profit, and no prosumer does worse on any of them than
 * trading with the provider alone. The same file loads into an edge agent's config.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LearnedPolicy, parsePolicyFile } from '../../core/policy/learned.js';
import { evaluate } from '../../simulators/market/evaluate.js';
import { goals } from '../../simulators/market/figures.js';
import { comparedPolicies } from '../../simulators/market/policies.js';
import { loadScenario } from '../../simulators/market/scenario.js';

const SCENARIOS = join(import.meta.dirname, '../../simulators/scenarios');
const POLICY = join(SCENARIOS, 'park-100.policy.json');

describe('the learned policy of the park of 100', () => {
  it('beats every baseline on park profit, and leaves no prosumer worse off, on held-out days', () => {
    const scenario = loadScenario(join(SCENARIOS, 'park-100.yaml'));
    const file = parsePolicyFile(readFileSync(POLICY, 'utf8'), POLICY);
    expect(file.trained).toMatchObject({ scenario: 'Park of 100', episodes: 150, seed: 1 });
    const learned = LearnedPolicy.fromFile(file);
    // Seeds of `eip-sim evaluate`'s held-out days: far from training's and validation's.
    const evaluation = evaluate(
      scenario,
      comparedPolicies(scenario, learned),
      [1_000_001, 1_000_002],
    );
    const [providerOnly, fixedPsi, random, mine] = evaluation.policies;
    expect(
      goals(evaluation),
      JSON.stringify(evaluation.policies.map((p) => [p.policy, p.park.profitVsProvider])),
    ).toEqual({
      beatsEveryBaseline: true,
      noProsumerWorseThanProviderAlone: true,
    });
    expect(providerOnly?.park.profitVsProvider).toBe(0);
    for (const baseline of [fixedPsi, random]) {
      expect(mine?.park.profitVsProvider).toBeGreaterThan(baseline?.park.profitVsProvider ?? 0);
    }
    for (const prosumer of mine?.prosumers ?? []) {
      expect(prosumer.worstDay, prosumer.id).toBeGreaterThanOrEqual(0);
    }
  }, 120_000);
});
