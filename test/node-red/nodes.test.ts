/**
 * Each node of the built palette in a real Node-RED runtime (node-red-node-test-helper), against
 * real peers on loopback: the Modbus TCP meter simulator, an aedes broker, a stand-in for the
 * gateway API's event stream, and the gateway's own API with sign-in over an indexed anvil park.
 * Errors are read through Catch nodes, as a flow sees them; status dots from the runtime's
 * node-status events, which also carry those set while a node starts.
 */
import { createRequire } from 'node:module';
import RED from 'node-red';
import helper, { type FlowNode } from 'node-red-node-test-helper';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../core/logger.js';
import { structHash } from '../../core/messages/eip712.js';
import { deliveryConfirmation } from '../../core/messages/schemas.js';
import { createPublisher } from '../../core/messages/topics.js';
import { quantities } from '../../core/meters/profile.js';
import { psi, sigma } from '../../core/negotiation/strategy.js';
import { loadProfile } from '../../edge/meters/profiles.js';
import { type ApiServer, startApiServer } from '../../gateway/api/server.js';
import { startAuth } from '../../gateway/auth/auth.js';
import { authConfigSchema } from '../../gateway/auth/config.js';
import { newApiToken } from '../../gateway/auth/tokens.js';
import type { Indexer } from '../../gateway/indexer/indexer.js';
import { ParkDirectory } from '../../gateway/park.js';
import { MeterModel } from '../../simulators/meters/meter-model.js';
import { type MeterServer, startMeterServer } from '../../simulators/meters/meter-server.js';
import { agreementTerms, openAgreement, type Park } from '../contracts/park.js';
import { FIXTURES } from '../core/messages/fixtures.js';
import { startBroker, type TestBroker } from '../support/broker.js';
import { startIndexedPark } from '../support/indexed-park.js';
import { freePort } from '../support/processes.js';
import { openPtyPair, RUN_PTY_SUITES } from '../support/pty-pair.js';
import { until } from '../support/until.js';
import {
  agreementView,
  type MarketApi,
  settlementView,
  startMarketApi,
} from './support/market-api.js';
import { type NodeModule, type StagedPalette, stagePalette } from './support/palette.js';

type Msg = Record<string, unknown> & {
  topic?: string;
  payload?: unknown;
  error?: { message: string; code?: string };
};
interface StatusEvent {
  readonly id: string;
  readonly status: { readonly fill?: string; readonly text?: string };
}

let palette: StagedPalette;
let modules: Record<string, NodeModule>;
const statuses: StatusEvent[] = [];

beforeAll(async () => {
  palette = await stagePalette();
  modules = palette.modules();
  helper.init(createRequire(import.meta.url).resolve('node-red'));
  await helper.startServer();
  RED.events.on('node-status', (event: StatusEvent) => statuses.push(event));
}, 180_000);
beforeEach(() => {
  statuses.length = 0;
});
afterEach(() => helper.unload());
afterAll(async () => {
  await helper.stopServer();
  palette?.remove();
});

/** Every message reaching helper node `id` from now on. */
function tap(id: string): Msg[] {
  const received: Msg[] = [];
  const node = helper.getNode(id);
  if (node === null) throw new Error(`no node ${id} in the flow`);
  node.on('input', (msg: Msg) => received.push(msg));
  return received;
}

/**
 * The flow around the node under test, on one tab: its output to helper node `out`, and a Catch
 * node scoped to it that passes to `caught`. Config nodes (eip-gateway) stay global, as the
 * editor keeps them; the runtime tells the others by their position on the tab.
 */
function around(node: FlowNode, ...config: FlowNode[]): FlowNode[] {
  return [
    { id: 'flow', type: 'tab' },
    ...[
      { id: 'catch', type: 'catch', scope: [node.id], uncaught: false, wires: [['caught']] },
      { id: 'caught', type: 'helper' },
      { id: 'out', type: 'helper' },
      { wires: [['out']], ...node },
    ].map((n) => ({ z: 'flow', x: 0, y: 0, ...n })),
    ...config,
  ];
}

