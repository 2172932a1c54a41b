/**
 * The delivery oracle: follows each open agreement's signed meter reports, posts them to the
 * market, settles the agreement, and tells both parties what was delivered, paid and refunded.
 *
 * - A report is checked here before it costs gas: the meter is enrolled for the plant that sent
 *   it, its key signed it for this market, the agreement is booked and the plant is a party, and
 *   it was measured inside the provision window. The contract checks all of it again.
 * - Reports are cumulative, so only the newest of each side matters: while one report of an
 *   agreement is on its way to the chain, newer ones replace each other and the newest goes next.
 * - Settlement comes when the payer's meter (the buyer's; the seller's in a sale to the provider)
 *   reports the whole quantity, or once the window and the market's grace period are over.
 */
import type { Log } from 'ethers';
import { EipError, isEipError } from '../../core/errors.js';
import { assertSignedBy, marketDomain } from '../../core/messages/eip712.js';
import { type Payload, TOPICS } from '../../core/messages/topics.js';
import type { TxOutcome } from '../chain/tx-sender.js';
import {
  type AgreementRecord,
  partyName,
  payableDelivered,
  reportOf,
  type Side,
  type StoredReport,
  termsOf,
} from './book.js';
import { MARKET, type RelayContext } from './relay.js';

export interface OracleCounters {
  reports: number;
  /** Not newer than what the side already reported: nothing to post. */
  staleReports: number;
  posted: number;
  settled: number;
}

const SETTLED_TOPIC = MARKET.getEvent('AgreementSettled')?.topicHash;

export class DeliveryOracle {
  readonly counters: OracleCounters = { reports: 0, staleReports: 0, posted: 0, settled: 0 };
  /** Agreements with a report or settlement transaction on its way. */
  private readonly busy = new Set<string>();

  constructor(private readonly ctx: RelayContext) {}

  /** Checks and books a delivery report sent by plant `from` for its meter `meter`. */
  async report(from: string, meter: string, message: Payload<'deliveryReport'>): Promise<void> {
    const { directory, manifest, book } = this.ctx;
    const key = directory.meterKey(from, meter);
    if (key === undefined) {
      throw new EipError('UNAUTHORIZED', `meter ${from}.${meter} is not enrolled in the park`);
    }
    const domain = marketDomain(manifest.chainId, manifest.markets[message.utility].address);
    assertSignedBy(domain, 'DeliveryReport', message.report, message.signature, key);
    const record = book.get(message.report.agreementId);
    if (!record || record.utility !== message.utility) {
      throw new EipError(
        'INVALID_MESSAGE',
        `no ${message.utility} agreement ${message.report.agreementId} is booked`,
      );
    }
    const side: Side | null =
      from === record.buyer ? 'buyer' : from === record.seller ? 'seller' : null;
    if (side === null) {
      throw new EipError('UNAUTHORIZED', `${from} is not a party to agreement ${record.id}`);
    }
    if (record.state === 'settled' || record.state === 'failed') {
      throw new EipError(
        'INVALID_MESSAGE',
        `agreement ${record.id} is ${record.state}: no more reports`,
      );
    }
    const terms = termsOf(record);
    const at = message.report.measuredAt;
    if (at < terms.deliveryStart || at > terms.deliveryEnd) {
      throw new EipError(
        'INVALID_MESSAGE',
        `report measured at ${at} is outside agreement ${record.id}'s window ${terms.deliveryStart}..${terms.deliveryEnd}`,
      );
    }
    this.counters.reports++;
    const held = record.reports[side];
    if (held && BigInt(held.message.report.delivered) >= message.report.delivered) {
      this.counters.staleReports++;
      return;
    }
    const stored: StoredReport = {
      message: TOPICS.deliveryReport.schema.encode(message),
      posted: false,
    };
    await book.put(record.id, { ...record, reports: { ...record.reports, [side]: stored } });
    void this.advance(record.id);
  }

