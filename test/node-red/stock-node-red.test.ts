/**
 * The palette in a stock Node-RED 4, embedded as its documentation shows: installed into the
 * user directory from a path (a link in node_modules, as `npm install ../node-red-flows` makes),
 * found and loaded by Node-RED itself. Checks the palette and help text the editor gets, the
 * Import > Examples menu, and runs every example flow, fetched from that menu and deployed over
 * the admin API as the editor does, against the meter simulator, an aedes broker and a stand-in
 * for the gateway API. Everything listens on loopback.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import RED from 'node-red';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deliveryConfirmation } from '../../core/messages/schemas.js';
import { createPublisher } from '../../core/messages/topics.js';
import { loadProfile } from '../../edge/meters/profiles.js';
import { type MeterServer, startMeterServer } from '../../simulators/meters/meter-server.js';
import { FIXTURES } from '../core/messages/fixtures.js';
import { startBroker, type TestBroker } from '../support/broker.js';
import { until } from '../support/until.js';
import { agreementView, type MarketApi, PARTIES, startMarketApi } from './support/market-api.js';
import {
  PACKAGE_DIR,
  readPackageJson,
  type StagedPalette,
  stagePalette,
} from './support/palette.js';

type FlowNode = Record<string, unknown> & { id: string; type: string; name?: string };
interface DebugMessage {
  readonly id: string;
  readonly name?: string;
  readonly msg: string;
}
interface StatusEvent {
  readonly id: string;
  readonly status: { readonly text?: string };
}

const MODULE = readPackageJson().name;
const TYPES = Object.keys(readPackageJson()['node-red'].nodes);

let palette: StagedPalette;
let userDir: string;
let server: Server;
let base: string;
let meter: MeterServer;
let broker: TestBroker;
let api: MarketApi;
let webhook: { url: string; posts: unknown[]; close(): Promise<void> };
let publish: ReturnType<typeof createPublisher<Promise<unknown>>>;
const debugs: DebugMessage[] = [];
const statuses: StatusEvent[] = [];
const errors: string[] = [];

async function listen(s: Server): Promise<string> {
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
}

async function startWebhook(): Promise<typeof webhook> {
  const posts: unknown[] = [];
  const s = createServer((request: IncomingMessage, response) => {
    let body = '';
    request.setEncoding('utf8');
    request.on('data', (chunk: string) => {
      body += chunk;
    });
    request.on('end', () => {
      posts.push(JSON.parse(body));
      response.end('ok');
    });
  });
  return {
    url: `${await listen(s)}/hook`,
    posts,
    close: () => new Promise((resolve) => s.close(() => resolve())),
  };
}

beforeAll(async () => {
  palette = await stagePalette();
  userDir = mkdtempSync(join(tmpdir(), 'eip-node-red-'));
  mkdirSync(join(userDir, 'node_modules'));
  symlinkSync(palette.dir, join(userDir, 'node_modules', MODULE), 'dir');

  // The editor's API under /admin, the flows' HTTP endpoints at the root.
  server = createServer((request, response) => {
    const url = request.url ?? '/';
    if (url === '/admin' || url.startsWith('/admin/')) {
      request.url = url.slice('/admin'.length) || '/';
      RED.httpAdmin(request, response, () => response.writeHead(404).end());
    } else {
      RED.httpNode(request, response, () => response.writeHead(404).end());
    }
  });
  RED.init(server, {
    userDir,
    flowFile: 'flows.json',
    credentialSecret: 'test only',
    httpAdminRoot: '/admin',
    httpNodeRoot: '/',
    logging: {
      console: { level: 'off' },
      errors: {
        level: 'error',
        metrics: false,
        audit: false,
        handler: () => (entry: { msg: unknown }) => errors.push(String(entry.msg)),
      },
    },
    editorTheme: { tours: false },
    telemetry: { enabled: false, updateNotification: false },
    diagnostics: { enabled: false, ui: false },
    externalModules: { palette: { allowInstall: false } },
  });
  base = await listen(server);
  await RED.start();
  RED.events.on('comms', (event: { topic: string; data: DebugMessage }) => {
    if (event.topic === 'debug') debugs.push(event.data);
  });
  RED.events.on('node-status', (event: StatusEvent) => statuses.push(event));

  meter = await startMeterServer({
    profile: loadProfile('eastron-sdm120'),
    link: { kind: 'tcp', host: '127.0.0.1', port: 0 },
  });
  broker = await startBroker();
  const client = await broker.connect();
  publish = createPublisher((topic, text, options) => client.publishAsync(topic, text, options));
  api = await startMarketApi();
  webhook = await startWebhook();
}, 180_000);

afterAll(async () => {
  await RED.stop();
  await new Promise((resolve) => server?.close(resolve));
  await Promise.all([meter?.close(), broker?.close(), api?.close(), webhook?.close()]);
  rmSync(userDir, { recursive: true, force: true });
  palette?.remove();
});

async function admin(path: string, accept = 'application/json'): Promise<Response> {
  const response = await fetch(`${base}/admin/${path}`, { headers: { accept } });
  expect(response.status, path).toBe(200);
  return response;
}

describe('the palette', () => {
  it('is loaded by Node-RED from the user directory, every node of package.json', async () => {
    const sets = (await (await admin('nodes')).json()) as {
      module: string;
      types: string[];
      enabled: boolean;
      err?: string;
    }[];
    const ours = sets.filter((set) => set.module === MODULE);
    expect(ours.map((set) => set.err ?? null)).toEqual(TYPES.map(() => null));
    expect(ours.every((set) => set.enabled)).toBe(true);
    expect(ours.flatMap((set) => set.types).sort()).toEqual([...TYPES].sort());
  });

  it('gives the editor an edit dialog and help text for every node', async () => {
    const html = await (await admin('nodes', 'text/html')).text();
    for (const type of TYPES) {
      expect(html, type).toContain(`RED.nodes.registerType('${type}'`);
      expect(html, type).toContain(`data-template-name="${type}"`);
      const help = new RegExp(`data-help-name="${type}">\\s*<p>[^<]{20,}`);
      expect(html, type).toMatch(help);
    }
  });

  it("lists the bundled meter profiles for the meter node's dialog", async () => {
    const profiles = (await (await admin('eip-market/profiles')).json()) as { name: string }[];
    const bundled = readdirSync(join(palette.dir, 'hardware', 'meters'));
    expect(profiles.map((p) => `${p.name}.yaml`).sort()).toEqual(bundled.sort());
    expect(profiles.map((p) => p.name)).toContain('eastron-sdm120');
  });
});

/** Points an example at the test's peers, as a technician sets the nodes for the site. */
function onLoopback(flow: FlowNode[]): FlowNode[] {
  return flow.map((node) => {
    if (node.type === 'eip-meter' && meter.link.kind === 'tcp') {
      return { ...node, host: meter.link.host, port: String(meter.link.port) };
    }
    if (node.type === 'eip-gateway') return { ...node, broker: broker.url, api: api.url };
    if (node.type === 'http request') return { ...node, url: webhook.url };
    return node;
  });
}

