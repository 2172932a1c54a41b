/**
 * The agent as installed (`eip-edge run`, built, in its own process). Through a broker outage and
 * a `kill -9`, every reading it stored reaches the broker, in order, with its original timestamp
 * and sequence number; what a replay sends twice is byte-identical, so a receiver that drops
 * repeated sequence numbers sees each reading exactly once. And a P1 meter on a serial line
 * (a pseudo-terminal) is read and sent like any other.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeMessage } from '../../../core/messages/topics.js';
import { describeLink } from '../../../edge/meters/modbus-client.js';
import { loadProfile } from '../../../edge/meters/profiles.js';
import { startMeterServer } from '../../../simulators/meters/meter-server.js';
import { startP1Sim } from '../../../simulators/meters/p1-sim.js';
import { startBroker, type TestBroker } from '../../support/broker.js';
import { openPtyPair, RUN_PTY_SUITES } from '../../support/pty-pair.js';
import { until } from '../../support/until.js';

const BIN = join(import.meta.dirname, '../../../dist/edge/cli/main.js');
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Received {
  readonly seq: number;
  readonly meter: string;
  readonly quantity: string;
  readonly value: number;
  readonly measuredAt: number;
  readonly raw: string;
}

/** Every meter reading a client publishes, as the gateway's broker would see it. */
function readingCollector() {
  const received: Received[] = [];
  const onPublish = (topic: string, payload: Buffer) => {
    if (!topic.endsWith('/reading')) return;
    const decoded = decodeMessage(topic, payload);
    if (decoded.name !== 'meterReading') return;
    const { seq, meter, quantity, value, measured_at_ms } = decoded.payload;
    received.push({
      seq,
      meter,
      quantity,
      value,
      measuredAt: measured_at_ms,
      raw: payload.toString(),
    });
  };
  return { received, onPublish };
}

/** Writes a config with `meters` (YAML lines) and starts `eip-edge run` on it, as installed. */
function agentRunner(brokerPort: number, meters: string) {
  const dir = mkdtempSync(join(tmpdir(), 'eip-agent-'));
  cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
  const config = join(dir, 'edge.yaml');
  writeFileSync(
    config,
    `prosumer: plant
market: { chain_id: 31337, contracts: { electricity: "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0" } }
mqtt: { url: "mqtt://127.0.0.1:${brokerPort}" }
poll_s: 1
data_dir: data
health: false
${meters}
utilities: {}
`,
  );
  // What the agent logged, shown when a wait times out.
  let output = '';
  const start = (): ChildProcess => {
    const child = spawn(process.execPath, [BIN, 'run', '--config', config], {
      env: { ...process.env, EIP_EDGE_PRIVATE_KEY: `0x${'61'.repeat(32)}` },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const keep = (chunk: Buffer) => {
      output += chunk.toString();
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    cleanups.push(async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await once(child, 'exit');
      }
    });
    return child;
  };
  const waitFor = (what: string, condition: () => boolean) =>
    until(what, condition, 15_000).catch((error: Error) => {
      throw new Error(`${error.message}; the agent logged:\n${output.slice(-3000)}`);
    });
  return { start, waitFor };
}

describe('eip-edge run, store and forward', () => {
  it('loses and reorders nothing through a broker outage and kill -9', async () => {
    const meter = await startMeterServer({
      profile: loadProfile('eastron-sdm120'),
      link: { kind: 'tcp', host: '127.0.0.1', port: 0 },
      units: [1],
    });
    cleanups.push(() => meter.close());
    const { received, onPublish } = readingCollector();
    let broker: TestBroker = await startBroker({ onPublish });
    const port = broker.port;
    cleanups.push(() => broker.close());
    const { start, waitFor } = agentRunner(
      port,
      `buses:
  bus: { type: tcp, address: "${describeLink(meter.link)}" }
meters:
  main: { type: modbus, bus: bus, unit: 1, profile: eastron-sdm120 }`,
    );
    const count = (n: number, what: string) => waitFor(what, () => received.length >= n);

    let agent = start();
    await count(10, 'first readings');
    // The broker goes away; the agent keeps polling into its outbox.
    await broker.close();
    await new Promise((r) => setTimeout(r, 2500));
    const beforeOutage = received.length;
    broker = await startBroker({ port, onPublish });
    await count(beforeOutage + 15, 'readings stored during the outage');
    // kill -9, wherever it is: mid-poll, mid-write or mid-send.
    agent.kill('SIGKILL');
    await once(agent, 'exit');
    agent = start();
    const beforeRestart = received.length;
    await count(beforeRestart + 10, 'readings after the restart');
    agent.kill('SIGTERM');
    expect((await once(agent, 'exit'))[0]).toBe(0);

    // A receiver that drops sequence numbers it has seen.
    const firstCopy = new Map<number, Received>();
    for (const r of received) {
      const seen = firstCopy.get(r.seq);
      if (seen) expect(r.raw, `replayed seq ${r.seq} is the same message`).toBe(seen.raw);
      else firstCopy.set(r.seq, r);
    }
    const unique = [...firstCopy.values()];
    const seqs = unique.map((r) => r.seq);
    // In order, and none missing between the first and the last.
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    const first = seqs[0] ?? 0;
    expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => first + i));
    // Original timestamps: each quantity's readings move forward in time, including the ones
    // measured while the broker was away (their time, not the time they were sent).
    for (const quantity of new Set(unique.map((r) => r.quantity))) {
      const times = unique.filter((r) => r.quantity === quantity).map((r) => r.measuredAt);
      expect(times).toEqual([...times].sort((a, b) => a - b));
    }
    const span = (unique.at(-1)?.measuredAt ?? 0) - (unique[0]?.measuredAt ?? 0);
    expect(span).toBeGreaterThan(2500); // the outage's readings kept the time they were taken
  }, 60_000);

  it.skipIf(!RUN_PTY_SUITES)(
    'sends the electricity and gas of a P1 meter with the times the meter gave them',
    async () => {
      const pty = await openPtyPair();
      cleanups.push(() => pty.close());
      const sim = await startP1Sim({
        path: pty.a,
        intervalMs: 200,
        powerW: 2300,
        gasFlowM3PerH: 0.5,
      });
      cleanups.push(() => sim.close());
      const { received, onPublish } = readingCollector();
      const broker = await startBroker({ onPublish });
      cleanups.push(() => broker.close());
      const { start, waitFor } = agentRunner(
        broker.port,
        `meters:
  home: { type: p1, device: ${pty.b} }`,
      );
      const agent = start();
      const names = ['power_import', 'electricity_import_t2', 'gas'];
      await waitFor('P1 readings', () =>
        names.every((name) => received.some((r) => r.meter === 'home' && r.quantity === name)),
      );
      agent.kill('SIGTERM');
      expect((await once(agent, 'exit'))[0]).toBe(0);
      const power = received.find((r) => r.quantity === 'power_import');
      expect(power?.value).toBe(2.3);
      // DSMR 5 gas is captured every 5 minutes: its time is the capture's, not the telegram's.
      const gas = received.find((r) => r.quantity === 'gas');
      expect((gas?.measuredAt ?? 1) % 300_000).toBe(0);
      expect(power?.measuredAt).toBeGreaterThan(gas?.measuredAt ?? 0);
    },
  );
});
