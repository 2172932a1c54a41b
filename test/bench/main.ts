/**
 * `npm run bench [-- SECTION...]`: negotiation throughput of the core engine in one process (one
 * core), then the gas each market operation costs on a real anvil chain (see gas.ts), then Modbus
 * RTU polling against the bus's own ceiling (see rtu.ts), the edge's outbox and the edge agent
 * (see outbox.ts and edge.ts), the park broker's login check (broker.ts), the relay to the
 * chain (relay.ts), readings from MQTT into InfluxDB (ingest.ts), the dashboard's forecast
 * (forecast.ts), the market simulation and learning its policy (market.ts), the negotiation
 * log behind the agreement rate (negotiations.ts) and the gateway's memory with 100 agents
 * (gateway.ts). Naming sections (engine, gas, rtu, outbox, edge, broker, ingest, relay,
 * forecast, market, negotiations, gateway) runs only those.
 *
 * A round is one time step in which both agents move (two offers, or an offer and the
 * acceptance). Each benchmark runs for about a second per sample, five samples, and reports the
 * median; the spread (min..max) shows how noisy the machine was. The goal is 10,000
 * rounds/s; NegMAS, the reference Python framework, is quoted at about 7,800 steps/s (not
 * measured here: PyPI is out of reach from this machine).
 */
import { negotiate } from '../../core/negotiation/protocol.js';
import { psi, sigma } from '../../core/negotiation/strategy.js';
import { textTable } from '../../core/text-table.js';
import { CASE_STUDY } from '../../simulators/case-study.js';
import { bilateral } from '../core/negotiation/setup.js';
import { brokerTable } from './broker.js';
import { edgeTable } from './edge.js';
import { forecastTable } from './forecast.js';
import { gasTable } from './gas.js';
import { gatewayTable } from './gateway.js';
import { ingestTable } from './ingest.js';
import { marketTable } from './market.js';
import { negotiationsTable } from './negotiations.js';
import { outboxTable } from './outbox.js';
import { relayTable } from './relay.js';
import { rtuTable } from './rtu.js';

const GOAL_ROUNDS_PER_SECOND = 10_000;
const SAMPLES = 5;
const SAMPLE_SECONDS = 1;

interface Result {
  readonly name: string;
  readonly unitsPerRun: number;
  readonly unit: string;
  readonly runsPerSecond: readonly number[];
}

function measure(name: string, unit: string, unitsPerRun: number, run: () => unknown): Result {
  let sink: unknown;
  const deadline = performance.now() + 300;
  while (performance.now() < deadline) sink = run(); // warm up the JIT
  const runsPerSecond: number[] = [];
  for (let s = 0; s < SAMPLES; s++) {
    let runs = 0;
    const start = performance.now();
    let elapsed = 0;
    while (elapsed < SAMPLE_SECONDS * 1000) {
      for (let i = 0; i < 64; i++) sink = run();
      runs += 64;
      elapsed = performance.now() - start;
    }
    runsPerSecond.push((runs * 1000) / elapsed);
  }
  if (sink === undefined) throw new Error(`${name} returned nothing`);
  return { name, unit, unitsPerRun, runsPerSecond };
}

