/**
 * Meter readings from MQTT into InfluxDB, end to end, on this host: the park broker
 * (startParkBroker, with logins and the ACL checking every publish and delivery, as in the
 * gateway; not the plain aedes of test/support/broker.ts, which would leave that cost out),
 * PUBLISHERS prosumer clients publishing READINGS valid `meterReading` messages at QoS 1, and the
 * gateway's subscriber decoding each (decodeMessage: topic, JSON, zod) and handing it to the
 * InfluxWriter, which batches them into an influxd (test/support/influxd.ts) on the same host.
 *
 * Three rows, each the median of SAMPLES runs taken in turn (the range shows the noise):
 * - the baseline: the same messages through the broker to the subscriber, decoded, no InfluxDB;
 * - the whole path: until InfluxDB has acknowledged every reading (a 204 on its write; a count
 *   query at the end checks that it has them all). The stream's end is flushed, as a steady
 *   stream never waits for the flush timer;
 * - the writer alone: the same readings, already decoded, written straight to the InfluxWriter.
 *
 * The plants publish from a process of their own, as they would from their own machines: this
 * process is the gateway (broker, subscriber, writer). On a 2-core box the three processes
 * (plants, gateway, influxd) still share the two cores.
 */
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InfluxDB } from 'influx';
import mqtt, { type MqttClient } from 'mqtt';
import {
  decodeMessage,
  encodePayload,
  type Payload,
  subscription,
  topic,
} from '../../core/messages/topics.js';
import { textTable } from '../../core/text-table.js';
import { startParkBroker } from '../../gateway/broker/broker.js';
import { hashPassword, parseCredentials } from '../../gateway/broker/credentials.js';
import { InfluxWriter } from '../../gateway/timeseries/writer.js';
import { startInfluxd } from '../support/influxd.js';

const READINGS = 200_000;
const PUBLISHERS = 4;
/** QoS 1 publishes each publisher keeps in flight. */
const WINDOW = 256;
const GOAL_PER_SECOND = 20_000;
const SAMPLES = 3;
const T0 = Date.UTC(2026, 0, 5);