/** Whether node `id` has shown a dot of `fill` whose text matches. */
const showed = (id: string, fill: string, text: RegExp) =>
  statuses.some((e) => e.id === id && e.status.fill === fill && text.test(e.status.text ?? ''));

describe('eip-meter', () => {
  const NOW = 1_800_000_000_000;
  const profile = loadProfile('eastron-sdm120');
  const names = Object.keys(profile.quantities);
  let server: MeterServer;

  beforeAll(async () => {
    server = await startMeterServer({
      profile,
      link: { kind: 'tcp', host: '127.0.0.1', port: 0 },
      clock: () => NOW,
    });
  });
  afterAll(() => server?.close());

  const meter = (port: number, settings: Record<string, string> = {}): FlowNode => ({
    id: 'meter',
    type: 'eip-meter',
    profile: 'eastron-sdm120',
    transport: 'tcp',
    host: '127.0.0.1',
    port: String(port),
    device: '',
    baud: '9600',
    framing: '8N1',
    unit: '1',
    interval: '0.2',
    ...settings,
  });
  const port = () => (server.link.kind === 'tcp' ? server.link.port : 0);

  it('reads every quantity of its profile from the simulated meter, with a green dot', async () => {
    await helper.load(modules['eip-meter'], around(meter(port())));
    const out = tap('out');
    await until('a reading of every quantity', () => out.length >= names.length);

    const expected = new MeterModel(profile, () => NOW);
    const first = out.slice(0, names.length);
    expect(first.map((m) => m.topic).sort()).toEqual([...names].sort());
    for (const quantity of quantities(profile)) {
      const msg = first.find((m) => m.topic === quantity.name);
      expect(msg, quantity.name).toMatchObject({ unit: quantity.unit, utility: 'electricity' });
      expect(msg?.payload as number, quantity.name).toBeCloseTo(expected.value(quantity), 1);
    }
    await until('a green dot', () => showed('meter', 'green', /^10 values at /));
  });

  it('reads when a message arrives, keeping its properties, with an interval of 0', async () => {
    await helper.load(modules['eip-meter'], around(meter(port(), { interval: '0' })));
    const out = tap('out');
    helper.getNode('meter')?.receive({ payload: 'now', batch: 7 });
    await until('the readings', () => out.length === names.length);
    expect(out.every((m) => m.batch === 7 && typeof m.payload === 'number')).toBe(true);
  });

  it.skipIf(!RUN_PTY_SUITES)('reads over Modbus RTU, on a pseudo-terminal pair', async () => {
    const pty = await openPtyPair();
    const rtu = await startMeterServer({
      profile,
      link: { kind: 'rtu', path: pty.a, baudRate: 19200 },
      units: [3],
    });
    try {
      const settings = { transport: 'rtu', device: pty.b, baud: '19200', unit: '3' };
      await helper.load(modules['eip-meter'], around(meter(502, settings)));
      const out = tap('out');
      await until('a reading of every quantity', () => out.length >= names.length);
      expect(out.find((m) => m.topic === 'voltage')?.payload).toBeCloseTo(230, 1);
      expect(showed('meter', 'green', /values at/)).toBe(true);
    } finally {
      await helper.unload();
      await rtu.close();
      await pty.close();
    }
  });

  it('turns red on a meter that is not there, and tells Catch nodes', async () => {
    const nobody = await freePort();
    await helper.load(modules['eip-meter'], around(meter(nobody)));
    const caught = tap('caught');
    await until('an error for Catch', () => caught.length > 0);
    expect(caught[0]?.error?.code).toBe('IO_ERROR');
    expect(caught[0]?.error?.message).toContain(`cannot open Modbus TCP 127.0.0.1:${nobody}`);
    expect(caught[0]?.topic).toBe('eastron-sdm120');
    await until('a red dot', () => showed('meter', 'red', /cannot open Modbus TCP/));
  });

  it('goes yellow, stale, when a meter that answered stops answering', async () => {
    const own = await startMeterServer({
      profile,
      link: { kind: 'tcp', host: '127.0.0.1', port: 0 },
    });
    await helper.load(
      modules['eip-meter'],
      around(meter(own.link.kind === 'tcp' ? own.link.port : 0)),
    );
    await until('a good read', () => showed('meter', 'green', /values at/));
    await own.close();
    await until('a stale dot', () => showed('meter', 'yellow', /^stale since /));
  });

  it('refuses an unknown profile when it starts, with a red dot', async () => {
    await helper.load(modules['eip-meter'], around(meter(port(), { profile: 'acme-9000' })));
    expect(showed('meter', 'red', /unknown meter profile "acme-9000"/)).toBe(true);
  });
});