  /** Moves every open agreement on: posts what waits, settles what is due. Called each tick. */
  tick(): void {
    for (const record of this.ctx.book.values()) {
      if (record.state === 'open') void this.advance(record.id);
    }
  }

  /** The next step for one agreement, unless a transaction of its is already on its way. */
  private async advance(id: string): Promise<void> {
    const record = this.ctx.book.get(id);
    if (record?.state !== 'open' || this.busy.has(id)) return;
    const side = (['buyer', 'seller'] as const).find((s) => record.reports[s]?.posted === false);
    let job: { key: string; data: string } | null = null;
    let sent: string | undefined;
    if (side) {
      const stored = record.reports[side] as StoredReport;
      const report = reportOf(stored);
      sent = stored.message.report.delivered.toString();
      // The figure sent is in the key: a newer report may replace this one while it is mined.
      job = {
        key: `report:${id}:${side}:${sent}`,
        data: MARKET.encodeFunctionData('reportDelivery', [
          termsOf(record),
          report.report,
          report.signature,
        ]),
      };
    } else if (this.settleDue(record)) {
      job = { key: `settle:${id}`, data: MARKET.encodeFunctionData('settle', [termsOf(record)]) };
    }
    if (!job) return;
    this.busy.add(id);
    try {
      await this.ctx.sender.send({ ...job, to: this.ctx.manifest.markets[record.utility].address });
    } catch (error) {
      this.busy.delete(id);
      // Only the market's refusal says anything about the report: a node that cannot be asked
      // leaves it stored, for the next tick to send.
      if (isEipError(error, 'CHAIN_REVERTED')) await this.refused(record, side, sent, error);
      // The transaction sender says once when the node is unreachable and when it is back.
      else this.ctx.logger.debug({ agreement: id, err: (error as Error).message }, 'postponed');
    }
  }

  private settleDue(record: AgreementRecord): boolean {
    const terms = termsOf(record);
    const payer: Side = this.providerBuys(record) ? 'seller' : 'buyer';
    const payerReport = record.reports[payer];
    if (payerReport?.posted && BigInt(payerReport.message.report.delivered) >= terms.quantity) {
      return true;
    }
    const grace = BigInt(this.ctx.manifest.markets[record.utility].gracePeriod);
    return BigInt(Math.floor(this.ctx.now() / 1000)) > terms.deliveryEnd + grace;
  }

  /** A sale to the provider: the provider has no meter here, the seller's confirms delivery. */
  private providerBuys(record: AgreementRecord): boolean {
    return (
      record.terms.buyer.toLowerCase() ===
      this.ctx.manifest.markets[record.utility].provider.toLowerCase()
    );
  }

  /** A report or settlement the chain refused at estimation. */
  private async refused(
    record: AgreementRecord,
    side: Side | undefined,
    sent: string | undefined,
    error: Error,
  ): Promise<void> {
    const { logger, book } = this.ctx;
    const reason = error.message;
    if (side && /UtilityMarketMeasuredOutsideWindow/.test(reason)) {
      // The window was checked on arrival: the report is ahead of the chain's clock, which moves
      // with its blocks. It is tried again on the next tick.
      logger.debug({ agreement: record.id, side }, 'report ahead of the chain clock; retried');
    } else if (side && /UtilityMarketStaleReport/.test(reason)) {
      // The chain already has this figure or a higher one (a repost after a restart).
      await book.put(record.id, this.markPosted(record, side, sent));
      void this.advance(record.id);
    } else if (side) {
      logger.warn({ agreement: record.id, side, reason }, 'delivery report refused by the market');
      // Dropped unless a newer report has replaced it meanwhile, which is tried on its own.
      if (this.isStored(record, side, sent)) {
        const { [side]: _dropped, ...rest } = record.reports;
        await book.put(record.id, { ...record, reports: rest });
      }
    } else if (/UtilityMarketAgreementNotOpen/.test(reason)) {
      // Someone else settled it (anyone may): the chain's event says how.
      const log = await this.ctx.findEvent(record, 'AgreementSettled');
      if (log) await this.settled(record, log.transactionHash, log);
    } else if (!/UtilityMarketSettlementTooEarly/.test(reason)) {
      // Too early means the chain's clock is behind ours: the next tick tries again.
      logger.warn({ agreement: record.id, reason }, 'settlement refused by the market');
    }
  }

