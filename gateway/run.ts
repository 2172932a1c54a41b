/**
 * `eip-gateway run`: the whole gateway from its config. Each part is the configured real one or
 * the embedded default: the park broker (aedes) or an external one by URL; a chain by JSON-RPC
 * or anvil started here with its state on disk, the markets deployed once and demo tokens
 * minted; InfluxDB or none. Then the market service (relay, oracle) on top.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { JsonRpcProvider, Network, NonceManager, Wallet } from 'ethers';
import { InfluxDB } from 'influx';
import mqtt, { type MqttClient } from 'mqtt';
import { UtilityToken__factory } from '../contracts/types/index.js';
import { parseHostPort } from '../core/cli.js';
import { EipError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { UtilityId } from '../core/utilities.js';
import { parkNames } from './api/names.js';
import { startApiServer } from './api/server.js';
import { startAuth } from './auth/auth.js';
import { type ParkBroker, startParkBroker } from './broker/broker.js';
import { loadCredentials, withInternalOperator } from './broker/credentials.js';
import { ANVIL_DEV_KEY, type Anvil, startAnvil } from './chain/anvil.js';
import { deployMarkets } from './chain/deploy.js';
import { enrolPlants } from './chain/enrol.js';
import { type Manifest, readManifest, writeManifest } from './chain/manifest.js';
import type { GatewayConfig } from './config.js';
import { dashboardHandler } from './dashboard/serve.js';
import { forecastUtility } from './forecast/history.js';
import { Indexer } from './indexer/indexer.js';
import { holdMessages } from './link.js';
import type { NegotiationLog } from './negotiations/log.js';
import { ParkDirectory } from './park.js';
import { type GatewayService, type GatewayServiceOptions, startGatewayService } from './service.js';
import { InfluxWriter } from './timeseries/writer.js';

/** Tokens each plant gets on the embedded chain, so the demo park can trade at once. */
export const DEMO_TOKENS = 1_000_000n * 10n ** 18n;
const INTERNAL_USER = 'eip-gateway';

export interface Gateway {
  readonly manifest: Manifest;
  readonly provider: JsonRpcProvider;
  /** Where edge agents connect. */
  readonly brokerUrl: string;
  readonly rpcUrl: string;
  /** The HTTP API's address, when it runs. */
  readonly apiUrl: string | undefined;
  readonly service: GatewayService;
  stop(): Promise<void>;
}

export interface RunOptions {
  readonly config: GatewayConfig;
  /** Relative paths in the config start here. */
  readonly baseDir: string;
  readonly logger: Logger;
  readonly env?: NodeJS.ProcessEnv;
  /** Chain polling, ms; the embedded chain mines at once, so the default is brisk there. */
  readonly pollMs?: number;
  readonly tickMs?: number;
  /** Every meter reading the gateway receives. */
  readonly onReading?: GatewayServiceOptions['onReading'];
}

