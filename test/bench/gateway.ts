/**
 * The gateway's memory with 100 connected agents: the built `eip-gateway run` as its own process
 * (embedded broker, anvil, relay, oracle, indexer and API), 100 plants enrolled, then 100 MQTT
 * clients logged in as those plants, each with its presence and a last will, each publishing a
 * meter reading a second. The gateway's resident memory (anvil is a process of its own and not
 * counted) is read from /proc before the agents come, and after they have run a while.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Wallet } from 'ethers';
import mqtt, { type MqttClient } from 'mqtt';
import { encodePayload, topic } from '../../core/messages/topics.js';
import { textTable } from '../../core/text-table.js';
import { hashPassword } from '../../gateway/broker/credentials.js';

const AGENTS = 100;
const RUN_S = Number(process.env.EIP_BENCH_GATEWAY_S ?? 30);
const BIN = join(import.meta.dirname, '../../dist/gateway/cli/main.js');

export async function gatewayTable(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'eip-bench-gateway-'));
  const names = Array.from({ length: AGENTS }, (_, i) => `plant-${i}`);
  const hashes = await Promise.all(names.map((name) => hashPassword(`${name}-secret`)));
  writeFileSync(
    join(dir, 'credentials.yaml'),
    `clients:\n${names.map((n, i) => `  ${n}: { role: prosumer, password: "${hashes[i]}" }`).join('\n')}\n`,
  );
  writeFileSync(
    join(dir, 'gateway.yaml'),
    [
      'broker: { credentials: credentials.yaml, tcp: "127.0.0.1:0" }',
      'api: { listen: "127.0.0.1:0" }',
      'plants:',
      ...names.map(
        (n) =>
          `  ${n}: { address: "${Wallet.createRandom().address}", meters: { main: "${Wallet.createRandom().address}" } }`,
      ),
    ].join('\n'),
  );
  const gateway = spawn(process.execPath, [BIN, 'run', '--config', join(dir, 'gateway.yaml')], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, EIP_DEBUG: '' },
  });
  const clients: MqttClient[] = [];
  try {
    const url = await brokerUrl(gateway);
    await sleep(2000); // let start-up garbage settle before the first sample
    const idle = rssMb(gateway);
    for (const name of names) {
      const status = (state: 'online' | 'offline') =>
        encodePayload('agentStatus', { prosumer: name, state, at_ms: Date.now() });
      const client = await mqtt.connectAsync(url, {
        username: name,
        password: `${name}-secret`,
        reconnectPeriod: 0,
        will: {
          topic: topic('agentStatus', { prosumer: name }),
          payload: Buffer.from(status('offline')),
          qos: 1,
          retain: true,
        },
      });
      await client.publishAsync(topic('agentStatus', { prosumer: name }), status('online'), {
        qos: 1,
        retain: true,
      });
      clients.push(client);
    }
    await sleep(2000);
    const connected = rssMb(gateway);
    let seq = 0;
    const timer = setInterval(() => {
      seq++;
      for (const [i, client] of clients.entries()) {
        const prosumer = names[i] as string;
        client.publish(
          topic('meterReading', { prosumer, meter: 'main' }),
          encodePayload('meterReading', {
            prosumer,
            meter: 'main',
            utility: 'electricity',
            quantity: 'import_energy',
            value: 1000 + seq * 0.5,
            unit: 'kWh',
            measured_at_ms: Date.now(),
            seq,
            stale: false,
          }),
          { qos: 1 },
        );
      }
    }, 1000);
    await sleep(RUN_S * 1000);
    clearInterval(timer);
    const loaded = rssMb(gateway);
    return textTable(
      ['gateway process (eip-gateway run)', 'RSS'],
      [
        [`${AGENTS} plants enrolled, no agent connected`, `${idle.toFixed(0)} MB`],
        [
          `${AGENTS} agents logged in (a first login is one 16 MB scrypt)`,
          `${connected.toFixed(0)} MB`,
        ],
        [
          `${AGENTS} agents connected, ${RUN_S} s of a reading each per second`,
          `${loaded.toFixed(0)} MB`,
        ],
        ['growth while the readings flowed', `${(loaded - connected).toFixed(0)} MB`],
      ],
      ['left', 'right'],
    );
  } finally {
    await Promise.all(clients.map((c) => c.endAsync(true)));
    gateway.kill('SIGTERM');
    await new Promise((resolve) => gateway.once('exit', resolve));
    rmSync(dir, { recursive: true, force: true });
  }
}

function brokerUrl(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error('the gateway did not start in 120 s')),
      120_000,
    );
    child.once('exit', (code) => reject(new Error(`the gateway exited with ${code}`)));
    let url: string | undefined;
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      const entry = JSON.parse(line) as { msg?: string; broker?: string };
      if (entry.msg === 'gateway running' && entry.broker) url = entry.broker;
      if (url) {
        clearTimeout(timer);
        resolve(url);
      }
    });
  });
}

function rssMb(child: ChildProcess): number {
  const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? Number.NaN);
  return kb / 1024;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
