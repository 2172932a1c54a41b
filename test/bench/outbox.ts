/**
 * The edge outbox: meter readings (about 230 bytes stored each) appended durably, replayed to a
 * broker, and the time to open a full store. Each figure is the median of five samples, with the
 * range.
 *
 * - Appends awaited one by one cost a synced LevelDB write (an fsync) each: the floor a poller
 *   that waits for every reading would see.
 * - Appends made 256 at a time are committed together, one fsync per batch (group commit).
 * - Replay: 10,000 stored readings drained by the forwarder (window of 32, QoS 1, acked on disk)
 *   through MQTT.js to aedes on loopback, all in this one process, until the outbox is empty.
 * - Open: an outbox holding 100,000 readings; opening reads one bookkeeping entry and one key.
 */
import mqtt from 'mqtt';
import { textTable } from '../../core/text-table.js';
import { Forwarder } from '../../edge/outbox/forwarder.js';
import { MqttPublisher } from '../../edge/outbox/mqtt-publish.js';
import { Outbox } from '../../edge/outbox/outbox.js';
import { reading, tempDir } from '../edge/outbox/support.js';
import { startBroker } from '../support/broker.js';
import { until } from '../support/until.js';

const SAMPLES = 5;
const SAMPLE_MS = 1000;
const REPLAYED = 10_000;
const OPENED = 100_000;
const GROUP = 256;

const median = (xs: readonly number[]) =>
  [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
const fmt = (x: number) => Math.round(x).toLocaleString('en-US');

let taken = 0;
const appendReading = (outbox: Outbox) => {
  const { topic, render } = reading(taken++, Date.now());
  return outbox.append(topic, render);
};

/** Readings per second over SAMPLE_MS, `step` appending some and saying how many. */
async function appendRates(outbox: Outbox, step: () => Promise<number>): Promise<number[]> {
  const rates: number[] = [];
  for (let s = 0; s < SAMPLES; s++) {
    let count = 0;
    const start = performance.now();
    while (performance.now() - start < SAMPLE_MS) count += await step();
    rates.push((count * 1000) / (performance.now() - start));
    // Empty it between samples, untimed, so no sample pays for drops.
    const last = outbox.stats().nextSeq - 1;
    await outbox.ack(last);
  }
  return rates;
}

async function fill(outbox: Outbox, count: number): Promise<void> {
  for (let done = 0; done < count; done += GROUP) {
    await Promise.all(
      Array.from({ length: Math.min(GROUP, count - done) }, () => appendReading(outbox)),
    );
  }
}

async function replayRates(outbox: Outbox): Promise<number[]> {
  let received = 0;
  const broker = await startBroker({ onPublish: () => received++ });
  const client = mqtt.connect(broker.url, { reconnectPeriod: 0 });
  try {
    await new Promise((resolve) => client.once('connect', resolve));
    const publish = new MqttPublisher(client).publish;
    const rates: number[] = [];
    for (let s = 0; s < SAMPLES; s++) {
      await fill(outbox, REPLAYED);
      const forwarder = new Forwarder({ outbox, publish, window: 32 });
      const start = performance.now();
      forwarder.start();
      await until('the replay', () => outbox.stats().depth === 0, 120_000);
      rates.push((REPLAYED * 1000) / (performance.now() - start));
      await forwarder.stop();
    }
    if (received !== SAMPLES * REPLAYED) throw new Error(`broker got ${received} readings`);
    return rates;
  } finally {
    await new Promise<void>((resolve) => client.end(true, {}, () => resolve()));
    await broker.close();
  }
}

async function openTimesMs(dir: string): Promise<number[]> {
  const filled = await Outbox.open({ dir });
  await fill(filled, OPENED);
  await filled.close();
  const times: number[] = [];
  for (let s = 0; s < SAMPLES; s++) {
    const start = performance.now();
    const outbox = await Outbox.open({ dir });
    times.push(performance.now() - start);
    if (outbox.stats().depth !== OPENED) throw new Error('the outbox lost readings');
    await outbox.close();
  }
  return times;
}

export async function outboxTable(): Promise<string> {
  const work = tempDir('bench');
  const opened = tempDir('bench-open');
  try {
    const outbox = await Outbox.open({ dir: work.dir });
    const single = await appendRates(outbox, async () => {
      await appendReading(outbox);
      return 1;
    });
    const grouped = await appendRates(outbox, async () => {
      await Promise.all(Array.from({ length: GROUP }, () => appendReading(outbox)));
      return GROUP;
    });
    const replayed = await replayRates(outbox);
    await outbox.close();
    const open = await openTimesMs(opened.dir);

    const rate = (name: string, rates: number[], note = '') => [
      name,
      `${fmt(median(rates))} readings/s`,
      `${fmt(Math.min(...rates))}..${fmt(Math.max(...rates))}`,
      note,
    ];
    return textTable(
      ['benchmark', 'median', 'range', 'note'],
      [
        rate('append, each awaited (one fsync each)', single),
        rate(
          `append, ${GROUP} at once (group commit)`,
          grouped,
          `${(median(grouped) / median(single)).toFixed(0)}x one by one`,
        ),
        rate(`replay ${fmt(REPLAYED)} to aedes on loopback, window 32`, replayed),
        [
          `open with ${fmt(OPENED)} readings stored`,
          `${median(open).toFixed(1)} ms`,
          `${Math.min(...open).toFixed(1)}..${Math.max(...open).toFixed(1)}`,
          '',
        ],
      ],
      ['left', 'right', 'right', 'right'],
    );
  } finally {
    work.remove();
    opened.remove();
  }
}
