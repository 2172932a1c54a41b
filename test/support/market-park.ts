/**
 * A two-plant park for the gateway's tests and benchmarks, on the real parts: anvil with the
 * deployed markets (plants enrolled, funded, markets approved), the park broker with logins, and
 * helpers to make agreements and delivery reports the way edge agents sign them.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JsonRpcProvider, NonceManager, Wallet } from 'ethers';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { UtilityToken__factory } from '../../contracts/types/index.js';
import { type Logger, silentLogger } from '../../core/logger.js';
import { signDigest } from '../../core/messages/ecdsa.js';
import {
  type Agreement,
  type MarketDomain,
  marketDomain,
  structHash,
  typedDataDigest,
} from '../../core/messages/eip712.js';
import { encodePayload, type Payload, topic } from '../../core/messages/topics.js';
import { type ParkBroker, startParkBroker } from '../../gateway/broker/broker.js';
import { hashPassword, parseCredentials } from '../../gateway/broker/credentials.js';
import { ANVIL_DEV_KEY, type Anvil, startAnvil } from '../../gateway/chain/anvil.js';
import { deployMarkets } from '../../gateway/chain/deploy.js';
import { enrolPlants } from '../../gateway/chain/enrol.js';
import type { Manifest } from '../../gateway/chain/manifest.js';
import { ParkDirectory } from '../../gateway/park.js';
import {
  type GatewayService,
  type GatewayServiceOptions,
  startGatewayService,
} from '../../gateway/service.js';

export const PRICE = 35n * 10n ** 15n;

export interface Plant {
  readonly id: string;
  readonly wallet: Wallet;
  readonly meter: string;
  readonly meterKey: Wallet;
}

export interface MarketPark {
  /** The chain now (a new one after `restartChain`). */
  readonly anvil: Anvil;
  /** Stops the chain node once its state file (written every second) holds the last block. */
  stopChain(): Promise<void>;
  /** Starts it again on the same port from its state file: a node restart, as clients see it. */
  startChain(): Promise<void>;
  readonly provider: JsonRpcProvider;
  readonly manifest: Manifest;
  readonly directory: ParkDirectory;
  readonly broker: ParkBroker;
  readonly domain: MarketDomain;
  readonly seller: Plant;
  readonly buyer: Plant;
  readonly dataDir: string;
  /** A client logged in as `name` (a plant, or `gateway` the operator). */
  connect(name: string, options?: IClientOptions): Promise<MqttClient>;
  startService(options?: Partial<GatewayServiceOptions>): Promise<GatewayService>;
  /** Terms between seller and buyer with fresh nonces, the window starting at chain time. */
  terms(quantity: bigint, windowS: bigint): Promise<Agreement>;
  signed(terms: Agreement, by?: { seller: Wallet; buyer: Wallet }): Payload<'agreement'>;
  sendAgreement(client: MqttClient, from: Plant, payload: Payload<'agreement'>): Promise<unknown>;
  /** A delivery report of `from`'s meter (or of `key`) measured at chain time. */
  report(
    client: MqttClient,
    from: Plant,
    terms: Agreement,
    delivered: bigint,
    seq: bigint,
    key?: Wallet,
  ): Promise<unknown>;
  close(): Promise<void>;
}

const secret = (name: string) => `${name}-secret`;
const plainWallet = () => new Wallet(Wallet.createRandom().privateKey);

