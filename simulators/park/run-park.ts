/**
 * `eip-sim park`: a park day end to end on this machine, with the real parts. The gateway (its
 * broker, anvil with the markets, the relay and the delivery oracle), a Modbus TCP simulator per
 * meter on a simulated clock, and an edge agent per plant, all on loopback. Meter readings,
 * negotiation, agreements on chain, metered delivery, payment and refund; progress as it goes,
 * a summary at the end, and a failed stage named.
 *
 * The configs it writes (gateway, credentials, one per plant) are the ones an installer would
 * write, kept in the data folder to read afterwards.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatUnits, NonceManager, Wallet } from 'ethers';
import mqtt from 'mqtt';
import { UtilityToken__factory } from '../../contracts/types/index.js';
import type { Logger } from '../../core/logger.js';
import { getUtility, UTILITY_IDS, type UtilityId } from '../../core/utilities.js';
import { EdgeAgent } from '../../edge/agent/agent.js';
import { parseConfig } from '../../edge/config/load.js';
import { loadProfile } from '../../edge/meters/profiles.js';
import { generateDemoUsers } from '../../gateway/auth/users.js';
import { hashPassword } from '../../gateway/broker/credentials.js';
import { ANVIL_SECOND_KEY } from '../../gateway/chain/anvil.js';
import { parseGatewayConfig } from '../../gateway/config.js';
import type { NegotiationCounts } from '../../gateway/negotiations/log.js';
import { ParkDirectory } from '../../gateway/park.js';
import { type AgreementRecord, partyName } from '../../gateway/relay/book.js';
import { type Gateway, startGateway } from '../../gateway/run.js';
import { MS_PER_DAY, parseCurve } from '../meters/curve.js';
import { freePort, type MeterServer, startMeterServer } from '../meters/meter-server.js';
import { DEMO_PLANTS, type DemoTiming, edgeConfigYaml } from './demo-park.js';

export interface ParkRunOptions {
  readonly dataDir: string;
  /** Real seconds the simulated day lasts. */
  readonly dayS: number;
  readonly timing: DemoTiming;
  /** Seconds after a window during which late reports are awaited (the markets' grace). */
  readonly graceS: number;
  /** How long to wait for the last settlements after the day, seconds. */
  readonly settleTimeoutS: number;
  readonly logger: Logger;
  /** One line of progress. */
  readonly progress: (line: string) => void;
}

export interface AgreementSummary {
  readonly agreement_id: string;
  readonly utility: string;
  readonly seller: string;
  readonly buyer: string;
  /** In the utility's unit, and tokens per unit. */
  readonly quantity: number;
  readonly unit: string;
  readonly unit_price: number;
  readonly delivered: number;
  /** Tokens, as decimal strings (exact). */
  readonly paid: string;
  readonly refunded: string;
  readonly state: string;
  readonly transactions: {
    readonly open?: string;
    readonly reports: readonly string[];
    readonly settle?: string;
  };
}

export interface ParkSummary {
  readonly ok: boolean;
  readonly stages: readonly {
    readonly stage: string;
    readonly ok: boolean;
    readonly detail: string;
  }[];
  readonly agreements: readonly AgreementSummary[];
  /** Per utility, the negotiations as the agents reported them to the gateway. */
  readonly negotiations: Readonly<Record<UtilityId, NegotiationCounts>>;
  readonly readings: number;
  readonly data_dir: string;
}

const PASSWORD_BYTES = 18;

