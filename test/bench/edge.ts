/**
 * The edge agent's own numbers:
 * - a 20-round signed negotiation between two agents through an MQTT broker on loopback (aedes,
 *   MQTT.js), from request to the countersigned agreement, against three baselines measured in
 *   the same run that show where the time goes: as many bare messages bounced through the same
 *   broker, the same negotiation between two signing sessions in one process, and the engine;
 * - `eip-edge run` in its own process (from dist/: `npm run build` first): spawn to its first
 *   reading at the broker, and its resident memory while it polls four meters (Modbus TCP
 *   simulators) and negotiates for EIP_BENCH_SOAK_S seconds (60 by default; the figure is
 *   600), sampled each second; the medians of the first and last minute show any growth. It
 *   runs with the NODE_OPTIONS of hardware/systemd/eip-edge.service, as installed
 *   (EIP_BENCH_AGENT_NODE_OPTIONS overrides them to compare).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Wallet } from 'ethers';
import { silentLogger } from '../../core/logger.js';
import { marketDomain } from '../../core/messages/eip712.js';
import { negotiate } from '../../core/negotiation/protocol.js';
import { textTable } from '../../core/text-table.js';
import { milli } from '../../core/units.js';
import { describeLink } from '../../edge/meters/modbus-client.js';
import { loadProfile } from '../../edge/meters/profiles.js';
import { Negotiator } from '../../edge/negotiation/negotiator.js';
import type { NegotiationSession } from '../../edge/negotiation/session.js';
import { startMeterServer } from '../../simulators/meters/meter-server.js';
import { bilateral } from '../core/negotiation/setup.js';
import { startBroker } from '../support/broker.js';
import { sessionPair } from '../support/sessions.js';

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
  const messages = engine.transcript.length + 1; // the offers, then the countersigned agreement
  const hops = await pingPong(broker, messages);
  await broker.close();
  const crypto = sessionsInProcess(engine.transcript.length);
  const t0 = performance.now();
  for (let i = 0; i < 1000; i++) negotiate(setup);
  const engineMs = (performance.now() - t0) / 1000;
  const p50 = percentile(times, 0.5);
  const share = (part: number) => `${((part / p50) * 100).toFixed(0)}% of it`;
  return [
    [
      `${engine.round + 1}-round negotiation, signed, over MQTT (${RUNS} runs)`,
      `p50 ${p50.toFixed(1)} ms`,
      `p99 ${percentile(times, 0.99).toFixed(1)} ms`,
      `${(p50 / (engine.round + 1)).toFixed(2)} ms/round`,
      `goal < 100 ms: ${p50 < 100 ? 'met' : 'missed'}`,
    ],
    [
      `  its ${messages} messages bounced through the broker, no signing (baseline)`,
      `p50 ${hops.toFixed(1)} ms`,
      '',
      share(hops),
      "QoS 1, payloads of an offer's size",
    ],
    [
      '  the same negotiation between two sessions in one process: signing, verifying (baseline)',
      `p50 ${crypto.toFixed(1)} ms`,
      '',
      share(crypto),
      'no JSON, no zod, no MQTT',
    ],
    [
      '  the same negotiation in the engine, nothing signed (baseline)',
      `${engineMs.toFixed(3)} ms`,
      '',
      share(engineMs),
      `seller rounds seen: ${rounds}`,
    ],
  ];
}

/** Round trips of `messages` QoS 1 messages through the broker, one at a time, as a negotiation. */
async function pingPong(broker: Awaited<ReturnType<typeof startBroker>>, messages: number) {
  const [a, b] = await Promise.all([broker.connect(), broker.connect()]);
  if (!a || !b) throw new Error('no clients');
  for (const c of [a, b]) (c.stream as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
  await a.subscribeAsync('bench/to-a', { qos: 1 });
  await b.subscribeAsync('bench/to-b', { qos: 1 });
  const payload = Buffer.alloc(900, 'x'); // about a signed offer in JSON
  let left = 0;
  let done: () => void = () => undefined;
  a.on('message', () => (--left > 0 ? a.publish('bench/to-b', payload, { qos: 1 }) : done()));
  b.on('message', () => (--left > 0 ? b.publish('bench/to-a', payload, { qos: 1 }) : done()));
  const times: number[] = [];
  for (let i = 0; i < RUNS + 5; i++) {
    left = messages;
    const started = performance.now();
    await new Promise<void>((resolve) => {
      done = resolve;
      a.publish('bench/to-b', payload, { qos: 1 });
    });
    if (i >= 5) times.push(performance.now() - started);
  }
  await Promise.all([a.endAsync(), b.endAsync()]);
  return percentile(times, 0.5);
}

/** The bench negotiation between two NegotiationSessions handing each other messages directly. */
function sessionsInProcess(offers: number): number {
  const sellerKey = new Wallet(`0x${'51'.repeat(32)}`);
  const buyerKey = new Wallet(`0x${'52'.repeat(32)}`);
  const times: number[] = [];
  for (let i = 0; i < RUNS + 5; i++) {
    const started = performance.now();
    const sides = sessionPair(setup, {
      id: `0x${i.toString(16).padStart(64, '0')}`,
      domain,
      sellerKey,
      buyerKey,
    });
    let to: NegotiationSession = sides.buyer;
    let out = sides.seller.start().send;
    let moved = 0;
    while (out[0]) {
      const message = out[0];
      moved++;
      const step =
        message.kind === 'offer'
          ? to.onOffer(message.payload)
          : message.kind === 'proposal'
            ? to.onProposal(message.payload)
            : message.kind === 'countersigned'
              ? to.onCountersigned(message.payload)
              : { send: [] };
      out = step.send;
      to = to === sides.buyer ? sides.seller : sides.buyer;
    }
    if (moved !== offers + 1 || sides.seller.result?.kind !== 'agreed')
      throw new Error(`in-process sessions did not agree as the engine (${moved} messages)`);
    if (i >= 5) times.push(performance.now() - started);
  }
  return percentile(times, 0.5);
}

/** Resident memory of a process, from /proc (Linux: where the agent runs and this bench runs). */
function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = /^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1];
  if (kb === undefined) throw new Error(`no VmRSS for process ${pid}`);
  return Number(kb) / 1024;
}