const median = (xs: readonly number[]) =>
  [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
const fmt = (x: number) => Math.round(x).toLocaleString('en-US');

const caseRounds = negotiate(CASE_STUDY).round + 1;

// 1,000 time steps whose reserves never meet: the per-round cost, setup amortized.
const longSetup = bilateral(
  { price: { ip: 80, rp: 50, dl: 1000, cr: 2 }, quantity: { ip: 100, rp: 100, dl: 1000, cr: 1 } },
  { price: { ip: 20, rp: 40, dl: 1000, cr: 0.5 }, quantity: { ip: 150, rp: 120, dl: 1000, cr: 1 } },
);
const longRounds = (() => {
  const outcome = negotiate(longSetup);
  if (outcome.kind !== 'no-agreement' || outcome.reason !== 'deadline')
    throw new Error('long setup must run to the deadline');
  return outcome.round;
})();

function engineTable(): string {
  const p = psi({ ip: 80, rp: 20, dl: 20, cr: 2 });
  let step = 0;
  const results = [
    measure('case study (section 5), whole negotiation', 'rounds', caseRounds, () =>
      negotiate(CASE_STUDY),
    ),
    measure(`two issues, ${longRounds} rounds to the deadline`, 'rounds', longRounds, () =>
      negotiate(longSetup),
    ),
    measure('sigma (Eq. 1) alone, for scale', 'calls', 1, () => sigma(p, step++ % 25)),
  ];
  const rows = results.map((r) => {
    const perSecond = r.runsPerSecond.map((x) => x * r.unitsPerRun);
    const mid = median(perSecond);
    return [
      r.name,
      `${fmt(mid)} ${r.unit}/s`,
      `${fmt(Math.min(...perSecond))}..${fmt(Math.max(...perSecond))}`,
      r.unit === 'rounds' ? `${(mid / GOAL_ROUNDS_PER_SECOND).toFixed(0)}x goal` : '',
      r.unit === 'rounds' ? `${(1e6 / median(r.runsPerSecond)).toFixed(1)} us/negotiation` : '',
    ];
  });
  return textTable(['benchmark', 'median', 'range', 'vs 10,000 rounds/s', 'per run'], rows, [
    'left',
    'right',
    'right',
    'right',
    'right',
  ]);
}

/** Each section by the name `npm run bench -- NAME...` picks it with; all run by default. */
const SECTIONS: Record<string, { title: string; table: () => string | Promise<string> }> = {
  engine: {
    title: `Negotiation engine, median of ${SAMPLES} samples of ${SAMPLE_SECONDS} s`,
    table: engineTable,
  },
  gas: {
    title: 'Gas per operation, biogas market on anvil (gas does not depend on load)',
    table: gasTable,
  },
  rtu: {
    title: 'Modbus RTU polling over a pseudo-terminal at the timing of a 9600-baud bus',
    table: rtuTable,
  },
  outbox: {
    title: 'Durable outbox: readings persisted (synced) and replayed to a loopback broker',
    table: outboxTable,
  },
  edge: {
    title: 'Edge agent: signed negotiation over MQTT, start-up, memory (see edge.ts)',
    table: edgeTable,
  },
  broker: {
    title: "Park broker: checking a device's login",
    table: brokerTable,
  },
  ingest: {
    title: 'Ingest: meter readings from MQTT to InfluxDB on this host (see ingest.ts)',
    table: ingestTable,
  },
  relay: {
    title: 'Relay to the chain: agreements from an edge to confirmation on anvil (see relay.ts)',
    table: relayTable,
  },
  forecast: {
    title: "Dashboard forecast against seasonal naive, demo park's noisy demand (forecast.ts)",
    table: forecastTable,
  },
  market: {
    title: 'Market simulation: a simulated day per policy, and learning the policy (market.ts)',
    table: marketTable,
  },
  negotiations: {
    title:
      "Gateway's negotiation log: 100,000 negotiations, both parties' reports (negotiations.ts)",
    table: negotiationsTable,
  },
  gateway: {
    title: 'Gateway memory with 100 connected agents (built eip-gateway run; see gateway.ts)',
    table: gatewayTable,
  },
};

const chosen = process.argv.slice(2);
const unknown = chosen.filter((name) => !(name in SECTIONS));
if (unknown.length) {
  console.error(
    `unknown benchmark ${unknown.join(', ')}; choose from: ${Object.keys(SECTIONS).join(', ')}`,
  );
  process.exit(2);
}
console.log(`Node ${process.version} on ${process.arch}`);
for (const [name, section] of Object.entries(SECTIONS)) {
  if (chosen.length && !chosen.includes(name)) continue;
  console.log(`\n${section.title}\n`);
  console.log(await section.table());
}
process.exit(0); // MQTT.js and LevelDB handles of the runs above must not hold the process
