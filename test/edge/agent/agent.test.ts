/**
 * Two edge agents in a park on loopback: the park broker with its logins and ACL, as the gateway
 * runs it, so everything an agent publishes and subscribes to is shown to be allowed; a Modbus TCP
 * meter simulator and MQTT meters in each plant's own subtree. The biogas plant has 100 m3 above its holder's reserve, the other plant needs
 * 150 m3; each polls, publishes readings with sequence numbers, computes its balance per step,
 * and their policies find each other and agree, and the countersigned agreement reaches the
 * broker for the gateway. Health and metrics are served over HTTP.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Wallet } from 'ethers';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../core/logger.js';
import { assertSignedBy, marketDomain } from '../../../core/messages/eip712.js';
import {
  decodeMessage,
  encodePayload,
  type Payload,
  topic,
} from '../../../core/messages/topics.js';
import { EdgeAgent } from '../../../edge/agent/agent.js';
import { parseConfig } from '../../../edge/config/load.js';
import { loadProfile } from '../../../edge/meters/profiles.js';
import { type ParkBroker, startParkBroker } from '../../../gateway/broker/broker.js';
import { hashPassword, parseCredentials } from '../../../gateway/broker/credentials.js';
import { type MeterServer, startMeterServer } from '../../../simulators/meters/meter-server.js';
import { until } from '../../support/until.js';

const MARKET = '0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0';
const PSI = `
      sell:
        price: { ip: 80, rp: 20, dl: 20, cr: 2 }
        quantity: { dl: 20, cr: 2 }
      buy:
        price: { ip: 20, rp: 80, dl: 20, cr: 0.5 }
        quantity: { rp_fraction: 0, dl: 20, cr: 0.5 }`;

function config(prosumer: string, url: string, dir: string, extra: string): string {
  return `
prosumer: ${prosumer}
mqtt: { url: "${url}" }
market: { chain_id: 31337, contracts: { biogas: "${MARKET}" } }
step_s: 1
poll_s: 1
data_dir: ${dir}
health: { listen: "127.0.0.1:0" }
negotiation: { discovery_ms: 200, round_timeout_ms: 2000 }
${extra}`;
}

let broker: ParkBroker;
let url: string;
/** Each login's password is its name backwards: this is a test. */
const login = (name: string) => ({ username: name, password: [...name].reverse().join('') });
let meter: MeterServer;
let dir: string;
const agents: EdgeAgent[] = [];
const clients: mqtt.MqttClient[] = [];
const seen: { topic: string; payload: Buffer }[] = [];

beforeAll(async () => {
  const names = ['digester', 'brewery', 'gateway'];
  const [digester, brewery, gateway] = await Promise.all(
    names.map((name) => hashPassword(login(name).password)),
  );
  broker = await startParkBroker({
    credentials: parseCredentials(
      `clients:
  digester: { role: prosumer, password: "${digester}" }
  brewery: { role: prosumer, password: "${brewery}" }
  gateway: { role: operator, password: "${gateway}" }
`,
      'credentials.yaml',
    ),
    tcp: { host: '127.0.0.1', port: 0 },
  });
  url = broker.urls.tcp ?? '';
  meter = await startMeterServer({
    profile: loadProfile('eastron-sdm630'),
    link: { kind: 'tcp', host: '127.0.0.1', port: 0 },
    units: [1],
  });
  dir = mkdtempSync(join(tmpdir(), 'eip-agent-'));
  const observer = await mqtt.connectAsync(url, { ...login('gateway'), reconnectPeriod: 0 });
  clients.push(observer);
  await observer.subscribeAsync('eip/v1/#', { qos: 1 });
  observer.on('message', (topic, payload) => seen.push({ topic, payload }));
});

afterAll(async () => {
  for (const agent of agents) await agent.stop();
  for (const client of clients) await client.endAsync(true);
  await meter.close();
  await broker.close();
  rmSync(dir, { recursive: true, force: true });
});

function start(text: string, key: string): EdgeAgent {
  const config = parseConfig(text, 'test.yaml');
  const agent = new EdgeAgent({
    config,
    baseDir: dir,
    logger: silentLogger,
    identity: async () => new Wallet(key),
    connectMqtt: ({ will }) =>
      mqtt.connect(url, {
        ...login(config.prosumer),
        will: { ...will, qos: 1, retain: true },
        reconnectPeriod: 200,
      }),
  });
  agents.push(agent);
  return agent;
}

