/**
 * The edge agent's own numbers:
 * - a 20-round signed negotiation between two agents through an MQTT broker on loopback (aedes,
 *   MQTT.js), from request to the countersigned agreement, against the same negotiation played
 *   by the in-process engine without signatures or messages, measured in the same run;
 * - start-up of a whole agent (outbox, broker connection, health endpoint, meters) to its first
 *   reading stored on disk;
 * - resident memory of that agent after polling four meters (Modbus TCP simulators) and
 *   negotiating for EIP_BENCH_SOAK_S seconds (60 by default; the figure is 600).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Wallet } from 'ethers';
import mqtt from 'mqtt';
import { silentLogger } from '../../core/logger.js';
import { marketDomain } from '../../core/messages/eip712.js';
import { negotiate } from '../../core/negotiation/protocol.js';
import { textTable } from '../../core/text-table.js';
import { milli } from '../../core/units.js';
import { EdgeAgent } from '../../edge/agent/agent.js';
import { parseConfig } from '../../edge/config/load.js';
import { describeLink } from '../../edge/meters/modbus-client.js';
import { loadProfile } from '../../edge/meters/profiles.js';
import { Negotiator } from '../../edge/negotiation/negotiator.js';
import { startMeterServer } from '../../simulators/meters/meter-server.js';
import { bilateral } from '../core/negotiation/setup.js';
import { startBroker } from '../support/broker.js';

const RUNS = 40;
const DISCOVERY_MS = 200;
const domain = marketDomain(31337, '0x5FbDB2315678afecb367f032d93F642f64180aa3');
// Linear concessions from both ends meet after about 20 rounds.
const setup = bilateral(
  { price: { ip: 80, rp: 20, dl: 40, cr: 1 }, quantity: { ip: 100, rp: 100, dl: 40, cr: 1 } },
  { price: { ip: 20, rp: 80, dl: 40, cr: 1 }, quantity: { ip: 100, rp: 50, dl: 40, cr: 1 } },
);

const percentile = (xs: readonly number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))] ?? 0;

async function negotiationRows(): Promise<string[][]> {
  const engine = negotiate(setup);
  if (engine.kind !== 'agreement') throw new Error('bench setup must agree');
  const broker = await startBroker();
  const make = async (prosumer: string, key: string, answers: boolean) => {
    const client = await broker.connect();
    (client.stream as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
    const negotiator = new Negotiator({
      prosumer,
      signer: new Wallet(key),
      client,
      markets: { biogas: domain },
      responder: () => (answers ? { spec: setup.buyer, quantity: milli(100_000) } : null),
      onAgreement: async () => undefined,
      logger: silentLogger,
      discoveryMs: DISCOVERY_MS,
    });
    await negotiator.start();
    return negotiator;
  };
  const seller = await make('bench-s', `0x${'51'.repeat(32)}`, false);
  const buyer = await make('bench-b', `0x${'52'.repeat(32)}`, true);
  const times: number[] = [];
  let rounds = 0;
  for (let i = 0; i < RUNS + 5; i++) {
    const started = performance.now();
    const outcome = await seller.request({
      utility: 'biogas',
      role: 'seller',
      quantity: milli(100_000),
      spec: setup.seller,
      deliveryStartMs: Date.now(),
      deliveryEndMs: Date.now() + 3_600_000,
    });
    if (outcome.result.kind === 'no-agreement' || outcome.result.kind === 'no-counterpart')
      throw new Error(`bench negotiation failed: ${JSON.stringify(outcome.result)}`);
    // The buyer's side finishes when it has countersigned (or proposed): wait for it.
    while (buyer.busy('biogas')) await new Promise((r) => setImmediate(r));
    if (i >= 5) times.push(performance.now() - started - DISCOVERY_MS); // first 5 warm up
    rounds = outcome.rounds;
  }
  await seller.close();
  await buyer.close();
  await broker.close();
  const t0 = performance.now();
  for (let i = 0; i < 1000; i++) negotiate(setup);
  const engineMs = (performance.now() - t0) / 1000;
  const p50 = percentile(times, 0.5);
  return [
    [
      `${engine.round + 1}-round negotiation, signed, over MQTT (${RUNS} runs)`,
      `p50 ${p50.toFixed(1)} ms`,
      `p99 ${percentile(times, 0.99).toFixed(1)} ms`,
      `${(p50 / (engine.round + 1)).toFixed(2)} ms/round`,
      `goal < 100 ms: ${p50 < 100 ? 'met' : 'missed'}`,
    ],
    [
      'same negotiation, in-process engine (baseline)',
      `${engineMs.toFixed(3)} ms`,
      '',
      `${(p50 / engineMs).toFixed(0)}x faster than MQTT`,
      `seller rounds seen: ${rounds}`,
    ],
  ];
}

async function agentRows(): Promise<string[][]> {
  const soakSeconds = Number(process.env.EIP_BENCH_SOAK_S ?? 60);
  const broker = await startBroker();
  const profiles = ['eastron-sdm630', 'eastron-sdm120', 'carlo-gavazzi-em24', 'suto-s430'];
  const servers = await Promise.all(
    profiles.map((name) =>
      startMeterServer({
        profile: loadProfile(name),
        link: { kind: 'tcp', host: '127.0.0.1', port: 0 },
        units: [1],
      }),
    ),
  );
  const dir = mkdtempSync(join(tmpdir(), 'eip-bench-edge-'));
  const meters = profiles
    .map((profile, i) => `  m${i}: { type: modbus, bus: b${i}, unit: 1, profile: ${profile} }`)
    .join('\n');
  const buses = servers
    .map(({ link }, i) => `  b${i}: { type: tcp, address: "${describeLink(link)}" }`)
    .join('\n');
  const config = parseConfig(
    `prosumer: bench
mqtt: { url: "${broker.url}" }
market: { chain_id: 31337, contracts: { biogas: "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0" } }
step_s: 5
poll_s: 1
data_dir: ${dir}
health: false
buses:
${buses}
meters:
${meters}
  holder: { type: mqtt, topic: bench/holder, unit: m3 }
utilities:
  biogas:
    production: [m3.consumption]
    storage: { level: holder.value, capacity: 200, reserve: 20 }
    policy:
      type: rules
      sell: { price: { ip: 80, rp: 20, dl: 20, cr: 2 }, quantity: { dl: 20, cr: 2 } }
      buy: { price: { ip: 20, rp: 80, dl: 20, cr: 0.5 }, quantity: { rp_fraction: 0, dl: 20, cr: 0.5 } }
`,
    'bench.yaml',
  );
  const buyer = new Negotiator({
    prosumer: 'bench-buyer',
    signer: new Wallet(`0x${'53'.repeat(32)}`),
    client: await broker.connect(),
    markets: { biogas: marketDomain(31337, '0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0') },
    responder: () => ({ spec: setup.buyer, quantity: milli(150_000) }),
    onAgreement: async () => undefined,
    logger: silentLogger,
  });
  await buyer.start();
  const agent = new EdgeAgent({
    config,
    baseDir: dir,
    logger: silentLogger,
    identity: async () => new Wallet(`0x${'54'.repeat(32)}`),
    connectMqtt: ({ will }) =>
      mqtt.connect(broker.url, { will: { ...will, qos: 1, retain: true } }),
  });
  const plant = await broker.connect();
  await plant.publishAsync('bench/holder', '120', { retain: true });
  const before = process.memoryUsage().rss;
  await agent.start();
  while (agent.firstReadingMs === undefined) await new Promise((r) => setTimeout(r, 5));
  const firstReading = agent.firstReadingMs;
  await new Promise((r) => setTimeout(r, soakSeconds * 1000));
  const rss = process.memoryUsage().rss;
  const heap = process.memoryUsage().heapUsed;
  const report = agent.report();
  await agent.stop();
  await buyer.close();
  await Promise.all(servers.map((s) => s.close()));
  await broker.close();
  rmSync(dir, { recursive: true, force: true });
  return [
    [
      'agent start-up to first reading on disk',
      `${firstReading} ms`,
      '',
      '',
      `goal < 1000 ms: ${firstReading < 1000 ? 'met' : 'missed'}`,
    ],
    [
      `RSS after ${soakSeconds} s: agent polling 4 meters at 1 s, negotiating every 5 s (upper bound: broker, simulators and peer share the process)`,
      `${(rss / 2 ** 20).toFixed(0)} MB`,
      `heap ${(heap / 2 ** 20).toFixed(0)} MB`,
      `${(before / 2 ** 20).toFixed(0)} MB before start`,
      `step ${report.step}, outbox depth ${report.outbox?.depth ?? '?'}`,
    ],
  ];
}

export async function edgeTable(): Promise<string> {
  const rows = [...(await negotiationRows()), ...(await agentRows())];
  return textTable(['benchmark', 'result', '', 'vs baseline', 'note'], rows, [
    'left',
    'right',
    'right',
    'right',
    'left',
  ]);
}
