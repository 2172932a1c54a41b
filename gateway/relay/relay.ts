/**
 * Relays agreements from the edges to their utility's market contract. An agreement is checked
 * (both parties enrolled, the sender one of them, both EIP-712 signatures, deadlines), stored in
 * the book, and only then acknowledged; it is then opened on chain through the transaction
 * sender, and both parties hear each step on their `agreements` topic.
 *
 * The same agreement arriving again (an edge re-sending after a lost acknowledgement, or both
 * parties sending it) is recognised by its id, the EIP-712 struct hash, and answered with where
 * it stands: it is never submitted or counted twice. One opened by someone else first (anyone
 * may relay) is found on chain and followed, not reported as failed.
 */
import type { Log } from 'ethers';
import { UtilityMarket__factory } from '../../contracts/types/index.js';
import { EipError, isEipError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import { assertSignedBy, marketDomain, structHash } from '../../core/messages/eip712.js';
import { agreementStructSchema } from '../../core/messages/schemas.js';
import type { Payload } from '../../core/messages/topics.js';
import type { Manifest } from '../chain/manifest.js';
import type { TxOutcome, TxSender } from '../chain/tx-sender.js';
import type { ParkDirectory } from '../park.js';
import { type AgreementBook, type AgreementRecord, minBig, termsOf } from './book.js';

export const MARKET = UtilityMarket__factory.createInterface();

export interface Notifier {
  /** An agreement's new state, to both parties, or to `only` one. */
  status(record: AgreementRecord, payload: Payload<'agreementStatus'>, only?: string): void;
  /** A settled delivery, to both parties. */
  delivered(record: AgreementRecord, payload: Payload<'deliveryConfirmation'>): void;
}

export interface RelayContext {
  readonly book: AgreementBook;
  readonly sender: TxSender;
  readonly directory: ParkDirectory;
  readonly manifest: Manifest;
  readonly notifier: Notifier;
  readonly logger: Logger;
  readonly now: () => number;
  /**
   * The market's event about this agreement (its first indexed argument), when something
   * happened on chain that this gateway did not do itself: someone else relayed or settled it.
   */
  readonly findEvent: (
    record: AgreementRecord,
    event: 'AgreementOpened' | 'AgreementSettled',
  ) => Promise<Log | null>;
}

export interface RelayCounters {
  accepted: number;
  duplicates: number;
  opened: number;
  /** Opened by someone else before us: followed, not counted as opened here. */
  alreadyOnChain: number;
  failed: number;
}

/** Reverts that mean the agreement's nonces are spent: it may be open already. */
const SPENT = /^UtilityMarket(AgreementExists|NonceUsed)\(/;

export class AgreementRelay {
  readonly counters: RelayCounters = {
    accepted: 0,
    duplicates: 0,
    opened: 0,
    alreadyOnChain: 0,
    failed: 0,
  };
  /** Submissions under way: an outcome waits for its own submission to be booked first. */
  private readonly submitting = new Map<string, Promise<void>>();
  private postponing = false;

  constructor(private readonly ctx: RelayContext) {}

  /**
   * Checks and books an agreement sent by plant `from`; resolves once it is on disk. Throws an
   * EipError saying what is wrong, for the sender's error topic.
   */
  async accept(from: string, signed: Payload<'agreement'>): Promise<void> {
    const { directory, manifest, book } = this.ctx;
    const terms = signed.agreement;
    const seller = directory.plantOf(terms.seller);
    const buyer = directory.plantOf(terms.buyer);
    if (seller === undefined || buyer === undefined) {
      const stranger = seller === undefined ? terms.seller : terms.buyer;
      throw new EipError('UNAUTHORIZED', `agreement party ${stranger} is not enrolled in the park`);
    }
    if (from !== seller && from !== buyer) {
      throw new EipError('UNAUTHORIZED', `${from} is not a party to this agreement`);
    }
    const market = manifest.markets[signed.utility];
    const domain = marketDomain(manifest.chainId, market.address);
    assertSignedBy(domain, 'Agreement', terms, signed.seller_signature, terms.seller);
    assertSignedBy(domain, 'Agreement', terms, signed.buyer_signature, terms.buyer);
    const id = structHash('Agreement', terms);
    const known = book.get(id);
    if (known) {
      this.counters.duplicates++;
      const status = this.statusNow(known);
      // Answered to the sender alone: the other party heard it already.
      if (status) this.ctx.notifier.status(known, status, from);
      return;
    }
    const nowS = BigInt(Math.floor(this.ctx.now() / 1000));
    const deadline = minBig(terms.sellerDeadline, terms.buyerDeadline);
    if (deadline < nowS) {
      throw new EipError(
        'INVALID_MESSAGE',
        `agreement ${id} expired: its signatures were valid until ${new Date(Number(deadline) * 1000).toISOString()}`,
      );
    }
    const record: AgreementRecord = {
      id,
      utility: signed.utility,
      terms: agreementStructSchema.encode(terms),
      signatures: { seller: signed.seller_signature, buyer: signed.buyer_signature },
      seller,
      buyer,
      state: 'accepted',
      acceptedAtMs: this.ctx.now(),
      reportTxs: [],
      reports: {},
    };
    await book.put(id, record);
    this.counters.accepted++;
    this.ctx.logger.info(
      { agreement: id, utility: signed.utility, seller, buyer },
      'agreement accepted',
    );
    void this.submit(id);
  }

  /** Submits every accepted agreement not yet sent (at start, and after the node was down). */
  resume(): void {
    for (const record of this.ctx.book.values()) {
      if (record.state === 'accepted') void this.submit(record.id);
    }
  }

  private submit(id: string): Promise<void> {
    const record = this.ctx.book.get(id);
    if (record?.state !== 'accepted' || this.submitting.has(id)) return Promise.resolve();
    const submission = this.send(record).finally(() => this.submitting.delete(id));
    this.submitting.set(id, submission);
    return submission;
  }

  private async send(record: AgreementRecord): Promise<void> {
    const id = record.id;
    try {
      const signatures = record.signatures;
      if (!signatures) throw new EipError('INVALID_MESSAGE', `agreement ${id} has no signatures`);
      const hash = await this.ctx.sender.send({
        key: `open:${id}`,
        to: this.ctx.manifest.markets[record.utility].address,
        data: MARKET.encodeFunctionData('openAgreement', [
          termsOf(record),
          signatures.seller,
          signatures.buyer,
        ]),
      });
      const submitted: AgreementRecord = { ...record, state: 'submitted', openTx: hash };
      await this.ctx.book.put(id, submitted);
      this.ctx.notifier.status(submitted, {
        agreement_id: id,
        utility: record.utility,
        at_ms: this.ctx.now(),
        state: 'submitted',
        tx_hash: hash,
      });
      if (this.postponing) {
        this.postponing = false;
        this.ctx.logger.info('submitting again: the chain node answers');
      }
    } catch (error) {
      if (isEipError(error, 'CHAIN_REVERTED')) await this.refused(record, error.message);
      else if (!this.postponing) {
        // The node could not be asked: the agreement stays accepted for resume(). Said once
        // per outage, not once per agreement and tick.
        this.postponing = true;
        this.ctx.logger.warn(
          { err: (error as Error).message },
          'submissions postponed: agreements are kept and sent when the chain node answers',
        );
      }
    }
  }

  private async refused(record: AgreementRecord, reason: string): Promise<void> {
    const opening = SPENT.test(reason) ? await this.ctx.findEvent(record, 'AgreementOpened') : null;
    if (opening) {
      this.counters.alreadyOnChain++;
      await this.opened(record, {
        hash: opening.transactionHash,
        blockNumber: opening.blockNumber,
      });
      return;
    }
    this.counters.failed++;
    const failed: AgreementRecord = { ...record, state: 'failed', failure: reason };
    await this.ctx.book.put(record.id, failed);
    this.ctx.logger.warn({ agreement: record.id, reason }, 'the market refused the agreement');
    this.ctx.notifier.status(failed, { ...this.base(failed), state: 'failed', reason });
  }

  /** The sender's report on an `open:` transaction. */
  async outcome(id: string, outcome: TxOutcome): Promise<void> {
    // With instant mining the receipt can come before `submitted` is booked and told.
    await this.submitting.get(id);
    const record = this.ctx.book.get(id);
    if (!record || record.state === 'open' || record.state === 'settled') return;
    if (outcome.kind === 'confirmed') {
      this.counters.opened++;
      await this.opened(record, outcome.receipt);
    } else {
      await this.refused(record, outcome.reason);
    }
  }

  private async opened(
    record: AgreementRecord,
    tx: { readonly hash: string; readonly blockNumber: number },
  ): Promise<void> {
    const open: AgreementRecord = {
      ...record,
      state: 'open',
      openTx: tx.hash,
      openBlock: tx.blockNumber,
    };
    await this.ctx.book.put(record.id, open);
    this.ctx.logger.info({ agreement: record.id, tx: tx.hash }, 'agreement open on chain');
    this.ctx.notifier.status(open, {
      ...this.base(open),
      state: 'confirmed',
      tx_hash: tx.hash,
      block: tx.blockNumber,
    });
  }

  private base(record: AgreementRecord) {
    return { agreement_id: record.id, utility: record.utility, at_ms: this.ctx.now() };
  }

  /** Where an agreement stands, for a party asking again; null while it waits to be sent. */
  statusNow(record: AgreementRecord): Payload<'agreementStatus'> | null {
    const base = this.base(record);
    if (record.state === 'failed') {
      return { ...base, state: 'failed', reason: record.failure ?? 'failed' };
    }
    if (record.state === 'settled' && record.settleTx && record.settlement) {
      return {
        ...base,
        state: 'settled',
        tx_hash: record.settleTx,
        paid: BigInt(record.settlement.paid),
        refunded: BigInt(record.settlement.refunded),
      };
    }
    if (record.openTx === undefined) return null;
    if (record.openBlock === undefined) {
      return { ...base, state: 'submitted', tx_hash: record.openTx };
    }
    return { ...base, state: 'confirmed', tx_hash: record.openTx, block: record.openBlock };
  }
}