describe('edge agents in a park on loopback', () => {
  it('read, balance, negotiate and hand a signed agreement to the gateway', async () => {
    const port = meter.link.kind === 'tcp' ? meter.link.port : 0;
    const sellerKey = `0x${'31'.repeat(32)}`;
    const buyerKey = `0x${'32'.repeat(32)}`;
    const seller = start(
      config(
        'digester',
        url,
        'seller-data',
        `
buses: { lan: { type: tcp, address: "127.0.0.1:${port}" } }
meters:
  chp: { type: modbus, bus: lan, unit: 1, profile: eastron-sdm630 }
  holder: { type: mqtt, topic: eip/v1/plants/digester/holder, unit: m3 }
utilities:
  biogas:
    storage: { level: holder.value, capacity: 200, reserve: 20 }
    policy:
      type: rules
      min_trade: 5${PSI}
`,
      ),
      sellerKey,
    );
    const buyer = start(
      config(
        'brewery',
        url,
        'buyer-data',
        `
meters:
  tank: { type: mqtt, topic: eip/v1/plants/brewery/tank, path: level.m3, unit: m3 }
utilities:
  biogas:
    storage: { level: tank.value, capacity: 300, reserve: 160 }
    policy:
      type: rules
      min_trade: 5${PSI}
`,
      ),
      buyerKey,
    );
    await Promise.all([seller.start(), buyer.start()]);
    // Each plant's level sensor, with its plant's login, in its plant's subtree.
    const sensor = (name: string) =>
      mqtt.connectAsync(url, { ...login(name), clientId: `${name}-sensor`, reconnectPeriod: 0 });
    const digesterSensor = await sensor('digester');
    const brewerySensor = await sensor('brewery');
    clients.push(digesterSensor, brewerySensor);
    const levels = setInterval(() => {
      void digesterSensor.publishAsync('eip/v1/plants/digester/holder', '120', { retain: true });
      void brewerySensor.publishAsync(
        'eip/v1/plants/brewery/tank',
        JSON.stringify({ level: { m3: 10 } }),
        { retain: true },
      );
    }, 200);
    try {
      await until(
        'an agreement',
        () =>
          seen.some(
            (m) =>
              m.topic === 'eip/v1/agreements/digester' || m.topic === 'eip/v1/agreements/brewery',
          ),
        15_000,
      );
    } finally {
      clearInterval(levels);
    }

    // Readings of the Modbus meter, in order, each with a fresh sequence number.
    const readings = seen
      .filter((m) => m.topic.startsWith('eip/v1/meters/digester/chp/'))
      .map((m) => decodeMessage(m.topic, m.payload).payload as Payload<'meterReading'>);
    expect(readings.length).toBeGreaterThan(10);
    const seqs = readings.map((r) => r.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(new Set(seqs).size).toBe(seqs.length);
    expect(readings.find((r) => r.quantity === 'voltage_l1')?.value).toBeCloseTo(230, 3);

    // Balances: 100 m3 to sell, 150 to buy.
    const balances = seen
      .filter((m) => m.topic.startsWith('eip/v1/balances/'))
      .map((m) => decodeMessage(m.topic, m.payload).payload as Payload<'balance'>);
    expect(balances.find((b) => b.prosumer === 'digester')?.net_milli).toBe(100_000);
    expect(balances.find((b) => b.prosumer === 'brewery')?.net_milli).toBe(-150_000);

    // The agreement, signed by both, for 100 m3 at the seed's 35 tokens/m3.
    const message = seen.find((m) => m.topic.startsWith('eip/v1/agreements/'));
    if (!message) throw new Error('no agreement');
    const { agreement, seller_signature, buyer_signature } = decodeMessage(
      message.topic,
      message.payload,
    ).payload as Payload<'agreement'>;
    const domain = marketDomain(31337, MARKET);
    assertSignedBy(domain, 'Agreement', agreement, seller_signature, new Wallet(sellerKey).address);
    assertSignedBy(domain, 'Agreement', agreement, buyer_signature, new Wallet(buyerKey).address);
    expect(agreement.quantity).toBe(100_000n);
    expect(agreement.unitPrice).toBe(35_000n * 10n ** 12n);

    // Each party tells the gateway how the negotiation ended, for the park's agreement rate
    // (both agents may have asked at once: their other requests are reported too).
    const outcomesOf = () =>
      seen
        .filter((m) => m.topic.endsWith('/negotiations'))
        .map((m) => decodeMessage(m.topic, m.payload).payload as Payload<'negotiationOutcome'>)
        .filter((o) => o.negotiation_id === agreement.negotiationId);
    await until('both outcome reports', () => outcomesOf().length === 2);
    const outcomes = outcomesOf();
    expect(outcomes.map((o) => [o.prosumer, o.counterpart, o.requester]).sort()).toEqual([
      ['brewery', 'digester', expect.any(Boolean)],
      ['digester', 'brewery', expect.any(Boolean)],
    ]);
    expect(outcomes.filter((o) => o.requester)).toHaveLength(1);
    expect(outcomes.some((o) => o.outcome === 'agreed')).toBe(true);

    // Health and metrics.
    expect(seller.firstReadingMs).toBeLessThan(1000);
    const health = await fetch(`${seller.healthUrl}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({
      prosumer: 'digester',
      mqtt: { connected: true },
      stale_meters: [],
    });
    const metrics = await (await fetch(`${seller.healthUrl}/metrics`)).text();
    expect(metrics).toMatch(/^eip_edge_readings_total \d+/m);
    expect(metrics).toMatch(/^eip_edge_negotiations_total\{outcome="(agreed|proposed)"\} 1/m);
    expect(metrics).toMatch(/^eip_edge_process_resident_memory_bytes \d+/m);

    // Nothing either agent did was refused by the park's ACL.
    expect(broker.counters).toMatchObject({ refusedPublishes: 0, refusedSubscriptions: 0 });

    // The gateway's answer to something the agent sent is logged and counted by the agent.
    const [gateway] = clients;
    await gateway?.publishAsync(
      topic('refusal', { prosumer: 'digester' }),
      encodePayload('refusal', {
        topic: 'eip/v1/agreements/digester',
        code: 'INVALID_SIGNATURE',
        message: 'Agreement is signed by 0x0, expected 0x1',
        at_ms: Date.now(),
      }),
      { qos: 1 },
    );
    const counted = /^eip_edge_gateway_refusals_total\{code="INVALID_SIGNATURE"\} 1/m;
    let text = '';
    for (let tries = 0; tries < 100 && !counted.test(text); tries++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      text = await (await fetch(`${seller.healthUrl}/metrics`)).text();
    }
    expect(text).toMatch(counted);
  }, 30_000);
});