const nodeOf = (flow: readonly FlowNode[], type: string) => {
  const node = flow.find((n) => n.type === type);
  if (!node) throw new Error(`the example has no ${type} node`);
  return node;
};
const saidConnected = (id: string) =>
  statuses.some((e) => e.id === id && e.status.text === 'connected');
const page = async (path: string) => (await fetch(`${base}${path}`)).text();

/** Fetches a page until it has what `wanted` looks for; the page as it was then. */
async function pageWith(path: string, wanted: (html: string) => boolean): Promise<string> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const html = await page(path);
    if (wanted(html)) return html;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${path}; last:\n${html}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** What each example must do once deployed: the output a technician would look for. */
const SCENARIOS: Record<string, (flow: FlowNode[]) => Promise<void>> = {
  '01 - Read a meter and chart it': async () => {
    const html = await pageWith('/eip/meter-chart', (h) => h.includes('active_power: 2300 W'));
    expect(html).toMatch(/<polyline [^>]*points="0\.0,\d/);
    expect(html).toContain('?quantity=voltage');
  },

  '02 - Alert on a failed delivery': async (flow) => {
    const delivery = nodeOf(flow, 'eip-delivery');
    await until('the connection', () => saidConnected(delivery.id));
    const { payload } = FIXTURES.deliveryConfirmation;
    const plant = String(delivery.plant);
    const full = { ...payload, delivered_milli: payload.contracted_milli };
    await publish('deliveryConfirmation', { prosumer: plant }, full);
    await publish('deliveryConfirmation', { prosumer: plant }, payload);
    await until('the alert', () => debugs.some((d) => d.name === 'alert'));
    const alerts = debugs.filter((d) => d.name === 'alert');
    expect(alerts).toHaveLength(1);
    expect(alerts[0]?.msg).toContain('biogas: 60 of 100 m3 delivered (p0 to p1)');
    expect(alerts[0]?.msg).toContain('the seller was paid 2100.000 tokens');
  },

  '03 - Forward delivery confirmations to a webhook': async (flow) => {
    const delivery = nodeOf(flow, 'eip-delivery');
    await until('the connection', () => saidConnected(delivery.id));
    const { payload } = FIXTURES.deliveryConfirmation;
    await publish('deliveryConfirmation', { prosumer: String(delivery.plant) }, payload);
    await until('the webhook call', () => webhook.posts.length === 1);
    expect(webhook.posts[0]).toEqual({
      plant: delivery.plant,
      role: 'buyer',
      complete: false,
      shortfall_milli: 40_000,
      confirmation: deliveryConfirmation.encode(payload),
    });
    await until('the answer', () => debugs.some((d) => d.name === 'webhook answer'));
    expect(debugs.find((d) => d.name === 'webhook answer')?.msg).toBe('200');
  },

  '04 - Dashboard page of trades': async (flow) => {
    const events = nodeOf(flow, 'eip-market-events');
    await until('the stream', () => saidConnected(events.id));
    api.publish('agreement', agreementView(2));
    const short = (n: number) => `${agreementView(n).id.slice(0, 10)}…`;
    const html = await pageWith('/eip/trades', (h) => h.includes(short(1)) && h.includes(short(2)));
    expect(html).toContain('<td class="n">100 m3</td><td class="n">35.000</td>');
    const ofSeller = await page(`/eip/trades?plant=${PARTIES.seller}`);
    expect(ofSeller).toContain('sold');
    expect(await page(`/eip/trades?plant=0x${'0'.repeat(39)}1`)).toContain('No trades yet.');
  },
};

describe('the examples', () => {
  const files = readdirSync(join(PACKAGE_DIR, 'examples')).map((f) => f.replace(/\.json$/, ''));

  it('are in the Import > Examples menu, each with what it must do here', async () => {
    const listing = (await (await admin(`library/examples/flows/${MODULE}`)).json()) as {
      fn: string;
    }[];
    expect(listing.map((entry) => entry.fn).sort()).toEqual([...files].sort());
    expect(Object.keys(SCENARIOS).sort()).toEqual([...files].sort());
  });

  it.each(files)('%s runs against the simulators', async (name) => {
    api.list([agreementView(1, 'settled')]);
    const example = (await (
      await admin(`library/examples/flows/${MODULE}/${encodeURIComponent(name)}`)
    ).json()) as FlowNode[];
    const flow = onLoopback(example);
    debugs.length = 0;
    errors.length = 0;
    const deployed = await fetch(`${base}/admin/flows`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'node-red-deployment-type': 'full' },
      body: JSON.stringify(flow),
    });
    expect(deployed.status).toBe(204);

    await SCENARIOS[name]?.(flow);
    const problems = debugs.filter((d) => d.name === 'problems' || d.name === 'meter errors');
    expect(problems.map((d) => d.msg)).toEqual([]);
    expect(errors).toEqual([]);
  });
});