export async function startMarketPark(options: { graceS?: number } = {}): Promise<MarketPark> {
  const dataDir = mkdtempSync(join(tmpdir(), 'eip-gateway-'));
  const stateFile = join(dataDir, 'anvil-state.json');
  let anvil = await startAnvil({ stateFile, stateIntervalS: 1 });
  const provider = new JsonRpcProvider(anvil.url, undefined, {
    cacheTimeout: -1,
    pollingInterval: 50,
  });
  const clients: MqttClient[] = [];
  const services: GatewayService[] = [];
  let broker: ParkBroker | undefined;
  const close = async () => {
    for (const service of services) await service.stop();
    await Promise.all(clients.map((c) => c.endAsync(true)));
    await broker?.close();
    provider.destroy();
    await anvil.stop();
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    const plant = (id: string, meter: string): Plant => ({
      id,
      wallet: plainWallet(),
      meter,
      meterKey: plainWallet(),
    });
    const seller = plant('plant-a', 'gas-out');
    const buyer = plant('plant-b', 'gas-in');
    const operator = new NonceManager(new Wallet(ANVIL_DEV_KEY, provider));
    const manifest = await deployMarkets({ signer: operator, gracePeriod: options.graceS ?? 2 });
    const directory = new ParkDirectory(
      Object.fromEntries(
        [seller, buyer].map((p) => [
          p.id,
          { address: p.wallet.address, meters: { [p.meter]: p.meterKey.address } },
        ]),
      ),
    );
    await enrolPlants({ signer: operator, manifest, directory });
    const token = UtilityToken__factory.connect(manifest.token, operator);
    for (const { wallet } of [seller, buyer]) {
      await (await operator.sendTransaction({ to: wallet.address, value: 10n ** 18n })).wait();
      await (await token.mint(wallet.address, 10n ** 27n)).wait();
      const own = UtilityToken__factory.connect(manifest.token, wallet.connect(provider));
      await (await own.approve(manifest.markets.biogas.address, 2n ** 256n - 1n)).wait();
    }
    const domain = marketDomain(manifest.chainId, manifest.markets.biogas.address);
    const names = ['gateway', seller.id, buyer.id];
    const hashes = await Promise.all(names.map((n) => hashPassword(secret(n))));
    broker = await startParkBroker({
      credentials: parseCredentials(
        `clients:\n${names.map((n, i) => `  ${n}: { role: ${n === 'gateway' ? 'operator' : 'prosumer'}, password: "${hashes[i]}" }`).join('\n')}\n`,
        'credentials.yaml',
      ),
      tcp: { host: '127.0.0.1', port: 0 },
    });
    const url = broker.urls.tcp ?? '';
    const connect = async (name: string, options: IClientOptions = {}) => {
      const client = await mqtt.connectAsync(url, {
        username: name,
        password: secret(name),
        reconnectPeriod: 0,
        ...options,
      });
      clients.push(client);
      return client;
    };
    let nonce = 0n;
    const chainNow = async () => BigInt((await provider.getBlock('latest'))?.timestamp ?? 0);
    const publish = (client: MqttClient, t: string, payload: string) =>
      client.publishAsync(t, payload, { qos: 1 });
    return {
      get anvil() {
        return anvil;
      },
      async stopChain() {
        await new Promise((resolve) => setTimeout(resolve, 1500));
        await anvil.stop();
      },
      async startChain() {
        anvil = await startAnvil({
          port: Number(new URL(anvil.url).port),
          stateFile,
          stateIntervalS: 1,
        });
      },
      provider,
      manifest,
      directory,
      broker,
      domain,
      seller,
      buyer,
      dataDir,
      connect,
      async startService(overrides = {}) {
        const service = await startGatewayService({
          dataDir,
          directory,
          manifest,
          provider,
          wallet: new Wallet(ANVIL_DEV_KEY, provider),
          mqtt: await connect('gateway'),
          logger: silentLogger as Logger,
          pollMs: 50,
          tickMs: 100,
          ...overrides,
        });
        services.push(service);
        return service;
      },
      async terms(quantity, windowS) {
        const start = await chainNow();
        nonce++;
        return {
          negotiationId: `0x${nonce.toString(16).padStart(64, '0')}`,
          seller: seller.wallet.address,
          buyer: buyer.wallet.address,
          quantity,
          unitPrice: PRICE,
          deliveryStart: start,
          deliveryEnd: start + windowS,
          transcriptHash: `0x${'ab'.repeat(32)}`,
          sellerNonce: nonce,
          sellerDeadline: start + 600n,
          buyerNonce: nonce,
          buyerDeadline: start + 600n,
        };
      },
      signed(terms, by = { seller: seller.wallet, buyer: buyer.wallet }) {
        const digest = typedDataDigest(domain, 'Agreement', terms);
        return {
          utility: 'biogas',
          agreement: terms,
          seller_signature: signDigest(by.seller, digest),
          buyer_signature: signDigest(by.buyer, digest),
        };
      },
      sendAgreement: (client, from, payload) =>
        publish(
          client,
          topic('agreement', { prosumer: from.id }),
          encodePayload('agreement', payload),
        ),
      async report(client, from, terms, delivered, seq, key = from.meterKey) {
        const value = {
          agreementId: structHash('Agreement', terms),
          delivered,
          measuredAt: await chainNow(),
          seq,
        };
        const payload: Payload<'deliveryReport'> = {
          utility: 'biogas',
          meter: from.meter,
          report: value,
          signature: signDigest(key, typedDataDigest(domain, 'DeliveryReport', value)),
        };
        return publish(
          client,
          topic('deliveryReport', { prosumer: from.id, meter: from.meter }),
          encodePayload('deliveryReport', payload),
        );
      },
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}