describe('eip-negotiation', () => {
  const node = (settings: Record<string, string> = {}): FlowNode => ({
    id: 'negotiation',
    type: 'eip-negotiation',
    ip: '',
    rp: '',
    dl: '',
    cr: '',
    ...settings,
  });

  it("offers what core's sigma gives, with the node's psi or the message's", async () => {
    await helper.load(
      modules['eip-negotiation'],
      around(node({ ip: '80', rp: '20', dl: '20', cr: '2' })),
    );
    const out = tap('out');
    const seller = psi({ ip: 80, rp: 20, dl: 20, cr: 2 });
    const buyer = { ip: 20, rp: 80, dl: 20, cr: 0.5 };
    const steps = [0, 1, 5, 11, 19.5, 20, 25];
    for (const t of steps) helper.getNode('negotiation')?.receive({ payload: t });
    for (const t of steps) helper.getNode('negotiation')?.receive({ payload: { t, ...buyer } });
    await until('every offer', () => out.length === steps.length * 2);
    expect(out.map((m) => m.payload)).toEqual([
      ...steps.map((t) => sigma(seller, t)),
      ...steps.map((t) => sigma(psi(buyer), t)),
    ]);
    expect(out[3]).toMatchObject({ t: 11, psi: { ip: 80, rp: 20, dl: 20, cr: 2 } });
    expect(out[3]?.shape).toBe('conceder');
    expect(out[steps.length]?.shape).toBe('boulware');
  });

  it('sends a bad psi to Catch nodes as INVALID_PSI, with the message', async () => {
    await helper.load(modules['eip-negotiation'], around(node()));
    const caught = tap('caught');
    const negotiation = helper.getNode('negotiation');
    negotiation?.receive({ payload: { t: 3, ip: 80, rp: 20, dl: 0, cr: 2 }, plant: 'p0' });
    negotiation?.receive({ payload: 4 });
    negotiation?.receive({ payload: { t: -1, ip: 80, rp: 20, dl: 10, cr: 2 } });
    await until('three errors', () => caught.length === 3);
    expect(caught.map((m) => m.error?.code)).toEqual([
      'INVALID_PSI',
      'INVALID_PSI',
      'INVALID_ARGUMENT',
    ]);
    expect(caught[0]?.error?.message).toContain('dl must be a finite number > 0');
    expect(caught[0]?.plant).toBe('p0');
    expect(caught[1]?.error?.message).toContain('no psi');
    expect(showed('negotiation', 'red', /dl must be/)).toBe(true);
  });
  it('refuses a bad psi in its settings: a red dot, and each message to Catch', async () => {
    await helper.load(
      modules['eip-negotiation'],
      around(node({ ip: '80', rp: '20', dl: 'soon', cr: '' })),
    );
    const caught = tap('caught');
    expect(showed('negotiation', 'red', /node settings: dl must be a finite number > 0/)).toBe(
      true,
    );
    helper.getNode('negotiation')?.receive({ payload: 1 });
    await until('the error', () => caught.length === 1);
    expect(caught[0]?.error?.code).toBe('INVALID_PSI');
    expect(caught[0]?.error?.message).toContain('(got soon)');
    expect(caught[0]?.error?.message).toContain('cr must be');
  });
});