const median = (xs: readonly number[]) =>
  [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
const fmt = (x: number) => Math.round(x).toLocaleString('en-US');

interface Message {
  readonly topic: string;
  readonly payload: string;
}

/** Each publisher's share, encoded; every reading its own series and time, so none overwrites. */
function messages(run: number, perPublisher = READINGS / PUBLISHERS): Message[][] {
  return Array.from({ length: PUBLISHERS }, (_, p) =>
    Array.from({ length: perPublisher }, (_, i) => {
      const reading: Payload<'meterReading'> = {
        prosumer: `plant-${p}`,
        meter: `meter-${i % 10}`,
        utility: 'electricity',
        quantity: 'import_energy',
        value: 1000 + i / 8,
        unit: 'kWh',
        measured_at_ms: T0 + run * READINGS + i,
        seq: i,
        stale: false,
      };
      return {
        topic: topic('meterReading', { prosumer: reading.prosumer, meter: reading.meter }),
        payload: encodePayload('meterReading', reading),
      };
    }),
  );
}

function connect(url: string, username: string): Promise<MqttClient> {
  const client = mqtt.connect(url, {
    username,
    password: `${username}-secret`,
    reconnectPeriod: 0,
  });
  return new Promise((resolve, reject) => {
    client.once('connect', () => resolve(client));
    client.once('error', reject);
  });
}

async function publishAll(client: MqttClient, share: readonly Message[]): Promise<void> {
  await Promise.all(
    Array.from({ length: WINDOW }, async (_, lane) => {
      for (let i = lane; i < share.length; i += WINDOW) {
        const message = share[i] as Message;
        await client.publishAsync(message.topic, message.payload, { qos: 1 });
      }
    }),
  );
}

interface PublisherJob {
  readonly url: string;
  readonly run: number;
  readonly perPublisher: number;
}

/**
 * The plants, in a process of their own (this module, run with EIP_INGEST_PUBLISHERS set): they
 * connect and encode, say `ready`, publish on `go`, and say `published`.
 */
async function publishers(job: PublisherJob): Promise<void> {
  const send = (message: string) => process.send?.(message);
  const shares = messages(job.run, job.perPublisher);
  const clients = await Promise.all(shares.map((_, p) => connect(job.url, `plant-${p}`)));
  send('ready');
  await new Promise((resolve) => process.once('message', resolve));
  await Promise.all(clients.map((client, p) => publishAll(client, shares[p] ?? [])));
  await Promise.all(clients.map((client) => client.endAsync()));
  send('published');
}

if (process.env.EIP_INGEST_PUBLISHERS) {
  await publishers(JSON.parse(process.env.EIP_INGEST_PUBLISHERS) as PublisherJob);
  process.exit(0);
}

/** Has the plants publish run `run`, and resolves with the seconds until `done` holds. */
async function stream(
  job: PublisherJob,
  take: (topic: string, payload: Buffer) => void,
  done: () => boolean,
): Promise<number> {
  const subscriber = await connect(job.url, 'gateway');
  subscriber.on('message', take);
  await subscriber.subscribeAsync(subscription('meterReading'), { qos: 1 });
  const child = fork(fileURLToPath(import.meta.url), {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, EIP_INGEST_PUBLISHERS: JSON.stringify(job) },
  });
  const said = (what: string) =>
    new Promise<void>((resolve, reject) => {
      child.on('message', (message) => message === what && resolve());
      child.once('exit', (code) => reject(new Error(`the publishers exited (${code})`)));
    });
  try {
    await said('ready');
    const started = performance.now();
    child.send('go');
    await said('published');
    const deadline = Date.now() + 300_000;
    while (!done()) {
      if (Date.now() > deadline) throw new Error('the readings did not all arrive in 300 s');
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    return (performance.now() - started) / 1000;
  } finally {
    child.kill();
    await subscriber.endAsync(true);
  }
}

export async function ingestTable(): Promise<string> {
  const influxd = await startInfluxd();
  const names = [...Array.from({ length: PUBLISHERS }, (_, p) => `plant-${p}`), 'gateway'];
  const hashes = await Promise.all(names.map((name) => hashPassword(`${name}-secret`)));
  const credentials = parseCredentials(
    `clients:\n${names
      .map((name, i) => {
        const role = name === 'gateway' ? 'operator' : 'prosumer';
        return `  ${name}: { role: ${role}, password: "${hashes[i]}" }`;
      })
      .join('\n')}\n`,
    'bench.yaml',
  );
  const broker = await startParkBroker({ credentials, tcp: { host: '127.0.0.1', port: 0 } });
  const brokerUrl = broker.urls.tcp ?? '';
  const spoolDir = mkdtempSync(join(tmpdir(), 'eip-bench-spool-'));
  const port = Number(new URL(influxd.url).port);
  const rows: [string, number[]][] = [
    ['MQTT -> decode (baseline, no InfluxDB)', []],
    ['MQTT -> decode -> InfluxWriter -> InfluxDB', []],
    ['InfluxWriter -> InfluxDB alone (decoded readings)', []],
  ];
  const all = READINGS / PUBLISHERS;
  try {
    let decoded = 0;
    const decode = (concrete: string, payload: Buffer) => {
      if (decodeMessage(concrete, payload).name === 'meterReading') decoded++;
    };
    // Warm-up (JIT, the broker's login cache): a tenth of the readings, decoded.
    await stream({ url: brokerUrl, run: 0, perPublisher: all / 10 }, decode, () => {
      return decoded === READINGS / 10;
    });
    const writer = await InfluxWriter.open({ url: influxd.url, database: 'bench', spoolDir });
    for (let sample = 0; sample < SAMPLES; sample++) {
      const run = 1 + 3 * sample;
      decoded = 0;
      const baseline = await stream({ url: brokerUrl, run, perPublisher: all }, decode, () => {
        return decoded === READINGS;
      });

      const written = writer.stats().written;
      let received = 0;
      const whole = await stream(
        { url: brokerUrl, run: run + 1, perPublisher: all },
        (concrete, payload) => {
          const message = decodeMessage(concrete, payload);
          if (message.name !== 'meterReading') return;
          writer.writeReading(message.payload);
          if (++received === READINGS) void writer.flush();
        },
        () => writer.stats().written - written === READINGS,
      );

      const readings = messages(run + 2)
        .flat()
        .map(
          ({ topic: concrete, payload }) =>
            decodeMessage(concrete, payload).payload as Payload<'meterReading'>,
        );
      const before = writer.stats().written;
      const started = performance.now();
      for (const reading of readings) writer.writeReading(reading);
      await writer.flush();
      if (writer.stats().written - before !== READINGS) throw new Error('the writer lost some');
      const alone = (performance.now() - started) / 1000;
      for (const [i, seconds] of [baseline, whole, alone].entries()) rows[i]?.[1].push(seconds);
    }
    await writer.close();

    const client = new InfluxDB({ host: '127.0.0.1', port, database: 'bench' });
    const [count] = await client.query<{ count: number }>('SELECT count("value") FROM "reading"');
    if (count?.count !== 2 * SAMPLES * READINGS) {
      throw new Error(`InfluxDB has ${count?.count} readings, not ${2 * SAMPLES * READINGS}`);
    }
  } finally {
    await broker.close();
    await influxd.close();
    rmSync(spoolDir, { recursive: true, force: true });
  }
  const rates = rows.map(([name, seconds]) => {
    const perSecond = seconds.map((s) => READINGS / s);
    return { name, perSecond, median: median(perSecond) };
  });
  const baselineRate = rates[0]?.median ?? 1;
  return textTable(
    ['path', 'readings/s (median)', 'range', 'vs baseline', `vs ${fmt(GOAL_PER_SECOND)}/s goal`],
    rates.map(({ name, perSecond, median: rate }) => [
      name,
      fmt(rate),
      `${fmt(Math.min(...perSecond))}..${fmt(Math.max(...perSecond))}`,
      `${((rate / baselineRate) * 100).toFixed(0)}%`,
      `${(rate / GOAL_PER_SECOND).toFixed(2)}x`,
    ]),
    ['left', 'right', 'right', 'right', 'right'],
  );
}
