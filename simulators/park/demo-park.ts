/**
 * The demo park: three plants with simulated meters, as an installer would configure them.
 *
 * - biogas-plant: a digester whose gas output falls in the afternoon (a feedstock change); it
 *   sells biogas, and in the dip it delivers less than it agreed, so the buyer is refunded.
 * - food-factory: burns biogas and draws electricity; its ovens' waste heat is for sale.
 * - chp-plant: a combined heat and power unit with electricity to spare and a heat deficit.
 *
 * Each plant's meters are counters at its connection to the park network, so the same counter
 * gives its balance and measures its deliveries. Curves are rates over the simulated day:
 * biogas in m3/h, electricity in W (negative: export), heat in kW.
 */
import { fromMilli } from '../../core/units.js';
import { getUtility, type UtilityId } from '../../core/utilities.js';

export interface DemoMeter {
  readonly id: string;
  readonly profile: string;
  readonly curve: string;
  /** The counter the plant's balance and deliveries are read from. */
  readonly counter: string;
  readonly utility: UtilityId;
  /** What the plant does with the utility this meter measures. */
  readonly side: 'production' | 'consumption';
}

export interface DemoPlant {
  readonly id: string;
  readonly meters: readonly DemoMeter[];
}

export const DEMO_PLANTS: readonly DemoPlant[] = [
  {
    id: 'biogas-plant',
    meters: [
      {
        id: 'gas-out',
        profile: 'suto-s430',
        curve: '00:00=90,11:00=90,12:00=20,17:00=20,18:00=90',
        counter: 'consumption',
        utility: 'biogas',
        side: 'production',
      },
    ],
  },
  {
    id: 'food-factory',
    meters: [
      {
        id: 'gas-in',
        profile: 'suto-s430',
        curve: '00:00=60',
        counter: 'consumption',
        utility: 'biogas',
        side: 'consumption',
      },
      {
        id: 'power-in',
        profile: 'eastron-sdm630',
        curve: '00:00=180000',
        counter: 'import_energy',
        utility: 'electricity',
        side: 'consumption',
      },
      {
        id: 'heat-out',
        profile: 'aquametro-calec-st',
        curve: '00:00=150,06:00=300,20:00=150',
        counter: 'heat_energy',
        utility: 'heat',
        side: 'production',
      },
    ],
  },
  {
    id: 'chp-plant',
    meters: [
      {
        id: 'power-out',
        profile: 'eastron-sdm630',
        curve: '00:00=-250000',
        counter: 'export_energy',
        utility: 'electricity',
        side: 'production',
      },
      {
        id: 'heat-in',
        profile: 'aquametro-calec-st',
        curve: '00:00=200',
        counter: 'heat_energy',
        utility: 'heat',
        side: 'consumption',
      },
    ],
  },
];

/** Timing of the demo: how a real second maps onto the simulated day. */
export interface DemoTiming {
  /** Real seconds per time step (each step: a balance and a decision per utility). */
  readonly stepS: number;
  /** Real seconds of an agreement's provision window. */
  readonly deliveryS: number;
}

/**
 * The edge config of one plant, as YAML an installer would write: buses at the simulators'
 * ports, the rule policy with psi between the provider's tariffs (sell from its selling price
 * down to its buying price, buy the other way).
 */
export function edgeConfigYaml(
  plant: DemoPlant,
  ports: Readonly<Record<string, number>>,
  options: {
    readonly brokerUrl: string;
    readonly chainId: number;
    readonly markets: Readonly<Record<UtilityId, string>>;
    readonly dataDir: string;
    readonly timing: DemoTiming;
  },
): string {
  const utilities = [...new Set(plant.meters.map((m) => m.utility))];
  const lines = [
    `prosumer: ${plant.id}`,
    `mqtt: { url: "${options.brokerUrl}", username: ${plant.id} }`,
    `market:`,
    `  chain_id: ${options.chainId}`,
    `  contracts: { ${utilities.map((u) => `${u}: "${options.markets[u]}"`).join(', ')} }`,
    `step_s: ${options.timing.stepS}`,
    'poll_s: 1',
    `data_dir: ${options.dataDir}`,
    'health: false',
    'negotiation: { discovery_ms: 300, round_timeout_ms: 2000, agreement_ttl_s: 300 }',
    'buses:',
    ...plant.meters.map((m) => `  ${m.id}: { type: tcp, address: "127.0.0.1:${ports[m.id]}" }`),
    'meters:',
    ...plant.meters.map(
      (m) => `  ${m.id}: { type: modbus, bus: ${m.id}, unit: 1, profile: ${m.profile} }`,
    ),
    'utilities:',
  ];
  for (const utility of utilities) {
    const meters = plant.meters.filter((m) => m.utility === utility);
    const refs = (side: DemoMeter['side']) =>
      meters.filter((m) => m.side === side).map((m) => `${m.id}.${m.counter}`);
    const out = refs('production')[0];
    const into = refs('consumption')[0];
    // The tariffs are milli-tokens per unit; psi is in tokens per unit.
    const high = fromMilli(getUtility(utility).provider_sells_at);
    const low = fromMilli(getUtility(utility).provider_buys_at);
    lines.push(
      `  ${utility}:`,
      `    production: [${refs('production').join(', ')}]`,
      `    consumption: [${refs('consumption').join(', ')}]`,
      `    delivery: { ${[out && `export: ${out}`, into && `import: ${into}`].filter(Boolean).join(', ')} }`,
      `    delivery_s: ${options.timing.deliveryS}`,
      '    policy:',
      '      type: rules',
      '      min_trade: 1',
      '      provider_after_failures: 3',
      `      sell: { price: { ip: ${high}, rp: ${low}, dl: 20, cr: 2 }, quantity: { dl: 20, cr: 2 } }`,
      `      buy: { price: { ip: ${low}, rp: ${high}, dl: 20, cr: 0.5 }, quantity: { rp_fraction: 0.5, dl: 20, cr: 0.5 } }`,
    );
  }
  return `${lines.join('\n')}\n`;
}
