/**
 * The park broker with real MQTT.js clients on loopback: logins checked against scrypt hashes,
 * publishes and subscriptions against the ACL, a will on someone else's topic never delivered,
 * and nothing published into $SYS.
 */
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ParkBroker, startParkBroker } from '../../gateway/broker/broker.js';
import { hashPassword, parseCredentials } from '../../gateway/broker/credentials.js';
import { until } from '../support/until.js';

let broker: ParkBroker;
const clients: MqttClient[] = [];

beforeAll(async () => {
  const [a, b, c, op, meter] = await Promise.all(
    ['secret-a', 'secret-b', 'secret-c', 'secret-op', 'secret-m'].map(hashPassword),
  );
  const credentials = parseCredentials(
    `clients:
  plant-a: { role: prosumer, password: "${a}" }
  plant-b: { role: prosumer, password: "${b}" }
  plant-c: { role: prosumer, password: "${c}" }
  gateway: { role: operator, password: "${op}" }
  plant-a-chp: { role: meter, prosumer: plant-a, meter: chp, password: "${meter}" }
`,
    'credentials.yaml',
  );
  broker = await startParkBroker({ credentials, tcp: { host: '127.0.0.1', port: 0 } });
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.endAsync(true)));
  await broker?.close();
});

function connect(
  username: string | undefined,
  password: string | undefined,
  extra: IClientOptions = {},
) {
  const client = mqtt.connect(broker.urls.tcp ?? '', {
    reconnectPeriod: 0,
    ...(username !== undefined && { username }),
    ...(password !== undefined && { password }),
    ...extra,
  });
  clients.push(client);
  return new Promise<MqttClient>((resolve, reject) => {
    client.once('connect', () => resolve(client));
    client.once('error', reject);
  });
}

describe('the park broker', () => {
  it('lets in only the credentials it holds', async () => {
    await expect(connect('plant-a', 'secret-a')).resolves.toBeDefined();
    for (const [user, password] of [
      ['plant-a', 'secret-b'],
      ['plant-z', 'secret-a'],
      [undefined, undefined],
    ] as const) {
      await expect(connect(user, password)).rejects.toThrow(/Bad username or password/);
    }
    expect(broker.counters.refusedLogins).toBe(3);
  });

  it('delivers an offer to its addressee, and to nobody else', async () => {
    const [a, b, c] = await Promise.all([
      connect('plant-a', 'secret-a'),
      connect('plant-b', 'secret-b'),
      connect('plant-c', 'secret-c'),
    ]);
    const got: string[] = [];
    b.on('message', (t) => got.push(`b ${t}`));
    c.on('message', (t) => got.push(`c ${t}`));
    await b.subscribeAsync('eip/v1/negotiations/plant-b/+/offer', { qos: 1 });
    // plant-c tries to read everyone's offers: refused in the SUBACK, connection kept.
    await expect(c.subscribeAsync('eip/v1/negotiations/+/+/offer', { qos: 1 })).rejects.toThrow(
      /Subscribe error/,
    );
    await a.publishAsync('eip/v1/negotiations/plant-b/plant-a/offer', '{}', { qos: 1 });
    await until('the offer', () => got.length > 0, 3000);
    expect(got).toEqual(['b eip/v1/negotiations/plant-b/plant-a/offer']);
    expect(c.connected).toBe(true);
    expect(broker.counters.refusedSubscriptions).toBeGreaterThanOrEqual(1);
  });

  it('closes the connection of a client that publishes as another', async () => {
    const a = await connect('plant-a', 'secret-a');
    const before = broker.counters.refusedPublishes;
    const closed = new Promise<void>((resolve) => a.once('close', () => resolve()));
    a.publish('eip/v1/negotiations/plant-a/plant-b/offer', '{}', { qos: 1 });
    await closed;
    expect(broker.counters.refusedPublishes).toBe(before + 1);
  });

  it("never fires a will on another prosumer's topic", async () => {
    const watcher = await connect('gateway', 'secret-op');
    const seen: string[] = [];
    watcher.on('message', (t, payload) => seen.push(`${t} ${payload.toString()}`));
    await watcher.subscribeAsync('eip/v1/agents/+/status', { qos: 1 });
    const forger = await connect('plant-c', 'secret-c', {
      will: {
        topic: 'eip/v1/agents/plant-b/status',
        payload: Buffer.from('forged'),
        qos: 1,
        retain: true,
      },
    });
    const honest = await connect('plant-a', 'secret-a', {
      will: {
        topic: 'eip/v1/agents/plant-a/status',
        payload: Buffer.from('offline'),
        qos: 1,
        retain: true,
      },
    });
    // Both drop without a DISCONNECT: their wills fire, if they may.
    forger.stream.destroy();
    honest.stream.destroy();
    await until('the honest will', () => seen.length > 0, 3000);
    await new Promise((r) => setTimeout(r, 200));
    expect(seen).toEqual(['eip/v1/agents/plant-a/status offline']);
  });

  it('lets a meter send its own readings only, and nobody publish into $SYS', async () => {
    const meter = await connect('plant-a-chp', 'secret-m');
    await meter.publishAsync('eip/v1/meters/plant-a/chp/reading', '{}', { qos: 1 });
    await expect(
      meter.subscribeAsync('eip/v1/agents/plant-a/agreements', { qos: 1 }),
    ).rejects.toThrow(/Subscribe error/);
    const closed = new Promise<void>((resolve) => meter.once('close', () => resolve()));
    meter.publish('eip/v1/meters/plant-a/boiler/reading', '{}', { qos: 1 });
    await closed;
    const op = await connect('gateway', 'secret-op');
    const opClosed = new Promise<void>((resolve) => op.once('close', () => resolve()));
    op.publish('$SYS/broker/uptime', 'forever', { qos: 1 });
    await opClosed;
  });
});
