/**
 * The outbox, the forwarder and the MQTT.js adapter through a real aedes broker on loopback: a
 * broker outage in the middle of the stream, and what MQTT.js does with messages in flight.
 */
import type { AedesOptions } from 'aedes';
import mqtt, { type MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { isEipError } from '../../../core/errors.js';
import { Forwarder } from '../../../edge/outbox/forwarder.js';
import { MqttPublisher, publishFailure } from '../../../edge/outbox/mqtt-publish.js';
import { Outbox } from '../../../edge/outbox/outbox.js';
import { startBroker, type TestBroker } from '../../support/broker.js';
import { until } from '../../support/until.js';
import { Receiver, reading, tempDir } from './support.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function serve(
  receiver: Receiver,
  port?: number,
  options: AedesOptions = {},
): Promise<TestBroker> {
  const broker = await startBroker({
    ...(port !== undefined && { port }),
    aedes: options,
    onPublish: (topic, payload) => receiver.take(topic, payload),
  });
  cleanups.push(() => broker.close());
  return broker;
}

function connect(url: string): MqttClient {
  // Reconnect quickly; a refused reconnect during the outage is an 'error' event, expected here.
  const client = mqtt.connect(url, { reconnectPeriod: 50, connectTimeout: 2000 });
  client.on('error', () => undefined);
  cleanups.push(() => new Promise<void>((resolve) => client.end(true, {}, () => resolve())));
  return client;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('outbox over MQTT', () => {
  it('goes through a broker outage: appends go on, and all arrive in order, once after dedupe', async () => {
    const receiver = new Receiver();
    const first = await serve(receiver);
    const temp = tempDir('outage');
    cleanups.push(temp.remove);
    const outbox = await Outbox.open({ dir: temp.dir });
    cleanups.push(() => outbox.close());
    const client = connect(first.url);
    const forwarder = new Forwarder({
      outbox,
      publish: new MqttPublisher(client).publish,
      backoffInitialMs: 20,
      backoffMaxMs: 200,
    });
    client.on('connect', () => forwarder.reconnected());
    forwarder.start();
    cleanups.push(() => forwarder.stop());

    // Readings stamped when they are taken, appended ten at a time, as a poller would.
    const total = 1500;
    const expected: string[] = [];
    const stampedAt: number[] = [];
    const producing = (async () => {
      for (let i = 0; i < total; i += 10) {
        const batch = Array.from({ length: 10 }, (_, j) => reading(i + j, Date.now()));
        const seqs = await Promise.all(batch.map((r) => outbox.append(r.topic, r.render)));
        for (const [j, seq] of seqs.entries()) {
          expected.push(batch[j]?.render(seq) ?? '');
          stampedAt.push(Date.now());
        }
        forwarder.wake();
        await sleep(3);
      }
    })();

    await until('some readings through', () => receiver.kept.length >= 200);
    await first.close();
    const downAt = expected.length;
    await until(
      'appends during the outage',
      () => forwarder.counters.failures >= 1 && expected.length >= downAt + 200,
    );
    const upAt = Date.now();
    const appendedWhileDown = expected.length - downAt;
    await serve(receiver, first.port); // a new broker on the same port
    await producing;
    await until('every reading delivered', () => receiver.kept.length === total, 20_000);
    await until('the outbox to drain', () => outbox.stats().depth === 0);

    expect(receiver.kept.map((a) => a.payload)).toEqual(expected);
    expect(appendedWhileDown).toBeGreaterThanOrEqual(200);
    // Readings taken during the outage arrived after it, with the time they were taken.
    const takenWhileDown = receiver.kept.slice(downAt, downAt + appendedWhileDown);
    for (const arrival of takenWhileDown) {
      const { measured_at_ms } = JSON.parse(arrival.payload) as { measured_at_ms: number };
      expect(measured_at_ms).toBeLessThanOrEqual(upAt);
    }
    expect(forwarder.counters.retries).toBeGreaterThanOrEqual(1);
    expect(outbox.stats()).toMatchObject({ appended: total, acked: total, dropped: 0 });
  });

  it('fails messages in flight when the connection drops, and MQTT.js does not resend them', async () => {
    const held: (() => void)[] = [];
    const receiver = new Receiver();
    // The first broker takes the publishes in but never acknowledges them.
    const first = await serve(receiver, 0, {
      authorizePublish: (_client: unknown, _packet: unknown, callback: () => void) => {
        held.push(callback);
      },
    });
    const client = connect(first.url);
    await new Promise((resolve) => client.once('connect', resolve));
    const publisher = new MqttPublisher(client);
    const messages = [0, 1, 2].map((i) => reading(i));
    const inFlight = messages.map((m, seq) => publisher.publish(m.topic, m.render(seq)));
    const outcomes = Promise.allSettled(inFlight);
    await until('three held', () => held.length === 3);

    await first.close();
    for (const outcome of await outcomes) {
      expect(outcome.status).toBe('rejected');
      const reason = (outcome as PromiseRejectedResult).reason as Error;
      expect(isEipError(reason, 'IO_ERROR') && reason.retryable).toBe(true);
      expect(reason.message).toMatch(/not acknowledged: Message removed$/);
    }
    expect(Object.keys(client.outgoing)).toEqual([]);

    const refusal = await publisher.publish('t', 'x').catch((e: unknown) => e);
    expect(isEipError(refusal, 'IO_ERROR') && refusal.retryable).toBe(true);
    expect((refusal as Error).message).toBe('MQTT client is not connected; not sent: t');

    await serve(receiver, first.port);
    // MQTT.js resends its outgoing store, each message waiting for its PUBACK, before 'connect':
    // had it kept anything, it would be at the broker by now.
    await new Promise((resolve) => client.once('connect', resolve));
    expect(receiver.kept).toEqual([]);
    const again = messages[0];
    await publisher.publish(again?.topic ?? '', again?.render(7) ?? '');
    expect(receiver.kept.map((a) => a.seq)).toEqual([7]);
  });

  it('tells a refusal for good from one worth retrying by the MQTT 5 reason code', () => {
    const withCode = (code: number) => Object.assign(new Error('Publish error'), { code });
    const forGood = publishFailure('t', withCode(0x99));
    expect(forGood.retryable).toBe(false);
    expect(forGood.message).toBe('the broker refused the publish to t: payload format invalid');
    expect(publishFailure('t', withCode(0x97)).retryable).toBe(true); // quota exceeded
    expect(publishFailure('t', new Error('Connection closed')).retryable).toBe(true);
  });
});
