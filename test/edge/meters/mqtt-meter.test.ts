/** MQTT meters through a real broker (aedes, in-process on loopback) and a real MQTT.js client. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EipError } from '../../../core/errors.js';
import { MqttMeterSource, parsePath } from '../../../edge/meters/mqtt-meter.js';
import { startBroker, type TestBroker } from '../../support/broker.js';

let broker: TestBroker;

beforeAll(async () => {
  broker = await startBroker();
});
afterAll(async () => {
  await broker.close();
});

const connect = () => broker.connect();

/** Resolves once the source has taken `count` messages in. */
async function settle(source: MqttMeterSource, count: number): Promise<void> {
  for (let i = 0; i < 200 && source.counters.messages < count; i++) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('MQTT meters', () => {
  it('reads plain and JSON payloads, scaled, and reports bad ones without stopping', async () => {
    const meterSide = await connect();
    const publisher = await connect();
    const errors: EipError[] = [];
    const source = new MqttMeterSource(
      meterSide,
      [
        { id: 'plug', topic: 'tele/plug1/SENSOR', path: 'ENERGY.Total', scale: 1, unit: 'kWh' },
        { id: 'gas', topic: 'plant/gas/volume', path: '', scale: 0.001, unit: 'm3' },
        { id: 'heat', topic: 'plant/heat', path: 'readings[1].value', scale: 1, unit: 'kWh' },
      ],
      (error) => errors.push(error),
    );
    // The broker handles one client's packets in order: once this later subscription is acked,
    // the source's own subscriptions are in place and nothing published next can be missed.
    await new Promise<void>((resolve) => meterSide.subscribe('$none', () => resolve()));
    publisher.publish('tele/plug1/SENSOR', JSON.stringify({ ENERGY: { Total: 12.5, Power: 40 } }));
    publisher.publish('plant/gas/volume', '123456');
    publisher.publish('plant/heat', JSON.stringify({ readings: [{ value: 1 }, { value: 77.25 }] }));
    publisher.publish('tele/plug1/SENSOR', 'not json');
    publisher.publish('plant/heat', JSON.stringify({ readings: [{ value: 1 }] }));
    publisher.publish('plant/gas/volume', 'twelve');
    await settle(source, 6);

    expect(source.latest('plug')).toMatchObject({ value: 12.5, unit: 'kWh' });
    expect(source.latest('gas')?.value).toBeCloseTo(123.456, 9);
    expect(source.latest('heat')).toMatchObject({ value: 77.25, unit: 'kWh' });
    expect(source.counters).toEqual({ messages: 6, invalid: 3 });
    expect(errors.map((e) => e.message)).toEqual([
      'MQTT meter plug on tele/plug1/SENSOR: payload is not JSON: "not json"',
      'MQTT meter heat on plant/heat: payload at "readings[1].value" is not a number (got null)',
      'MQTT meter gas on plant/gas/volume: payload is not a number (got null)',
    ]);
    meterSide.end(true);
    publisher.end(true);
  });

  it('parses payload paths and refuses malformed ones', () => {
    expect(parsePath('ENERGY.Total')).toEqual(['ENERGY', 'Total']);
    expect(parsePath('readings[1].value')).toEqual(['readings', 1, 'value']);
    expect(parsePath('')).toEqual([]);
    for (const bad of ['a..b', '.a', 'a[x]', 'a.', '[0]']) {
      expect(() => parsePath(bad)).toThrow(`payload path "${bad}" is not like "a.b[0].c"`);
    }
  });
});