export async function runPark(options: ParkRunOptions): Promise<ParkSummary> {
  const { progress, logger } = options;
  mkdirSync(options.dataDir, { recursive: true });
  const stops: (() => Promise<void>)[] = [];
  try {
    // Keys and logins for each plant, made fresh for this run.
    const plants = DEMO_PLANTS.map((plant) => ({
      plant,
      trading: new Wallet(Wallet.createRandom().privateKey),
      metering: new Wallet(Wallet.createRandom().privateKey),
      password: randomBytes(PASSWORD_BYTES).toString('base64url'),
    }));
    const credentials = await Promise.all(
      plants.map(
        async (p) =>
          `  ${p.plant.id}: { role: prosumer, password: "${await hashPassword(p.password)}" }`,
      ),
    );
    writeFileSync(
      join(options.dataDir, 'credentials.yaml'),
      `clients:\n${credentials.join('\n')}\n`,
    );
    const plantLines = plants.map(
      (p) =>
        `  ${p.plant.id}: { address: "${p.trading.address}", meters: { ${p.plant.meters.map((m) => `${m.id}: "${p.metering.address}"`).join(', ')} } }`,
    );
    // The dashboard signs in through the embedded provider: the operator and one user per
    // plant, with passwords made for this run and shown once.
    const { users, logins } = await generateDemoUsers(
      new ParkDirectory(
        Object.fromEntries(
          plants.map((p) => [p.plant.id, { address: p.trading.address, meters: {} }]),
        ),
      ),
    );
    const apiPort = await freePort();
    const gatewayYaml = [
      'data_dir: gateway-data',
      'broker: { credentials: credentials.yaml, tcp: "127.0.0.1:0" }',
      `api: { listen: "127.0.0.1:${apiPort}" }`,
      'auth:',
      `  public_url: "http://127.0.0.1:${apiPort}"`,
      '  provider:',
      '    embedded:',
      '      users:',
      ...Object.entries(users).map(
        ([name, user]) =>
          `        ${name}: { ${'role' in user ? 'role: operator, ' : 'plant' in user ? `plant: ${user.plant}, ` : ''}password: "${user.password}" }`,
      ),
      `grace_s: ${options.graceS}`,
      'plants:',
      ...plantLines,
    ].join('\n');
    writeFileSync(join(options.dataDir, 'gateway.yaml'), `${gatewayYaml}\n`);

    progress('starting the gateway: broker, anvil, markets, relay');
    let readings = 0;
    const gateway: Gateway = await startGateway({
      config: parseGatewayConfig(gatewayYaml, 'gateway.yaml'),
      baseDir: options.dataDir,
      logger: logger.child({ part: 'gateway' }),
      pollMs: 100,
      tickMs: 250,
      onReading: () => {
        readings++;
      },
    });
    stops.push(() => gateway.stop());
    await fundPlants(
      gateway,
      plants.map((p) => p.trading),
    );
    progress(
      `gateway up: broker ${gateway.brokerUrl}, chain ${gateway.rpcUrl} (id ${gateway.manifest.chainId})`,
    );
    progress(
      `dashboard: ${gateway.apiUrl}/ (sign in as ${logins.map((l) => `${l.username} / ${l.password}`).join(', or ')})`,
    );

    // The simulated day starts at midnight and runs dayS real seconds.
    const realStart = Date.now();
    const speed = MS_PER_DAY / (options.dayS * 1000);
    const simNow = () => (Date.now() - realStart) * speed;
    const timeOfDay = () => {
      const minutes = Math.floor(simNow() / 60_000) % 1440;
      return `${String(Math.floor(minutes / 60)).padStart(2, '0')}:${String(minutes % 60).padStart(2, '0')}`;
    };
    const servers: MeterServer[] = [];
    stops.push(async () => {
      for (const server of servers) await server.close();
    });
    const ports: Record<string, number> = {};
    for (const { plant } of plants) {
      for (const meter of plant.meters) {
        const server = await startMeterServer({
          profile: loadProfile(meter.profile),
          link: { kind: 'tcp', host: '127.0.0.1', port: 0 },
          curve: parseCurve(meter.curve),
          clock: simNow,
        });
        servers.push(server);
        ports[meter.id] = server.link.kind === 'tcp' ? server.link.port : 0;
      }
    }
    progress(`${servers.length} meters simulated over Modbus TCP; the day lasts ${options.dayS} s`);

    const markets = Object.fromEntries(
      UTILITY_IDS.map((u) => [u, gateway.manifest.markets[u].address]),
    ) as Record<(typeof UTILITY_IDS)[number], string>;
    const agents: EdgeAgent[] = [];
    stops.push(async () => {
      for (const agent of agents) await agent.stop();
    });
    for (const p of plants) {
      const yaml = edgeConfigYaml(p.plant, ports, {
        brokerUrl: gateway.brokerUrl,
        chainId: gateway.manifest.chainId,
        markets,
        dataDir: `${p.plant.id}-data`,
        timing: options.timing,
      });
      writeFileSync(join(options.dataDir, `${p.plant.id}.yaml`), yaml);
      const config = parseConfig(yaml, `${p.plant.id}.yaml`);
      const agent = new EdgeAgent({
        config,
        baseDir: options.dataDir,
        logger: logger.child({ part: p.plant.id }),
        identity: async () => p.trading,
        meterIdentity: async () => p.metering,
        connectMqtt: ({ will }) =>
          mqtt.connect(gateway.brokerUrl, {
            username: p.plant.id,
            password: p.password,
            clientId: `eip-edge-${p.plant.id}`,
            will: { ...will, qos: 1, retain: true },
            reconnectPeriod: 1000,
          }),
      });
      agents.push(agent);
      await agent.start();
    }
    progress(`${agents.length} edge agents running: ${plants.map((p) => p.plant.id).join(', ')}`);

    const follow = followAgreements(gateway, (line) => progress(`day ${timeOfDay()}  ${line}`));
    const dayEnds = realStart + options.dayS * 1000;
    while (Date.now() < dayEnds) await sleep(200, follow.poll);
    progress('the day is over: agents stop trading; waiting for the last settlements');
    for (const agent of agents.splice(0)) await agent.stop();
    const deadline = Date.now() + options.settleTimeoutS * 1000;
    while (Date.now() < deadline && unfinished(gateway) > 0) await sleep(200, follow.poll);
    follow.poll();

    const records = [...gateway.service.book.values()];
    const negotiations = gateway.service.negotiations.counts({});
    return {
      ...judge(records, negotiations, readings, unfinished(gateway)),
      agreements: records.map(summarize),
      negotiations,
      readings,
      data_dir: options.dataDir,
    };
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
  }
}