  /** Whether the report stored for `side` is the one whose figure `sent` went to the chain. */
  private isStored(record: AgreementRecord, side: Side, sent: string | undefined): boolean {
    return record.reports[side]?.message.report.delivered.toString() === sent;
  }

  /** Marks the stored report posted, if it is the one the chain now has. */
  private markPosted(
    record: AgreementRecord,
    side: Side,
    sent: string | undefined,
  ): AgreementRecord {
    const stored = record.reports[side];
    if (!stored || !this.isStored(record, side, sent)) return record;
    return { ...record, reports: { ...record.reports, [side]: { ...stored, posted: true } } };
  }

  /** The sender's report on a `report:` or `settle:` transaction of agreement `id`. */
  async outcome(
    kind: 'report' | 'settle',
    id: string,
    side: Side | undefined,
    sent: string | undefined,
    outcome: TxOutcome,
  ): Promise<void> {
    this.busy.delete(id);
    const record = this.ctx.book.get(id);
    if (record?.state !== 'open') return;
    if (outcome.kind === 'reverted') {
      await this.refused(record, side, sent, new Error(outcome.reason));
      return;
    }
    if (kind === 'report' && side) {
      this.counters.posted++;
      const posted = {
        ...this.markPosted(record, side, sent),
        reportTxs: [...record.reportTxs, outcome.hash],
      };
      await this.ctx.book.put(id, posted);
      this.ctx.notifier.status(posted, {
        agreement_id: id,
        utility: record.utility,
        at_ms: this.ctx.now(),
        state: 'delivering',
        delivered_milli: Number(payableDelivered(posted)),
      });
    } else {
      const log = outcome.receipt.logs.find((l: Log) => l.topics[0] === SETTLED_TOPIC);
      if (!log)
        throw new EipError('IO_ERROR', `settlement of ${id} mined without AgreementSettled`);
      await this.settled(record, outcome.hash, log);
    }
    void this.advance(id);
  }

  private async settled(record: AgreementRecord, hash: string, log: Log): Promise<void> {
    const event = MARKET.parseLog(log);
    if (!event) return;
    const [, delivered, paid, refunded] = event.args as unknown as [string, bigint, bigint, bigint];
    this.counters.settled++;
    const settled: AgreementRecord = {
      ...record,
      state: 'settled',
      settleTx: hash,
      settlement: {
        delivered: delivered.toString(),
        paid: paid.toString(),
        refunded: refunded.toString(),
      },
    };
    await this.ctx.book.put(record.id, settled);
    const at_ms = this.ctx.now();
    this.ctx.logger.info(
      {
        agreement: record.id,
        delivered: delivered.toString(),
        paid: paid.toString(),
        refunded: refunded.toString(),
      },
      'agreement settled',
    );
    this.ctx.notifier.status(settled, {
      agreement_id: record.id,
      utility: record.utility,
      at_ms,
      state: 'settled',
      tx_hash: hash,
      paid,
      refunded,
    });
    this.ctx.notifier.delivered(settled, {
      agreement_id: record.id,
      utility: record.utility,
      seller: partyName(record.seller),
      buyer: partyName(record.buyer),
      contracted_milli: Number(record.terms.quantity),
      delivered_milli: Number(delivered),
      paid,
      refunded,
      transactions: [record.openTx, ...record.reportTxs, hash].filter(
        (t): t is string => t !== undefined,
      ),
      at_ms,
    });
  }
}