/**
 * What the RSS is made of: pages private to the process (its heap, code, native buffers) and
 * the node executable's own pages, which every Node process on the box shares.
 */
function memoryComposition(pid: number): { privateMb: number; nodeBinaryMb: number } {
  let privateKb = 0;
  let nodeKb = 0;
  let inNode = false;
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) inNode = line.endsWith(process.execPath);
    const privatePages = /^Private_(?:Clean|Dirty):\s+(\d+) kB/.exec(line);
    if (privatePages) privateKb += Number(privatePages[1]);
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss && inNode) nodeKb += Number(rss[1]);
  }
  return { privateMb: privateKb / 1024, nodeBinaryMb: nodeKb / 1024 };
}

/** NODE_OPTIONS as the systemd unit sets them, so the agent is measured as it is installed. */
function unitNodeOptions(): string {
  const unit = readFileSync(
    fileURLToPath(new URL('../../hardware/systemd/eip-edge.service', import.meta.url)),
    'utf8',
  );
  const options = /^Environment="?NODE_OPTIONS=([^"\n]*)"?$/m.exec(unit)?.[1];
  if (options === undefined) throw new Error('eip-edge.service sets no NODE_OPTIONS');
  return options;
}

/**
 * The agent as an installer runs it: `eip-edge run` from dist/ in its own process, so its memory
 * is its own. Start-up is timed from spawn (Node's own boot included) to the first reading
 * arriving at the broker.
 */
