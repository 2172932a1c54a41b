/**
 * The gateway's market service against the real parts: anvil with the deployed markets, the park
 * broker with logins and the ACL, and plants as MQTT.js clients that publish what their edge
 * agents would. Agreements are relayed, statuses reach both parties, delivery reports are posted,
 * and settlement pays and refunds; forged and replayed messages are refused and answered.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type HDNodeWallet, JsonRpcProvider, NonceManager, Wallet } from 'ethers';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UtilityToken__factory } from '../../contracts/types/index.js';
import { silentLogger } from '../../core/logger.js';
import { signDigest } from '../../core/messages/ecdsa.js';
import {
  type Agreement,
  type MarketDomain,
  marketDomain,
  structHash,
  typedDataDigest,
} from '../../core/messages/eip712.js';
import {
  decodeMessage,
  encodePayload,
  type Payload,
  subscription,
  topic,
} from '../../core/messages/topics.js';
import { type ParkBroker, startParkBroker } from '../../gateway/broker/broker.js';
import { hashPassword, parseCredentials } from '../../gateway/broker/credentials.js';
import { ANVIL_DEV_KEY, type Anvil, startAnvil } from '../../gateway/chain/anvil.js';
import { deployMarkets } from '../../gateway/chain/deploy.js';
import { enrolPlants } from '../../gateway/chain/enrol.js';
import type { Manifest } from '../../gateway/chain/manifest.js';
import { ParkDirectory } from '../../gateway/park.js';
import { type GatewayService, startGatewayService } from '../../gateway/service.js';
import { until } from '../support/until.js';

const GRACE_S = 2;
const seller = Wallet.createRandom();
const buyer = Wallet.createRandom();
const sellerMeter = Wallet.createRandom();
const buyerMeter = Wallet.createRandom();

let anvil: Anvil;
let provider: JsonRpcProvider;
let manifest: Manifest;
let broker: ParkBroker;
let service: GatewayService;
let domain: MarketDomain;
let dataDir: string;
const clients: MqttClient[] = [];
const inbox: { prosumer: string; message: ReturnType<typeof decodeMessage> }[] = [];
let plantA: MqttClient;
let plantB: MqttClient;

async function connect(username: string, password: string): Promise<MqttClient> {
  const client = mqtt.connect(broker.urls.tcp ?? '', { username, password, reconnectPeriod: 0 });
  clients.push(client);
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
  });
  return client;
}

async function plant(name: string): Promise<MqttClient> {
  const client = await connect(name, `${name}-secret`);
  client.on('message', (t, payload) =>
    inbox.push({ prosumer: name, message: decodeMessage(t, payload) }),
  );
  await client.subscribeAsync(
    ['agreementStatus', 'deliveryConfirmation', 'refusal'].map((n) =>
      subscription(n as 'refusal', { prosumer: name }),
    ),
    { qos: 1 },
  );
  return client;
}

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'eip-gateway-'));
  anvil = await startAnvil();
  provider = new JsonRpcProvider(anvil.url, undefined, { cacheTimeout: -1, pollingInterval: 50 });
  const operator = new NonceManager(new Wallet(ANVIL_DEV_KEY, provider));
  manifest = await deployMarkets({ signer: operator, gracePeriod: GRACE_S });
  const directory = new ParkDirectory({
    'plant-a': { address: seller.address, meters: { 'gas-out': sellerMeter.address } },
    'plant-b': { address: buyer.address, meters: { 'gas-in': buyerMeter.address } },
  });
  await enrolPlants({ signer: operator, manifest, directory });
  const token = UtilityToken__factory.connect(manifest.token, operator);
  for (const wallet of [seller, buyer]) {
    await (await operator.sendTransaction({ to: wallet.address, value: 10n ** 18n })).wait();
    await (await token.mint(wallet.address, 10n ** 24n)).wait();
    const own = UtilityToken__factory.connect(manifest.token, wallet.connect(provider));
    await (await own.approve(manifest.markets.biogas.address, 2n ** 256n - 1n)).wait();
  }
  domain = marketDomain(manifest.chainId, manifest.markets.biogas.address);

  const hashes = await Promise.all(
    ['gateway', 'plant-a', 'plant-b'].map((n) => hashPassword(`${n}-secret`)),
  );
  broker = await startParkBroker({
    credentials: parseCredentials(
      `clients:
  gateway: { role: operator, password: "${hashes[0]}" }
  plant-a: { role: prosumer, password: "${hashes[1]}" }
  plant-b: { role: prosumer, password: "${hashes[2]}" }
`,
      'credentials.yaml',
    ),
    tcp: { host: '127.0.0.1', port: 0 },
  });
  service = await startGatewayService({
    dataDir,
    directory,
    manifest,
    provider,
    wallet: new Wallet(ANVIL_DEV_KEY, provider),
    mqtt: await connect('gateway', 'gateway-secret'),
    logger: silentLogger,
    pollMs: 50,
    tickMs: 100,
  });
  plantA = await plant('plant-a');
  plantB = await plant('plant-b');
}, 60_000);

afterAll(async () => {
  await service?.stop();
  await Promise.all(clients.map((c) => c.endAsync(true)));
  await broker?.close();
  provider?.destroy();
  await anvil?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

let nonce = 0n;
async function terms(quantity: bigint, windowS: bigint): Promise<Agreement> {
  const block = await provider.getBlock('latest');
  const start = BigInt(block?.timestamp ?? 0);
  nonce++;
  return {
    negotiationId: `0x${nonce.toString(16).padStart(64, '0')}`,
    seller: seller.address,
    buyer: buyer.address,
    quantity,
    unitPrice: 35n * 10n ** 15n,
    deliveryStart: start,
    deliveryEnd: start + windowS,
    transcriptHash: `0x${'ab'.repeat(32)}`,
    sellerNonce: nonce,
    sellerDeadline: start + 600n,
    buyerNonce: nonce,
    buyerDeadline: start + 600n,
  };
}

function signed(agreement: Agreement, by = { seller, buyer }): Payload<'agreement'> {
  const digest = typedDataDigest(domain, 'Agreement', agreement);
  return {
    utility: 'biogas',
    agreement,
    seller_signature: signDigest(by.seller, digest),
    buyer_signature: signDigest(by.buyer, digest),
  };
}

function publish(client: MqttClient, t: string, payload: string) {
  return client.publishAsync(t, payload, { qos: 1 });
}

function sendAgreement(client: MqttClient, from: string, payload: Payload<'agreement'>) {
  return publish(
    client,
    topic('agreement', { prosumer: from }),
    encodePayload('agreement', payload),
  );
}

async function report(
  client: MqttClient,
  from: string,
  meterName: string,
  key: HDNodeWallet,
  agreement: Agreement,
  delivered: bigint,
  seq: bigint,
) {
  const block = await provider.getBlock('latest');
  const value = {
    agreementId: structHash('Agreement', agreement),
    delivered,
    measuredAt: BigInt(block?.timestamp ?? 0),
    seq,
  };
  const payload: Payload<'deliveryReport'> = {
    utility: 'biogas',
    meter: meterName,
    report: value,
    signature: signDigest(key, typedDataDigest(domain, 'DeliveryReport', value)),
  };
  await publish(
    client,
    topic('deliveryReport', { prosumer: from, meter: meterName }),
    encodePayload('deliveryReport', payload),
  );
}

const statuses = (prosumer: string, id: string) =>
  inbox
    .filter(
      (m) =>
        m.prosumer === prosumer &&
        m.message.name === 'agreementStatus' &&
        m.message.payload.agreement_id === id,
    )
    .map((m) => m.message.payload as Payload<'agreementStatus'>);

describe('the gateway service', () => {
  it('relays an agreement once, tells both parties, and settles a partial delivery with a refund', async () => {
    const agreement = await terms(100_000n, 3n);
    const id = structHash('Agreement', agreement);
    await sendAgreement(plantB, 'plant-b', signed(agreement));
    await until('confirmed at both parties', () =>
      ['plant-a', 'plant-b'].every((p) => statuses(p, id).some((s) => s.state === 'confirmed')),
    );
    // The same agreement again, from the other party: recognised, not submitted again.
    const sent = service.sender.counters.sent;
    await sendAgreement(plantA, 'plant-a', signed(agreement));
    await until('the duplicate counted', () => service.relay.counters.duplicates === 1);
    expect(service.sender.counters.sent).toBe(sent);

    await report(plantB, 'plant-b', 'gas-in', buyerMeter, agreement, 60_000n, 1n);
    await report(plantA, 'plant-a', 'gas-out', sellerMeter, agreement, 70_000n, 1n);
    await until(
      'settled',
      () => statuses('plant-a', id).some((s) => s.state === 'settled'),
      20_000,
    );
    const confirmation = inbox.find(
      (m) => m.prosumer === 'plant-b' && m.message.name === 'deliveryConfirmation',
    )?.message.payload as Payload<'deliveryConfirmation'>;
    const price = 35n * 10n ** 15n;
    expect(confirmation).toMatchObject({
      agreement_id: id,
      seller: 'plant-a',
      buyer: 'plant-b',
      contracted_milli: 100_000,
      delivered_milli: 60_000, // the lower of the two meters
      paid: 60_000n * price,
      refunded: 40_000n * price,
    });
    // Opening, two reports, settlement.
    expect(confirmation.transactions).toHaveLength(4);
    // The duplicate was answered to its sender alone.
    expect(statuses('plant-a', id).filter((s) => s.state === 'confirmed')).toHaveLength(2);
    expect(statuses('plant-b', id).map((s) => s.state)).toEqual([
      'submitted',
      'confirmed',
      'delivering',
      'delivering',
      'settled',
    ]);
  }, 30_000);

  it('settles at once when the buyer meter reports the whole quantity', async () => {
    const agreement = await terms(5_000n, 3600n);
    const id = structHash('Agreement', agreement);
    await sendAgreement(plantA, 'plant-a', signed(agreement));
    await until('open', () => service.book.get(id)?.state === 'open');
    await report(plantB, 'plant-b', 'gas-in', buyerMeter, agreement, 5_000n, 1n);
    await until('settled', () => service.book.get(id)?.state === 'settled');
    expect(service.book.get(id)?.settlement).toEqual({
      delivered: '5000',
      paid: (5_000n * 35n * 10n ** 15n).toString(),
      refunded: '0',
    });
  });

  it('refuses forged agreements and reports, and answers on the sender error topic', async () => {
    const agreement = await terms(1_000n, 60n);
    const forged = signed(agreement, { seller: Wallet.createRandom(), buyer });
    await sendAgreement(plantB, 'plant-b', forged);
    // A report of a meter key that is not the plant's.
    await report(plantB, 'plant-b', 'gas-in', sellerMeter, agreement, 1n, 1n);
    // Not JSON at all.
    await publish(plantB, topic('agreement', { prosumer: 'plant-b' }), '{not json');
    await until(
      'three refusals',
      () =>
        inbox.filter((m) => m.prosumer === 'plant-b' && m.message.name === 'refusal').length >= 3,
    );
    const codes = inbox
      .filter((m) => m.prosumer === 'plant-b' && m.message.name === 'refusal')
      .map((m) => (m.message.payload as Payload<'refusal'>).code);
    expect(codes).toEqual(['INVALID_SIGNATURE', 'INVALID_SIGNATURE', 'INVALID_MESSAGE']);
    expect(service.link.counters.refused).toMatchObject({
      INVALID_SIGNATURE: 2,
      INVALID_MESSAGE: 1,
    });
    expect(service.book.get(structHash('Agreement', agreement))).toBeUndefined();
  });

  it('reports an agreement the market refuses as failed, with the reason', async () => {
    const agreement = await terms(1_000n, 60n);
    // Spent nonces: the first test's agreement used nonce 1 of both parties.
    const spent = { ...agreement, sellerNonce: 1n, buyerNonce: 999n };
    const id = structHash('Agreement', spent);
    await sendAgreement(plantA, 'plant-a', signed(spent));
    await until('failed', () => statuses('plant-a', id).some((s) => s.state === 'failed'));
    const failed = statuses('plant-b', id).find((s) => s.state === 'failed');
    expect(failed).toMatchObject({ reason: expect.stringMatching(/UtilityMarketNonceUsed/) });
    expect(service.relay.counters.failed).toBe(1);
  });
});
