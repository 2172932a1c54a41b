/**
 * The gateway's market service: the MQTT link, the agreement relay, the delivery oracle and the
 * transaction sender they share, on one chain and one broker given ready-made. `eip-gateway run`
 * (cli/run.ts) starts the embedded parts around it; tests start it against their own.
 */
import { join } from 'node:path';
import type { JsonRpcProvider, Log, Wallet } from 'ethers';
import type { MqttClient } from 'mqtt';
import { UtilityToken__factory } from '../contracts/types/index.js';
import type { Logger } from '../core/logger.js';
import type { Payload } from '../core/messages/topics.js';
import type { Manifest } from './chain/manifest.js';
import { type TxRecord, TxSender } from './chain/tx-sender.js';
import { GatewayLink } from './link.js';
import { NegotiationLog } from './negotiations/log.js';
import type { ParkDirectory } from './park.js';
import { type AgreementRecord, partiesOf, type Side } from './relay/book.js';
import { DeliveryOracle } from './relay/oracle.js';
import { type OrderRecord, ProviderOrders } from './relay/orders.js';
import { AgreementRelay, MARKET, type Notifier } from './relay/relay.js';
import { JsonStore } from './relay/store.js';

export interface GatewayServiceOptions {
  /** The relay's book and transaction log live under it. */
  readonly dataDir: string;
  readonly directory: ParkDirectory;
  readonly manifest: Manifest;
  readonly provider: JsonRpcProvider;
  /** Pays the gas of every relayed transaction. */
  readonly wallet: Wallet;
  /** Connected to the broker as an operator. */
  readonly mqtt: MqttClient;
  readonly logger: Logger;
  readonly confirmations?: number;
  readonly replaceAfterMs?: number;
  /** How long negotiation outcomes are kept (the agreement rate is over them); 30 by default. */
  readonly negotiationRetainDays?: number;
  /** How often the chain is asked for receipts. */
  readonly pollMs?: number;
  /** How often due settlements and postponed submissions are looked at. */
  readonly tickMs?: number;
  /** Every reading and balance, for the time-series writer. */
  readonly onReading?: (reading: Payload<'meterReading'>) => void;
  readonly onBalance?: (balance: Payload<'balance'>) => void;
  /** Every agreement status and settled delivery, once each (the parties get their copies). */
  readonly onStatus?: (status: Payload<'agreementStatus'>) => void;
  readonly onDelivered?: (confirmation: Payload<'deliveryConfirmation'>) => void;
  /** Every negotiation outcome an agent reported, once stored. */
  readonly onNegotiation?: (report: Payload<'negotiationOutcome'>) => void;
  readonly now?: () => number;
}

export interface GatewayService {
  readonly relay: AgreementRelay;
  readonly oracle: DeliveryOracle;
  readonly orders: ProviderOrders;
  readonly sender: TxSender;
  readonly link: GatewayLink;
  readonly book: JsonStore<AgreementRecord>;
  /** Every negotiation the agents reported, agreed or not. */
  readonly negotiations: NegotiationLog;
  /** Edge agents by plant id: online or offline, from their retained presence. */
  readonly presence: ReadonlyMap<string, Payload<'agentStatus'>>;
  stop(): Promise<void>;
}

export async function startGatewayService(options: GatewayServiceOptions): Promise<GatewayService> {
  const { logger, manifest, provider } = options;
  const now = options.now ?? Date.now;
  const book = await JsonStore.open<AgreementRecord>(join(options.dataDir, 'agreements'));
  const txs = await JsonStore.open<TxRecord>(join(options.dataDir, 'transactions'));
  const orderBook = await JsonStore.open<OrderRecord>(join(options.dataDir, 'provider-orders'));
  const negotiations = await NegotiationLog.open(
    join(options.dataDir, 'negotiations'),
    options.directory,
    { retainDays: options.negotiationRetainDays ?? 30, now },
  );
  const presence = new Map<string, Payload<'agentStatus'>>();

  const notifier: Notifier = {
    status: (record, payload, only) => {
      // A repeat to one party (a duplicate's answer) is not a new event of the agreement.
      if (!only) options.onStatus?.(payload);
      for (const prosumer of only ? [only] : partiesOf(record)) {
        link.publish('agreementStatus', { prosumer }, payload);
      }
    },
    delivered: (record, payload) => {
      options.onDelivered?.(payload);
      for (const prosumer of partiesOf(record)) {
        link.publish('deliveryConfirmation', { prosumer }, payload);
      }
    },
  };

  // Declared before the sender, which reports each transaction's outcome to its owner.
  let relay: AgreementRelay | undefined;
  let oracle: DeliveryOracle | undefined;
  let orders: ProviderOrders | undefined;
  const sender = new TxSender({
    provider,
    wallet: options.wallet,
    store: txs,
    errors: [MARKET, UtilityToken__factory.createInterface()],
    logger: logger.child({ part: 'tx' }),
    confirmations: options.confirmations ?? 1,
    replaceAfterMs: options.replaceAfterMs ?? 30_000,
    pollMs: options.pollMs ?? 1000,
    now,
    onOutcome: async (key, outcome) => {
      const [kind, id = '', side, sent] = key.split(':');
      if (kind === 'open') await relay?.outcome(id, outcome);
      else if (kind === 'order') await orders?.outcome(id, outcome);
      else if (kind === 'report' || kind === 'settle') {
        await oracle?.outcome(kind, id, side as Side | undefined, sent, outcome);
      }
    },
  });
  const context = {
    book,
    sender,
    directory: options.directory,
    manifest,
    notifier,
    logger: logger.child({ part: 'relay' }),
    now,
    findEvent: async (record: AgreementRecord, event: 'AgreementOpened' | 'AgreementSettled') => {
      const topic = MARKET.getEvent(event)?.topicHash ?? null;
      const logs: Log[] = await provider.getLogs({
        address: manifest.markets[record.utility].address,
        topics: [topic, record.id],
        fromBlock: manifest.block,
      });
      return logs[0] ?? null;
    },
  };
  relay = new AgreementRelay(context);
  oracle = new DeliveryOracle(context);
  orders = new ProviderOrders({
    ...context,
    orders: orderBook,
    refuse: (prosumer, payload) => link.publish('refusal', { prosumer }, payload),
  });
  const link = new GatewayLink(
    options.mqtt,
    {
      agreement: (m) => relay.accept(m.params.prosumer ?? '', m.payload),
      deliveryReport: (m) =>
        oracle.report(m.params.prosumer ?? '', m.params.meter ?? '', m.payload),
      meterReading: (m) => options.onReading?.(m.payload),
      balance: (m) => options.onBalance?.(m.payload),
      providerTrade: (m) => orders.accept(m.params.prosumer ?? '', m.payload),
      negotiationOutcome: async (m) => {
        await negotiations.record(m.params.prosumer ?? '', m.payload);
        options.onNegotiation?.(m.payload);
      },
      agentStatus: (m) => {
        presence.set(m.payload.prosumer, m.payload);
      },
    },
    logger.child({ part: 'mqtt' }),
    now,
  );

  await sender.start();
  await link.start();
  relay.resume();
  orders.resume();
  const tick = setInterval(() => {
    relay.resume();
    orders.resume();
    oracle.tick();
  }, options.tickMs ?? 1000);

  return {
    relay,
    oracle,
    orders,
    sender,
    link,
    book,
    negotiations,
    presence,
    async stop() {
      clearInterval(tick);
      await link.stop();
      await sender.stop();
      await book.close();
      await txs.close();
      await orderBook.close();
      await negotiations.close();
    },
  };
}