describe('MQTT nodes', () => {
  let broker: TestBroker;
  let publish: ReturnType<typeof createPublisher<Promise<unknown>>>;
  let raw: (topic: string, payload: string) => Promise<unknown>;

  beforeAll(async () => {
    broker = await startBroker();
    const client = await broker.connect();
    publish = createPublisher((topic, payload, options) =>
      client.publishAsync(topic, payload, options),
    );
    raw = (topic, payload) => client.publishAsync(topic, payload, { qos: 1 });
  });
  afterAll(() => broker?.close());

  const gateway = (): FlowNode => ({
    id: 'gateway',
    type: 'eip-gateway',
    broker: broker.url,
    api: 'http://127.0.0.1:9',
  });

  it('eip-agent-status sends each change of presence, the retained ones first', async () => {
    await publish('agentStatus', { prosumer: 'p0' }, { prosumer: 'p0', state: 'online', at_ms: 1 });
    await helper.load(
      [modules['eip-gateway'], modules['eip-agent-status']],
      around(
        { id: 'presence', type: 'eip-agent-status', gateway: 'gateway', plant: '' },
        gateway(),
      ),
    );
    const out = tap('out');
    const caught = tap('caught');
    await until('the retained status', () => out.length === 1);
    const say = (prosumer: string, state: 'online' | 'offline', at_ms: number) =>
      publish('agentStatus', { prosumer }, { prosumer, state, at_ms });
    await say('p1', 'online', 2);
    await say('p0', 'online', 3);
    await say('p0', 'offline', 4);
    // A payload naming another prosumer than its topic: refused by core's schema check.
    await raw(
      'eip/v1/agents/p2/status',
      JSON.stringify({ prosumer: 'p3', state: 'online', at_ms: 5 }),
    );
    await until('the changes and the refusal', () => out.length === 3 && caught.length === 1);
    expect(out.map((m) => [m.topic, (m.payload as { state: string }).state])).toEqual([
      ['p0', 'online'],
      ['p1', 'online'],
      ['p0', 'offline'],
    ]);
    expect(caught[0]?.error?.code).toBe('INVALID_MESSAGE');
    expect(caught[0]?.topic).toBe('eip/v1/agents/p2/status');
    expect(showed('presence', 'yellow', /^1 online, 1 offline$/)).toBe(true);
  });

  it("eip-delivery sends the plant's confirmations, checked and in their wire form", async () => {
    await helper.load(
      [modules['eip-gateway'], modules['eip-delivery']],
      around({ id: 'delivery', type: 'eip-delivery', gateway: 'gateway', plant: 'p1' }, gateway()),
    );
    const out = tap('out');
    const caught = tap('caught');
    await until('the connection', () => showed('delivery', 'green', /^connected$/));
    const { params, payload } = FIXTURES.deliveryConfirmation;
    await publish('deliveryConfirmation', { prosumer: 'p0' }, payload);
    await publish('deliveryConfirmation', params, payload);
    const wire = deliveryConfirmation.encode(payload);
    await raw('eip/v1/agents/p1/deliveries', JSON.stringify({ ...wire, paid: '-1' }));
    await until('the confirmation and the refusal', () => out.length === 1 && caught.length === 1);
    expect(out[0]).toMatchObject({
      topic: payload.agreement_id,
      plant: 'p1',
      role: 'buyer',
      shortfall_milli: 40_000,
      complete: false,
      payload: {
        agreement_id: payload.agreement_id,
        delivered_milli: 60_000,
        paid: '2100000000000000000000',
        refunded: '1400000000000000000000',
      },
    });
    expect(caught[0]?.error?.code).toBe('INVALID_MESSAGE');
    expect(caught[0]?.error?.message).toContain('paid');
    expect(showed('delivery', 'yellow', /^60 of 100 delivered/)).toBe(true);
  });
});