async function fundPlants(gateway: Gateway, wallets: readonly Wallet[]): Promise<void> {
  // Approvals are the plants' own transactions: gas from anvil's development account, then
  // each plant allows every market to escrow its tokens.
  const dev = new NonceManager(new Wallet(ANVIL_SECOND_KEY, gateway.provider));
  const funded = [];
  for (const wallet of wallets)
    funded.push(await dev.sendTransaction({ to: wallet.address, value: 10n ** 18n }));
  await Promise.all(funded.map((tx) => tx.wait()));
  const approvals = [];
  for (const wallet of wallets) {
    const owner = new NonceManager(wallet.connect(gateway.provider));
    const token = UtilityToken__factory.connect(gateway.manifest.token, owner);
    for (const utility of UTILITY_IDS) {
      approvals.push(
        await token.approve(gateway.manifest.markets[utility].address, 2n ** 256n - 1n),
      );
    }
  }
  await Promise.all(approvals.map((tx) => tx.wait()));
}

function unfinished(gateway: Gateway): number {
  return [...gateway.service.book.values()].filter(
    (r) => r.state !== 'settled' && r.state !== 'failed',
  ).length;
}

function followAgreements(gateway: Gateway, say: (line: string) => void) {
  const seen = new Map<string, string>();
  const poll = () => {
    for (const record of gateway.service.book.values()) {
      const step = stepOf(record);
      if (seen.get(record.id) === step) continue;
      seen.set(record.id, step);
      say(describe(record, step));
    }
  };
  return { poll };
}

function stepOf(record: AgreementRecord): string {
  const reported = ['buyer', 'seller']
    .map((side) => record.reports[side as 'buyer' | 'seller']?.message.report.delivered ?? '-')
    .join('/');
  return `${record.state}:${record.state === 'open' ? reported : ''}`;
}