export async function startGateway(options: RunOptions): Promise<Gateway> {
  const { config, logger } = options;
  const env = options.env ?? process.env;
  const dataDir = resolve(options.baseDir, config.data_dir);
  mkdirSync(dataDir, { recursive: true });
  const cleanups: (() => Promise<void>)[] = [];
  const stop = async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  };
  try {
    const chain = await openChain(options, dataDir, env);
    cleanups.push(chain.close);
    const directory = new ParkDirectory(config.plants);
    const operator = new NonceManager(chain.wallet);
    const enrolled = await enrolPlants({ signer: operator, manifest: chain.manifest, directory });
    logger.info(
      { plants: Object.keys(config.plants).length, registrations: enrolled },
      'plants enrolled',
    );
    if (chain.embedded) await mintDemoTokens(operator, chain.manifest, directory, logger);

    const mqttLink = await openBroker(options, env);
    cleanups.push(mqttLink.close);
    const series = await openTimeSeries(config, dataDir, logger);
    if (series) cleanups.push(() => series.close());
    const service = await startGatewayService({
      dataDir,
      directory,
      manifest: chain.manifest,
      provider: chain.provider,
      wallet: chain.wallet,
      mqtt: mqttLink.client,
      logger,
      confirmations: config.confirmations,
      replaceAfterMs: config.replace_after_s * 1000,
      negotiationRetainDays: config.negotiation_retain_days,
      pollMs: options.pollMs ?? (chain.embedded ? 200 : 1000),
      tickMs: options.tickMs ?? 1000,
      onReading: (reading) => {
        series?.writeReading(reading);
        options.onReading?.(reading);
      },
      ...(series && {
        onBalance: (balance) => series.writeBalance(balance),
        onStatus: (status) => series.writeAgreementStatus(status),
        onDelivered: (confirmation) => series.writeDeliveryConfirmation(confirmation),
        onNegotiation: (report) => series.writeNegotiation(report),
      }),
    });
    cleanups.push(() => service.stop());
    const api = await startApi(config, chain, directory, service.negotiations, logger, env);
    if (api) cleanups.push(api.close);
    logger.info(
      {
        broker: mqttLink.url,
        chain: chain.rpcUrl,
        chain_id: chain.manifest.chainId,
        ...(api && { api: api.url }),
      },
      'gateway running',
    );
    return {
      manifest: chain.manifest,
      provider: chain.provider,
      brokerUrl: mqttLink.url,
      rpcUrl: chain.rpcUrl,
      apiUrl: api?.url,
      service,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

interface Chain {
  readonly provider: JsonRpcProvider;
  readonly wallet: Wallet;
  readonly manifest: Manifest;
  readonly rpcUrl: string;
  readonly embedded: boolean;
  close(): Promise<void>;
}

async function openChain(
  options: RunOptions,
  dataDir: string,
  env: NodeJS.ProcessEnv,
): Promise<Chain> {
  const { config, logger } = options;
  if (config.chain) {
    const key = env[config.chain.key_env];
    if (!key || !/^0x[0-9a-fA-F]{64}$/.test(key)) {
      throw new EipError(
        'INVALID_ARGUMENT',
        `$${config.chain.key_env} must hold the operator's 0x-prefixed private key`,
      );
    }
    const manifest = readManifest(resolve(options.baseDir, config.chain.manifest));
    // A static network: ethers would otherwise keep re-detecting (and printing) while the node
    // is down; the relay and the indexer say so in the log themselves.
    const provider = new JsonRpcProvider(config.chain.rpc, undefined, {
      cacheTimeout: -1,
      staticNetwork: Network.from(manifest.chainId),
    });
    return {
      provider,
      wallet: new Wallet(key, provider),
      manifest,
      rpcUrl: config.chain.rpc,
      embedded: false,
      close: async () => provider.destroy(),
    };
  }
  const chainDir = join(dataDir, 'chain');
  mkdirSync(chainDir, { recursive: true });
  const stateFile = join(chainDir, 'anvil-state.json');
  // A block a second, as a park's proof-of-authority chain would make: the contracts' clock
  // (block.timestamp) moves with blocks, and with a block only per transaction a quiet chain's
  // clock would stop, and with it every settlement falling due.
  const anvil: Anvil = await startAnvil({ stateFile, stateIntervalS: 1, blockTime: 1 });
  const provider = new JsonRpcProvider(anvil.url, undefined, {
    cacheTimeout: -1,
    pollingInterval: 100,
    staticNetwork: Network.from(anvil.chainId),
  });
  const close = async () => {
    provider.destroy();
    await anvil.stop();
  };
  try {
    logger.info({ rpc: anvil.url, state: stateFile }, 'no chain configured: started anvil');
    const wallet = new Wallet(ANVIL_DEV_KEY, provider);
    const manifestFile = join(chainDir, 'deployment.json');
    let manifest = existsSync(manifestFile) ? readManifest(manifestFile) : undefined;
    if (manifest && (await provider.getCode(manifest.token)) === '0x') {
      logger.warn(
        { manifest: manifestFile },
        'the chain state lost the deployment: deploying again',
      );
      manifest = undefined;
    }
    if (!manifest) {
      manifest = await deployMarkets({
        signer: new NonceManager(wallet),
        gracePeriod: config.grace_s,
      });
      writeManifest(manifestFile, manifest);
      logger.info({ token: manifest.token, manifest: manifestFile }, 'markets deployed');
    }
    return { provider, wallet, manifest, rpcUrl: anvil.url, embedded: true, close };
  } catch (error) {
    await close();
    throw error;
  }
}

async function mintDemoTokens(
  operator: NonceManager,
  manifest: Manifest,
  directory: ParkDirectory,
  logger: Logger,
): Promise<void> {
  const token = UtilityToken__factory.connect(manifest.token, operator);
  const minted = [];
  for (const plant of Object.values(directory.plants)) {
    if ((await token.balanceOf(plant.address)) === 0n) {
      minted.push(await token.mint(plant.address, DEMO_TOKENS));
    }
  }
  // On the embedded chain the operator is also the main provider: it escrows what it buys
  // from plants, so it needs tokens and each market's allowance too.
  const provider = await operator.getAddress();
  if ((await token.balanceOf(provider)) === 0n)
    minted.push(await token.mint(provider, DEMO_TOKENS));
  for (const { address } of Object.values(manifest.markets)) {
    if ((await token.allowance(provider, address)) === 0n) {
      minted.push(await token.approve(address, 2n ** 256n - 1n));
    }
  }
  await Promise.all(minted.map((tx) => tx.wait()));
  if (minted.length)
    logger.info(
      { plants: Object.keys(directory.plants).length, tokens: '1000000' },
      'demo tokens minted',
    );
}

/**
 * The time-series writer, or none (said at start). Points wait in a spool on disk while
 * InfluxDB is down, so a gateway that starts before its database loses nothing.
 */
async function openTimeSeries(config: GatewayConfig, dataDir: string, logger: Logger) {
  if (!config.influx) {
    logger.warn(
      'no InfluxDB configured (influx: in the config): readings are not kept as time series',
    );
    return undefined;
  }
  const writer = await InfluxWriter.open({
    url: config.influx.url,
    database: config.influx.database,
    spoolDir: join(dataDir, 'influx-spool'),
    logger: logger.child({ part: 'influx' }),
  });
  logger.info({ url: config.influx.url, database: config.influx.database }, 'writing time series');
  return writer;
}

/** The indexer of contract events and the HTTP API that serves it. */
async function startApi(
  config: GatewayConfig,
  chain: Chain,
  directory: ParkDirectory,
  negotiations: NegotiationLog,
  logger: Logger,
  env: NodeJS.ProcessEnv,
) {
  if (config.api === false) return undefined;
  const indexer = new Indexer({
    provider: chain.provider,
    manifest: chain.manifest,
    logger: logger.child({ part: 'indexer' }),
    confirmations: config.confirmations - 1,
    pollMs: chain.embedded ? 250 : 1000,
  });
  await indexer.start();
  try {
    // Without auth the API is open: startApiServer says so loudly at start.
    const auth =
      config.auth === undefined
        ? null
        : await startAuth({
            config: config.auth,
            directory,
            logger: logger.child({ part: 'auth' }),
            env,
          });
    const influx = config.influx;
    const series = influx && new InfluxDB(`${influx.url.replace(/\/$/, '')}/${influx.database}`);
    const server = await startApiServer({
      indexer,
      auth,
      nameOf: parkNames(directory, () => indexer.model.utilities()),
      negotiations,
      dashboard: dashboardHandler(),
      ...(series && {
        forecast: (id: UtilityId) => forecastUtility(series, id, Date.now()),
      }),
      listen: parseHostPort(config.api.listen, 'api.listen', { listener: true }),
      logger: logger.child({ part: 'api' }),
    });
    return {
      url: server.url,
      close: async () => {
        await server.close();
        await indexer.stop();
      },
    };
  } catch (error) {
    await indexer.stop();
    throw error;
  }
}

interface BrokerLink {
  readonly client: MqttClient;
  readonly url: string;
  close(): Promise<void>;
}

async function openBroker(options: RunOptions, env: NodeJS.ProcessEnv): Promise<BrokerLink> {
  const { config, logger } = options;
  let broker: ParkBroker | undefined;
  let url: string;
  let login: { username: string; password?: string | Buffer };
  if ('credentials' in config.broker) {
    const secret = randomBytes(32);
    const b = config.broker;
    const file = (path: string) => resolve(options.baseDir, path);
    broker = await startParkBroker({
      credentials: withInternalOperator(
        loadCredentials(file(b.credentials)),
        INTERNAL_USER,
        secret,
      ),
      tcp: parseHostPort(b.tcp, 'broker.tcp', { listener: true }),
      ...(b.ws && { ws: parseHostPort(b.ws, 'broker.ws', { listener: true }) }),
      ...(b.tls && {
        tls: {
          ...parseHostPort(b.tls.listen, 'broker.tls.listen', { listener: true }),
          cert: file(b.tls.cert),
          key: file(b.tls.key),
          ...(b.tls.ca && { ca: file(b.tls.ca) }),
        },
      }),
      logger: logger.child({ part: 'broker' }),
    });
    logger.info(broker.urls, 'broker listening');
    url = broker.urls.tcp ?? '';
    login = { username: INTERNAL_USER, password: secret };
  } else {
    url = config.broker.url;
    const password = env[config.broker.password_env];
    login = { username: config.broker.username, ...(password && { password }) };
  }
  const client = mqtt.connect(url, {
    ...login,
    clientId: 'eip-gateway',
    // A persistent session: QoS 1 messages published while the gateway reconnects wait for it.
    clean: false,
    reconnectPeriod: 2000,
    connectTimeout: 10_000,
  });
  holdMessages(client);
  try {
    await new Promise<void>((done, fail) => {
      client.once('connect', () => done());
      client.once('error', fail);
    });
  } catch (error) {
    await client.endAsync(true);
    await broker?.close();
    throw new EipError(
      'IO_ERROR',
      `the gateway cannot log in to the broker at ${url}: ${(error as Error).message}`,
    );
  }
  client.on('error', (error) => logger.warn({ err: error.message }, 'MQTT connection problem'));
  return {
    client,
    url,
    close: async () => {
      await client.endAsync();
      await broker?.close();
    },
  };
}