describe('eip-gateway', () => {
  it('logs in with its credentials, and a refused login turns its nodes red', async () => {
    const logins: string[] = [];
    const broker = await startBroker({
      aedes: {
        authenticate: (_client, username, _password, done) => {
          logins.push(username ?? '');
          done(
            Object.assign(new Error('bad user name or password'), { returnCode: 4 as const }),
            false,
          );
        },
      },
    });
    try {
      await helper.load(
        [modules['eip-gateway'], modules['eip-agent-status']],
        around(
          { id: 'presence', type: 'eip-agent-status', gateway: 'gateway', plant: '' },
          { id: 'gateway', type: 'eip-gateway', broker: broker.url, api: 'http://127.0.0.1:9' },
        ),
        { gateway: { user: 'p1', password: 'wrong' } },
      );
      const caught = tap('caught');
      await until('the refusal for Catch', () => caught.length === 1);
      expect(logins[0]).toBe('p1');
      expect(caught[0]?.error?.code).toBe('UNAUTHORIZED');
      expect(caught[0]?.error?.message).toContain('refused the login');
      expect(showed('presence', 'red', /refused the login/)).toBe(true);
    } finally {
      await helper.unload();
      await broker.close();
    }
  });

  it('makes the nodes using invalid settings say so', async () => {
    await helper.load(
      [modules['eip-gateway'], modules['eip-delivery']],
      around(
        { id: 'delivery', type: 'eip-delivery', gateway: 'gateway', plant: 'p1' },
        { id: 'gateway', type: 'eip-gateway', broker: 'localhost', api: 'http://127.0.0.1:9' },
      ),
    );
    expect(showed('delivery', 'red', /the eip-gateway node has invalid settings/)).toBe(true);
  });
});

/** A market-events node (agreements, deliveries, settlements, with catch-up) on a gateway node. */
const loadMarketEvents = (apiUrl: string, credentials?: Record<string, string>) =>
  helper.load(
    [modules['eip-gateway'], modules['eip-market-events']],
    around(
      {
        id: 'events',
        type: 'eip-market-events',
        gateway: 'gateway',
        agreement: true,
        delivery: true,
        settlement: true,
        block: false,
        catchUp: true,
      },
      { id: 'gateway', type: 'eip-gateway', broker: 'mqtt://127.0.0.1:9', api: apiUrl },
    ),
    credentials && { gateway: credentials },
  );

describe('eip-market-events', () => {
  let api: MarketApi;
  beforeAll(async () => {
    api = await startMarketApi();
  });
  afterAll(() => api?.close());

  const load = (apiUrl: string) => loadMarketEvents(apiUrl);

  it('catches up, follows the stream, and resumes it with Last-Event-ID', async () => {
    api.list([agreementView(2), agreementView(1)]);
    await load(api.url);
    const out = tap('out');
    const caught = tap('caught');
    await until('the catch-up', () => out.length === 2);
    expect(out.map((m) => (m.payload as { id: string }).id)).toEqual([
      agreementView(1).id,
      agreementView(2).id,
    ]);

    api.publish('agreement', agreementView(3));
    api.publish('block', { number: 17, hash: `0x${'ab'.repeat(32)}` });
    api.publish('settlement', settlementView(3));
    api.publishText('delivery', '{"agreementId":"not a hash"}');
    await until('the live events', () => out.length === 4 && caught.length === 1);
    expect(out.slice(2).map((m) => [m.topic, m.eventId])).toEqual([
      ['agreement', '1'],
      ['settlement', '3'],
    ]);
    expect(caught[0]?.error?.code).toBe('INVALID_MESSAGE');

    // Cut, and an event while the node is away: it comes back with the last id it saw.
    api.cut();
    api.publish('settlement', settlementView(1));
    await until('the missed event', () => out.some((m) => m.eventId === '5'));
    expect(api.lastEventIds).toEqual(['', '4']);
    expect(out.filter((m) => m.eventId === '5')).toHaveLength(1);
  });

  it('holds live events back while it catches up, and sends them after the list', async () => {
    api.list([agreementView(7)]);
    const release = api.holdList();
    const streams = api.lastEventIds.length;
    await load(api.url);
    const out = tap('out');
    await until('the stream', () => api.lastEventIds.length > streams);
    api.publish('agreement', agreementView(7, 'settled'));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(out).toEqual([]);
    release();
    await until('the list and the event', () => out.length === 2);
    expect(out.map((m) => (m.payload as { state: string }).state)).toEqual(['active', 'settled']);
  });

  it('turns red and tells Catch nodes once while the API cannot be reached', async () => {
    const nobody = await freePort();
    await load(`http://127.0.0.1:${nobody}`);
    const caught = tap('caught');
    await until('the failure', () => caught.length === 1);
    expect(caught[0]?.error?.code).toBe('IO_ERROR');
    // Retries every 2 s fail alike; they are not news.
    await new Promise((resolve) => setTimeout(resolve, 2500));
    expect(caught).toHaveLength(1);
    expect(showed('events', 'red', /event stream/)).toBe(true);
  });
});