async function agentRows(): Promise<string[][]> {
  const soakSeconds = Math.max(3, Number(process.env.EIP_BENCH_SOAK_S ?? 60));
  const cli = fileURLToPath(new URL('../../dist/edge/cli/main.js', import.meta.url));
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run npm run build first`);
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
  const configFile = join(dir, 'edge.yaml');
  writeFileSync(
    configFile,
    `prosumer: bench
mqtt: { url: "${broker.url}" }
market: { chain_id: 31337, contracts: { biogas: "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0" } }
step_s: 5
poll_s: 1
data_dir: ${dir}
log_level: warn
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
  );
  let agreements = 0;
  const buyer = new Negotiator({
    prosumer: 'bench-buyer',
    signer: new Wallet(`0x${'53'.repeat(32)}`),
    client: await broker.connect(),
    markets: { biogas: marketDomain(31337, '0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0') },
    responder: () => ({ spec: setup.buyer, quantity: milli(150_000) }),
    onAgreement: async () => {
      agreements++;
    },
    logger: silentLogger,
  });
  await buyer.start();
  const plant = await broker.connect();
  await plant.publishAsync('bench/holder', '120', { retain: true });
  let readings = 0;
  let firstReading: number | undefined;
  let spawnedAt = Number.POSITIVE_INFINITY;
  await plant.subscribeAsync('eip/v1/meters/bench/+/reading');
  plant.on('message', () => {
    readings++;
    firstReading ??= performance.now() - spawnedAt;
  });

  spawnedAt = performance.now();
  const child = spawn(process.execPath, [cli, 'run', '--config', configFile], {
    env: {
      ...process.env,
      EIP_EDGE_PRIVATE_KEY: `0x${'54'.repeat(32)}`,
      NODE_OPTIONS: process.env.EIP_BENCH_AGENT_NODE_OPTIONS ?? unitNodeOptions(),
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const pid = child.pid;
  if (pid === undefined) throw new Error('eip-edge run did not start');
  const deadline = performance.now() + 10_000;
  while (firstReading === undefined && performance.now() < deadline)
    await new Promise((r) => setTimeout(r, 2));
  if (firstReading === undefined) throw new Error('eip-edge run sent no reading within 10 s');
  // RSS each second: a single reading lands anywhere in the garbage collector's cycle. The first
  // and the last minute (or third, for a short soak) are compared by their medians.
  const samples: number[] = [];
  const soakEnd = performance.now() + soakSeconds * 1000;
  while (performance.now() < soakEnd) {
    await new Promise((r) => setTimeout(r, 1000));
    samples.push(rssMb(pid));
  }
  const composition = memoryComposition(pid);
  child.kill('SIGTERM');
  const code = await exited;
  await buyer.close();
  await plant.endAsync();
  await Promise.all(servers.map((s) => s.close()));
  await broker.close();
  rmSync(dir, { recursive: true, force: true });
  if (code !== 0) throw new Error(`eip-edge run exited with ${code} on SIGTERM`);
  const { privateMb, nodeBinaryMb } = composition;
  const window = Math.max(1, Math.min(60, Math.floor(samples.length / 3)));
  const median = (xs: number[]) => percentile(xs, 0.5);
  const first = median(samples.slice(0, window));
  const last = median(samples.slice(-window));
  const peak = Math.max(...samples);
  return [
    [
      'eip-edge run: spawn to first reading at the broker (Node boot included)',
      `${firstReading.toFixed(0)} ms`,
      '',
      '',
      `goal < 1000 ms: ${firstReading < 1000 ? 'met' : 'missed'}`,
    ],
    [
      `eip-edge run RSS, median of the last ${window} s of ${soakSeconds} s polling 4 meters at 1 s, negotiating every 5 s`,
      `${last.toFixed(0)} MB`,
      `peak ${peak.toFixed(0)} MB`,
      `${(((last - first) / first) * 100).toFixed(1)}% vs first ${window} s`,
      `goal <= 80 MB: ${last <= 80 ? 'met' : 'missed'}; ${readings} readings, ${agreements} agreements`,
    ],
    [
      '  of it, at the end: private to the agent / the node executable mapped (shared)',
      `${privateMb.toFixed(0)} MB`,
      `${nodeBinaryMb.toFixed(0)} MB`,
      '',
      'from /proc/PID/smaps',
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
