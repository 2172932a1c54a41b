/**
 * Two edge agents in a park on loopback: the park broker with its logins and ACL, as the gateway
 * runs it, so everything an agent publishes and subscribes to is shown to be allowed; a Modbus TCP
 * meter simulator and MQTT meters in each plant's own subtree. The biogas plant has 100 m3 above
 * its holder's reserve, the other plant needs 150 m3; each polls, publishes readings with sequence
 * numbers, computes its balance per step, and their policies find each other and agree, and the
 * countersigned agreement reaches the broker for the gateway. Health and metrics are served over
 * HTTP. Then a learned policy, loaded from its file as `eip-edge run` loads it, takes the place of
 * the rules, and what a policy is shown of the plant's situation is checked step by step.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Wallet } from 'ethers';
import mqtt from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../core/logger.js';
import { assertSignedBy, marketDomain } from '../../../core/messages/eip712.js';
import {
  decodeMessage,
  encodePayload,
  type Payload,
  type TopicName,
  topic,
} from '../../../core/messages/topics.js';
import { gridSpec, PROVIDER, PSI_GRID } from '../../../core/policy/actions.js';
import { describeState, SIDES, STATE_COUNT } from '../../../core/policy/context.js';
import { QTable } from '../../../core/policy/learned.js';
import type { Observation, Policy } from '../../../core/policy/policy.js';
import { milli, priceFromBaseUnits, toMilli, unitPriceBaseUnits } from '../../../core/units.js';
import { getUtility } from '../../../core/utilities.js';
import { EdgeAgent } from '../../../edge/agent/agent.js';
import { type LoadedConfig, loadConfig } from '../../../edge/config/load.js';
import { loadProfile } from '../../../edge/meters/profiles.js';
import { type ParkBroker, startParkBroker } from '../../../gateway/broker/broker.js';
import { hashPassword, parseCredentials } from '../../../gateway/broker/credentials.js';
import { type MeterServer, startMeterServer } from '../../../simulators/meters/meter-server.js';
import { until } from '../../support/until.js';
import { biogasRequest } from '../negotiation/requests.js';

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
  const plants = ['digester', 'brewery', 'dairy', 'kiln', 'mill', 'farm'];
  const hashes = await Promise.all(
    [...plants, 'gateway'].map((name) => hashPassword(login(name).password)),
  );
  const client = (name: string, role: string, i: number) =>
    `  ${name}: { role: ${role}, password: "${hashes[i]}" }`;
  broker = await startParkBroker({
    credentials: parseCredentials(
      `clients:
${plants.map((name, i) => client(name, 'prosumer', i)).join('\n')}
${client('gateway', 'operator', plants.length)}
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

// Each test's plants leave with it: none answers the next test's requests.
afterEach(async () => {
  for (const agent of agents.splice(0)) await agent.stop();
});

afterAll(async () => {
  for (const client of clients) await client.endAsync(true);
  await meter.close();
  await broker.close();
  rmSync(dir, { recursive: true, force: true });
});

let configs = 0;
/**
 * Starts an agent on the config `text`, loaded from a file in `dir` as `eip-edge run` loads it (a
 * learned policy's file with it); `policies` may put others in, e.g. a recording one.
 */
