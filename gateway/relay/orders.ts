/**
 * Places the plants' signed orders with the main provider (the market's tradeWithProviderFor),
 * so an edge agent trades with the provider without a transaction of its own. An order is
 * checked (the plant's own address, its EIP-712 signature, its deadline), stored, and only then
 * acknowledged, as agreements are. Once mined, the trade is an agreement like any other: it goes
 * into the book with the terms the contract made, and the delivery oracle follows it. The plant
 * hears `confirmed` with those terms (its only way to learn the agreement's id and window); an
 * order the market refuses comes back on its error topic with the contract's reason.
 */
import type { Log } from 'ethers';
import { EipError, isEipError } from '../../core/errors.js';
import {
  AGREEMENT_TYPES,
  assertSignedBy,
  marketDomain,
  structHash,
} from '../../core/messages/eip712.js';
import { agreementStructSchema } from '../../core/messages/schemas.js';
import { type Payload, TOPICS, topic, type WirePayload } from '../../core/messages/topics.js';
import type { UtilityId } from '../../core/utilities.js';
import type { TxOutcome } from '../chain/tx-sender.js';
import type { AgreementRecord } from './book.js';
import { MARKET, type RelayContext } from './relay.js';
import type { JsonStore } from './store.js';

export interface OrderRecord {
  /** The order's EIP-712 struct hash. */
  readonly hash: string;
  readonly utility: UtilityId;
  readonly plant: string;
  readonly message: WirePayload<'providerTrade'>;
  readonly state: 'accepted' | 'submitted' | 'placed' | 'failed';
  readonly tx?: string;
  readonly agreementId?: string;
  readonly failure?: string;
}

export interface OrdersContext extends RelayContext {
  readonly orders: JsonStore<OrderRecord>;
  /** Tells `plant` why its order failed, on its error topic. */
  readonly refuse: (plant: string, payload: Payload<'refusal'>) => void;
}

export interface OrderCounters {
  accepted: number;
  duplicates: number;
  placed: number;
  failed: number;
}

const OPENED_TOPIC = MARKET.getEvent('AgreementOpened')?.topicHash;
const TERM_NAMES = AGREEMENT_TYPES.Agreement.map((field) => field.name);

export class ProviderOrders {
  readonly counters: OrderCounters = { accepted: 0, duplicates: 0, placed: 0, failed: 0 };
  private readonly submitting = new Map<string, Promise<void>>();

  constructor(private readonly ctx: OrdersContext) {}

  /** Checks and stores an order sent by plant `from`; resolves once it is on disk. */
  async accept(from: string, message: Payload<'providerTrade'>): Promise<void> {
    const { order } = message;
    const own = this.ctx.directory.addressOf(from);
    if (own === undefined || own.toLowerCase() !== order.prosumer.toLowerCase()) {
      throw new EipError(
        'UNAUTHORIZED',
        `${from} may order only for its own address ${own ?? '(not enrolled)'}`,
      );
    }
    const domain = marketDomain(
      this.ctx.manifest.chainId,
      this.ctx.manifest.markets[message.utility].address,
    );
    assertSignedBy(domain, 'ProviderOrder', order, message.signature, order.prosumer);
    if (order.deadline < BigInt(Math.floor(this.ctx.now() / 1000))) {
      throw new EipError(
        'INVALID_MESSAGE',
        `order to the provider expired at ${new Date(Number(order.deadline) * 1000).toISOString()}`,
      );
    }
    const hash = structHash('ProviderOrder', order);
    if (this.ctx.orders.get(hash)) {
      this.counters.duplicates++;
      return;
    }
    await this.ctx.orders.put(hash, {
      hash,
      utility: message.utility,
      plant: from,
      message: TOPICS.providerTrade.schema.encode(message),
      state: 'accepted',
    });
    this.counters.accepted++;
    void this.submit(hash);
  }

  /** Submits every accepted order not yet sent (at start, and after the node was down). */
  resume(): void {
    for (const record of this.ctx.orders.values()) {
      if (record.state === 'accepted') void this.submit(record.hash);
    }
  }

  private submit(hash: string): Promise<void> {
    const record = this.ctx.orders.get(hash);
    if (record?.state !== 'accepted' || this.submitting.has(hash)) return Promise.resolve();
    const submission = this.send(record).finally(() => this.submitting.delete(hash));
    this.submitting.set(hash, submission);
    return submission;
  }

  private async send(record: OrderRecord): Promise<void> {
    const message = TOPICS.providerTrade.schema.parse(record.message);
    try {
      const tx = await this.ctx.sender.send({
        key: `order:${record.hash}`,
        to: this.ctx.manifest.markets[record.utility].address,
        data: MARKET.encodeFunctionData('tradeWithProviderFor', [message.order, message.signature]),
      });
      await this.ctx.orders.put(record.hash, { ...record, state: 'submitted', tx });
    } catch (error) {
      // A node that cannot be asked leaves the order accepted, for resume().
      if (isEipError(error, 'CHAIN_REVERTED')) await this.failed(record, error.message);
    }
  }

  /** The sender's report on an `order:` transaction. */
  async outcome(hash: string, outcome: TxOutcome): Promise<void> {
    await this.submitting.get(hash);
    const record = this.ctx.orders.get(hash);
    if (!record || record.state === 'placed' || record.state === 'failed') return;
    if (outcome.kind === 'reverted') {
      await this.failed(record, outcome.reason);
      return;
    }
    const log = outcome.receipt.logs.find((l: Log) => l.topics[0] === OPENED_TOPIC);
    const event = log && MARKET.parseLog(log);
    if (!event) throw new EipError('IO_ERROR', `order ${hash} mined without AgreementOpened`);
    const id = event.args[0] as string;
    const fields = event.args[3] as unknown as Record<string, unknown>;
    const terms = agreementStructSchema.parse(
      Object.fromEntries(TERM_NAMES.map((name) => [name, String(fields[name])])),
    );
    const plantIsSeller =
      terms.seller.toLowerCase() === this.ctx.directory.addressOf(record.plant)?.toLowerCase();
    const agreement: AgreementRecord = {
      id,
      utility: record.utility,
      terms: agreementStructSchema.encode(terms),
      seller: plantIsSeller ? record.plant : null,
      buyer: plantIsSeller ? null : record.plant,
      state: 'open',
      acceptedAtMs: this.ctx.now(),
      openTx: outcome.hash,
      openBlock: outcome.blockNumber,
      reportTxs: [],
      reports: {},
    };
    await this.ctx.book.put(id, agreement);
    await this.ctx.orders.put(hash, { ...record, state: 'placed', agreementId: id });
    this.counters.placed++;
    this.ctx.logger.info(
      { agreement: id, plant: record.plant, utility: record.utility },
      'provider trade open on chain',
    );
    this.ctx.notifier.status(agreement, {
      agreement_id: id,
      utility: record.utility,
      at_ms: this.ctx.now(),
      state: 'confirmed',
      tx_hash: outcome.hash,
      block: outcome.blockNumber,
      agreement: terms,
    });
  }

  private async failed(record: OrderRecord, reason: string): Promise<void> {
    this.counters.failed++;
    await this.ctx.orders.put(record.hash, { ...record, state: 'failed', failure: reason });
    this.ctx.logger.warn(
      { plant: record.plant, reason },
      'the market refused an order to the provider',
    );
    this.ctx.refuse(record.plant, {
      topic: topic('providerTrade', { utility: record.utility, prosumer: record.plant }),
      code: 'CHAIN_REVERTED',
      message: `the market refused the order to the provider: ${reason}`.slice(0, 500),
      at_ms: this.ctx.now(),
    });
  }
}
