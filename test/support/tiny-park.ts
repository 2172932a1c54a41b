/**
 * A park small and short enough to learn and evaluate in a test: four hours of one-minute steps,
 * two digesters selling biogas to two factories (both with stores), and two CHP plants selling
 * electricity, which has no store, to the factories.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type ParkScenario, parseScenario } from '../../simulators/market/scenario.js';

export const TINY_PARK_YAML = `name: Tiny park
steps: 240
step_s: 60
min_trade: 1
prosumers:
  - id: digester
    count: 2
    utilities:
      biogas:
        production: "12"
        storage: { capacity: 60, level: 20, target: 20 }
  - id: factory
    count: 2
    utilities:
      biogas:
        consumption: "10"
        storage: { capacity: 50, level: 25, target: 25 }
        deadline_min: 30
      electricity:
        consumption: "120"
  - id: chp
    count: 2
    utilities:
      electricity:
        production: "150"
`;

export function tinyPark(): ParkScenario {
  return parseScenario(TINY_PARK_YAML, 'tiny-park.yaml');
}

/** Writes the tiny park's file into `dir`; its path. */
export function writeTinyPark(dir: string): string {
  const file = join(dir, 'tiny-park.yaml');
  writeFileSync(file, TINY_PARK_YAML);
  return file;
}