function describe(record: AgreementRecord, step: string): string {
  const s = summarize(record);
  const head = `${s.utility.padEnd(11)} ${s.seller} -> ${s.buyer}  ${s.quantity} ${s.unit} at ${s.unit_price}/${s.unit}`;
  switch (record.state) {
    case 'accepted':
      return `${head}: agreed, handed to the gateway`;
    case 'submitted':
      return `${head}: submitted ${short(record.openTx)}`;
    case 'open':
      return step.endsWith(':-/-')
        ? `${head}: on chain in block ${record.openBlock}`
        : `${head}: metered ${delivered(record, 'buyer')} (buyer) / ${delivered(record, 'seller')} (seller) ${s.unit}`;
    case 'settled':
      return `${head}: settled, ${s.delivered} ${s.unit} delivered, ${s.paid} tokens paid, ${s.refunded} refunded (${short(record.settleTx)})`;
    case 'failed':
      return `${head}: FAILED: ${record.failure}`;
  }
}

function delivered(record: AgreementRecord, side: 'buyer' | 'seller'): string {
  const report = record.reports[side];
  return report ? String(Number(report.message.report.delivered) / 1000) : '-';
}

const short = (hash: string | undefined) => (hash ? `${hash.slice(0, 10)}…` : '');

function summarize(record: AgreementRecord): AgreementSummary {
  const terms = record.terms;
  const utility = getUtility(record.utility);
  // unitPrice is base units per milli-unit: tokens per unit is that times 1000 over 10^18.
  const unitPrice = Number(formatUnits(BigInt(terms.unitPrice) * 1000n, 18));
  return {
    agreement_id: record.id,
    utility: record.utility,
    seller: partyName(record.seller),
    buyer: partyName(record.buyer),
    quantity: Number(terms.quantity) / 1000,
    unit: utility.unit,
    unit_price: unitPrice,
    delivered: Number(record.settlement?.delivered ?? 0) / 1000,
    paid: formatUnits(record.settlement?.paid ?? 0n, 18),
    refunded: formatUnits(record.settlement?.refunded ?? 0n, 18),
    state: record.state,
    transactions: {
      ...(record.openTx && { open: record.openTx }),
      reports: record.reportTxs,
      ...(record.settleTx && { settle: record.settleTx }),
    },
  };
}

/** Each stage of the day, passed or not, with what shows it. */
function judge(
  records: readonly AgreementRecord[],
  negotiations: Readonly<Record<UtilityId, NegotiationCounts>>,
  readings: number,
  pending: number,
) {
  const reported = Object.values(negotiations);
  const agreed = reported.reduce((n, c) => n + c.agreed, 0);
  const failedNegotiations = reported.reduce((n, c) => n + c.failed, 0);
  const settled = records.filter((r) => r.state === 'settled');
  const failed = records.filter((r) => r.state === 'failed');
  const refunded = settled.filter((r) => BigInt(r.settlement?.refunded ?? 0) > 0n);
  const paid = settled.filter((r) => BigInt(r.settlement?.paid ?? 0) > 0n);
  const stages = [
    { stage: 'meter readings', ok: readings > 0, detail: `${readings} readings at the broker` },
    {
      stage: 'negotiation',
      ok: records.some((r) => r.signatures !== undefined),
      detail: `${records.filter((r) => r.signatures !== undefined).length} agreements signed by both parties, ${records.filter((r) => r.signatures === undefined).length} signed orders to the provider`,
    },
    {
      stage: 'negotiation outcomes',
      ok: agreed > 0,
      detail: `${agreed} agreed, ${failedNegotiations} failed, as the agents reported them`,
    },
    {
      stage: 'agreements on chain',
      ok: records.length > 0 && failed.length === 0,
      detail: failed.length
        ? `${failed.length} refused: ${failed[0]?.failure}`
        : `${records.length - pending} opened`,
    },
    {
      stage: 'metered delivery',
      ok: pending === 0 && settled.length > 0,
      detail: `${settled.length} settled, ${pending} unfinished`,
    },
    { stage: 'payment', ok: paid.length > 0, detail: `${paid.length} sellers paid` },
    {
      stage: 'refund',
      ok: refunded.length > 0,
      detail: `${refunded.length} buyers refunded a shortfall`,
    },
  ];
  return { ok: stages.every((s) => s.ok), stages };
}

function sleep(ms: number, then: () => void): Promise<void> {
  return new Promise((resolve) =>
    setTimeout(() => {
      then();
      resolve();
    }, ms),
  );
}