describe('eip-market-events with a gateway that requires sign-in', () => {
  const TOKEN = newApiToken();
  let park: Park;
  let indexer: Indexer;
  let api: ApiServer;

  beforeAll(async () => {
    ({ park, indexer } = await startIndexedPark());
    const directory = new ParkDirectory({
      'seller-plant': { address: park.seller.address, meters: {} },
      'buyer-plant': { address: park.buyer.address, meters: {} },
    });
    const port = await freePort();
    const auth = await startAuth({
      config: authConfigSchema.parse({
        public_url: `http://127.0.0.1:${port}`,
        // Configured, as sign-in needs a provider, and never reached: no browser signs in here.
        provider: { issuer: `http://127.0.0.1:${port}/no-provider`, client_id: 'dashboard' },
        tokens: { 'node-red-buyer': { plant: 'buyer-plant', hash: TOKEN.hash } },
      }),
      directory,
      logger: silentLogger,
    });
    api = await startApiServer({
      indexer,
      auth,
      listen: { host: '127.0.0.1', port },
      logger: silentLogger,
    });
  }, 60_000);
  afterAll(async () => {
    await api?.close();
    await indexer?.stop();
    await park?.close();
  });

  const load = (credentials: Record<string, string>) => loadMarketEvents(api.url, credentials);

  it("catches up and follows the stream with the gateway node's API token", async () => {
    const before = await agreementTerms(park);
    await openAgreement(park, before);
    const head = await park.provider.getBlockNumber();
    await until('the indexer at the head', () => indexer.status().indexedBlock >= head);
    await load({ token: TOKEN.token });
    const out = tap('out');
    const caught = tap('caught');
    const has = (terms: typeof before) =>
      out.some((m) => (m.payload as { id: string }).id === structHash('Agreement', terms));
    await until('the catch-up', () => has(before));
    expect(out[0]?.eventId).toBeUndefined();

    const after = await agreementTerms(park);
    await openAgreement(park, after);
    await until('the new agreement, live', () => has(after));
    expect(out.at(-1)).toMatchObject({ topic: 'agreement', eventId: expect.any(String) });
    expect(caught).toEqual([]);
    expect(showed('events', 'green', /^connected$/)).toBe(true);
  });

  it('turns red and tells Catch nodes to set the API token, when it has none or a wrong one', async () => {
    for (const [credentials, why] of [
      [{}, 'the API requires one'],
      [{ token: newApiToken().token }, 'the gateway refused this one (unknown or expired)'],
    ] as const) {
      statuses.length = 0;
      await load(credentials);
      const caught = tap('caught');
      await until('the refusal for Catch', () => caught.length === 1);
      expect(caught[0]?.error).toMatchObject({
        code: 'UNAUTHORIZED',
        message: expect.stringContaining(
          `set the gateway node's API token: ${why}; eip-gateway token makes one (${api.url}/api/events answered HTTP 401)`,
        ),
      });
      expect(showed('events', 'red', /^set the gateway node's API token: /)).toBe(true);
      await helper.unload();
    }
  });

  it('refuses a hash pasted where the token belongs, before any request', async () => {
    await load({ token: TOKEN.hash });
    expect(showed('events', 'red', /the eip-gateway node has invalid settings/)).toBe(true);
  });
});