function start(
  text: string,
  key: string,
  policies: (loaded: LoadedConfig['policies']) => LoadedConfig['policies'] = (loaded) => loaded,
): EdgeAgent {
  const file = join(dir, `agent-${++configs}.yaml`);
  writeFileSync(file, text);
  const loaded = loadConfig(file);
  const { config } = loaded;
  const agent = new EdgeAgent({
    config,
    baseDir: loaded.baseDir,
    policies: policies(loaded.policies),
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

/** A plant's sensors, with its plant's login, publishing in its plant's subtree. */
async function sensor(name: string): Promise<mqtt.MqttClient> {
  const client = await mqtt.connectAsync(url, {
    ...login(name),
    clientId: `${name}-sensor`,
    reconnectPeriod: 0,
  });
  clients.push(client);
  return client;
}

/** What the park saw on topic `name` with these parameters, decoded. */
function received<N extends TopicName>(name: N, params: Parameters<typeof topic<N>>[1]) {
  const wanted = topic(name, params);
  return seen
    .filter((m) => m.topic === wanted)
    .map((m) => decodeMessage(m.topic, m.payload).payload as Payload<N>);
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
    const digesterSensor = await sensor('digester');
    const brewerySensor = await sensor('brewery');
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

const RULES = `
      type: rules
      min_trade: 5${PSI}`;

/** A plant whose biogas is its holder (level on MQTT) alone, deciding by `policy`. */
function holderPlant(prosumer: string, policy: string, store = 'capacity: 200, reserve: 20') {
  return config(
    prosumer,
    url,
    `${prosumer}-data`,
    `
meters:
  holder: { type: mqtt, topic: eip/v1/plants/${prosumer}/holder, unit: m3 }
utilities:
  biogas:
    storage: { level: holder.value, ${store} }
    policy:${policy}
`,
  );
}

/** Publishes a plant's holder level (retained, as a level sensor does). */
async function holderAt(prosumer: string, m3: number): Promise<void> {
  const client = await sensor(prosumer);
  await client.publishAsync(`eip/v1/plants/${prosumer}/holder`, String(m3), { retain: true });
}

/** A policy that shows what it was shown: each step's observation goes into `saw`. */
function recording(policy: Policy | undefined, saw: Observation[]): Policy {
  if (!policy) throw new Error('no policy to record');
  return {
    decide: (o) => {
      saw.push(o);
      return policy.decide(o);
    },
    respond: (o, request) => policy.respond(o, request),
  };
}

describe('a learned policy in place of the rules', () => {
  /** A policy file in `dir` whose table makes `action` the best in every state with a surplus. */
  function policyFile(name: string, action: number): string {
    const table = new QTable();
    const surplus = SIDES.indexOf('surplus');
    for (let state = 0; state < STATE_COUNT; state++) {
      if (describeState(state).side === surplus) table.row(state)[action] = 1;
    }
    writeFileSync(join(dir, name), JSON.stringify(table.toFile(milli(5000), { by: 'hand' })));
    return name;
  }

  it('orders from the provider when its table says the provider is best', async () => {
    const key = `0x${'41'.repeat(32)}`;
    await holderAt('dairy', 120);
    const dairy = start(
      holderPlant('dairy', ` { type: learned, file: ${policyFile('provider.json', PROVIDER)} }`),
      key,
    );
    await dairy.start();
    const orders = () => received('providerTrade', { utility: 'biogas', prosumer: 'dairy' });
    await until('an order to the provider', () => orders().length > 0);
    // Its whole surplus, sold at the provider's buying tariff.
    expect(orders()[0]?.order).toMatchObject({
      prosumer: new Wallet(key).address,
      role: 0,
      quantity: 100_000n,
      limitPrice: unitPriceBaseUnits(getUtility('biogas').provider_buys_at),
    });
    expect(received('negotiationRequest', { utility: 'biogas', prosumer: 'dairy' })).toEqual([]);
  });

  it("negotiates with the grid's psi its table picks, and knows the price agreed", async () => {
    // Any psi of the grid: the last one.
    const k = PSI_GRID.length - 1;
    const grid = PSI_GRID[k];
    if (!grid) throw new Error('the grid is empty');
    await Promise.all([holderAt('kiln', 120), holderAt('mill', 10)]);
    const saw: Observation[] = [];
    const kiln = start(
      holderPlant('kiln', ` { type: learned, file: ${policyFile('negotiate.json', 2 + k)} }`),
      `0x${'42'.repeat(32)}`,
      (loaded) => ({ biogas: recording(loaded.biogas, saw) }),
    );
    const mill = start(
      holderPlant('mill', RULES, 'capacity: 300, reserve: 160'),
      `0x${'43'.repeat(32)}`,
    );
    await Promise.all([kiln.start(), mill.start()]);
    const agreements = () => [
      ...received('agreement', { prosumer: 'kiln' }),
      ...received('agreement', { prosumer: 'mill' }),
    ];
    const requests = () => received('negotiationRequest', { utility: 'biogas', prosumer: 'kiln' });
    await until(
      'an agreement and a request of its own',
      () => {
        return agreements().length > 0 && requests().length > 0;
      },
      15_000,
    );

    expect(requests()[0]).toMatchObject({ role: 'seller', quantity_milli: 100_000 });
    // Whoever asked, it sells, and opens with the grid's psi for its whole surplus.
    const { agreement } = agreements()[0] as Payload<'agreement'>;
    const opening = received('offer', { to: 'mill', from: 'kiln' })
      .map((m) => m.offer)
      .filter((offer) => offer.negotiationId === agreement.negotiationId)
      .sort((a, b) => a.round - b.round)[0];
    const spec = gridSpec(grid, 'seller', milli(100_000), getUtility('biogas'));
    expect(opening?.unitPrice).toBe(unitPriceBaseUnits(toMilli(spec.psi.price.ip)));
    expect(opening?.quantity).toBe(100_000n);

    // From the next step on, its policy sees the price it agreed.
    await until('the agreed price shown to the policy', () =>
      saw.some((o) => o.recentPrice === priceFromBaseUnits(agreement.unitPrice)),
    );
  }, 30_000);
});

describe('what the policy is shown', () => {
  const WAITING: Policy = {
    decide: () => ({ kind: 'wait', why: 'watching' }),
    respond: () => null,
  };

  it('the store, the flow, the deadline, the last price and the requests seen, step by step', async () => {
    const sensors = await sensor('farm');
    const publish = (meter: string, value: number) =>
      sensors.publishAsync(`eip/v1/plants/farm/${meter}`, String(value), { retain: true });
    await Promise.all([publish('holder', 120), publish('made', 1000), publish('used', 500)]);
    const saw: Observation[] = [];
    const key = `0x${'44'.repeat(32)}`;
    const farm = start(
      config(
        'farm',
        url,
        'farm-data',
        `
meters:
  holder: { type: mqtt, topic: eip/v1/plants/farm/holder, unit: m3 }
  made: { type: mqtt, topic: eip/v1/plants/farm/made, unit: m3 }
  used: { type: mqtt, topic: eip/v1/plants/farm/used, unit: m3 }
utilities:
  biogas:
    production: [made.value]
    consumption: [used.value]
    storage: { level: holder.value, capacity: 200, reserve: 20 }
    deadline_s: 3
    policy:${RULES}
`,
      ),
      key,
      () => ({ biogas: recording(WAITING, saw) }),
    );
    await farm.start();
    /** The first observation from the `from`th on that passes `test`. */
    const shown = async (what: string, test: (o: Observation) => boolean, from = 0) => {
      await until(what, () => saw.slice(from).some(test));
      return saw.slice(from).find(test) as Observation;
    };

    // The store as metered; 100 m3 above the reserve to settle within 3 steps of 1 s.
    await shown('the deadline passed', (o) => o.stepsToDeadline === 0);
    expect(saw[0]).toMatchObject({
      step: 1,
      net: 100_000,
      storageLevel: 120_000,
      storageCapacity: 200_000,
      flow: 0,
      recentPrice: null,
      requestsSeen: { seller: 0, buyer: 0 },
    });
    expect(saw.slice(0, 4).map((o) => o.stepsToDeadline)).toEqual([3, 2, 1, 0]);

    // The flow: production minus consumption over the last step.
    let from = saw.length;
    await publish('made', 1007);
    await shown('gas made', (o) => o.flow === 7000, from);
    from = saw.length;
    await publish('used', 503);
    await shown('gas used', (o) => o.flow === -3000, from);

    // Settled, nothing is due; a new surplus has the whole deadline again.
    from = saw.length;
    await publish('holder', 20);
    expect(await shown('balanced', (o) => o.net === 0, from)).toMatchObject({ stepsToDeadline: 3 });
    from = saw.length;
    await publish('holder', 150);
    const again = await shown('a new surplus', (o) => o.net === 130_000, from);
    expect(again.stepsToDeadline).toBe(3);
    await shown('a step later', (o) => o.step === again.step + 1, from);
    expect(saw.find((o) => o.step === again.step + 1)?.stepsToDeadline).toBe(2);

    // Another plant's requests, counted in the step they came in, and only then.
    from = saw.length;
    const mill = await sensor('mill');
    for (const role of ['buyer', 'buyer', 'seller'] as const) {
      await mill.publishAsync(...biogasRequest('mill', role), { qos: 1 });
    }
    const total = () => {
      const all = { seller: 0, buyer: 0 };
      for (const o of saw.slice(from)) {
        all.seller += o.requestsSeen.seller;
        all.buyer += o.requestsSeen.buyer;
      }
      return all;
    };
    await until('the requests shown', () => total().buyer + total().seller === 3);
    const after = saw.length;
    await shown('two steps more', (o) => o.step >= (saw[after - 1]?.step ?? 0) + 2, after);
    expect(total()).toEqual({ seller: 1, buyer: 2 });

    // The gateway confirms a trade with the provider, with its terms: its price is the last.
    const [gateway] = clients;
    from = saw.length;
    await gateway?.publishAsync(...confirmedAt('farm', new Wallet(key).address, 20_000), {
      qos: 1,
    });
    await shown('the confirmed price', (o) => o.recentPrice === 20_000, from);
  }, 30_000);
});

/** The gateway's word that `prosumer`'s sale of 10 m3 at `price` milli-tokens is on chain. */
function confirmedAt(prosumer: string, seller: string, price: number): [string, string] {
  const id = `0x${randomBytes(32).toString('hex')}`;
  return [
    topic('agreementStatus', { prosumer }),
    encodePayload('agreementStatus', {
      agreement_id: id,
      utility: 'biogas',
      at_ms: Date.now(),
      state: 'confirmed',
      tx_hash: id,
      block: 7,
      agreement: {
        negotiationId: id,
        seller,
        buyer: Wallet.createRandom().address,
        quantity: 10_000n,
        unitPrice: unitPriceBaseUnits(milli(price)),
        deliveryStart: 1_800_000_000n,
        deliveryEnd: 1_800_003_600n,
        transcriptHash: id,
        sellerNonce: 1n,
        sellerDeadline: 1_800_000_600n,
        buyerNonce: 2n,
        buyerDeadline: 1_800_000_600n,
      },
    }),
  ];
}
