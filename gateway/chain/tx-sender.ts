/**
 * Sends the gateway's transactions from one key, many in flight, and follows each to its outcome.
 *
 * - Nonces are handed out here, in order, never by the node: with many transactions in flight a
 *   node's pending count lags, and two transactions would get the same nonce (ethers' own
 *   NonceManager has the same idea, without the persistence below).
 * - Write-ahead: a transaction is signed and its raw bytes synced to disk before it is broadcast.
 *   After a crash the same bytes are sent again, so the same nonce carries the same transaction
 *   and nothing is sent twice under two nonces.
 * - A transaction not mined after `replaceAfterMs` is signed again with the same nonce and fees
 *   raised by 12.5% (nodes want at least 10% on both fees to replace one in their pool) and sent;
 *   whichever of its versions is mined counts. This also re-sends it to a node that lost its pool
 *   on restart.
 * - Each call is run first (see gasLimitFor): a call that would revert fails at once with the
 *   contract's error decoded and takes no nonce, so one refused agreement cannot leave a gap
 *   that holds up the others.
 * - Receipts are looked up for the transactions that appear in new blocks, not for every one in
 *   flight at every poll: with hundreds in flight that would be hundreds of calls a poll.
 * - An outcome is reported after `confirmations` blocks (1: mined). The owner's `onOutcome` is
 *   awaited before the record is deleted, so after a crash an outcome may be reported twice,
 *   never lost; owners treat it idempotently.
 */
import {
  type Interface,
  isError,
  type JsonRpcProvider,
  keccak256,
  type TransactionReceipt,
  toQuantity,
  type Wallet,
} from 'ethers';
import { EipError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { JsonStore } from '../relay/store.js';

export interface TxJob {
  /** The owner's name for it, unique among transactions in flight (e.g. `open:0xID`). */
  readonly key: string;
  readonly to: string;
  readonly data: string;
}

interface Attempt {
  readonly hash: string;
  readonly raw: string;
  readonly maxFeePerGas: string;
  readonly maxPriorityFeePerGas: string;
  readonly sentAt: number;
}

export interface TxRecord extends TxJob {
  readonly nonce: number;
  readonly gasLimit: string;
  readonly attempts: readonly Attempt[];
}

export type TxOutcome =
  | {
      readonly kind: 'confirmed';
      readonly hash: string;
      readonly blockNumber: number;
      readonly receipt: TransactionReceipt;
    }
  | {
      readonly kind: 'reverted';
      readonly hash: string;
      readonly blockNumber: number;
      readonly reason: string;
    };

export interface TxSenderOptions {
  readonly provider: JsonRpcProvider;
  readonly wallet: Wallet;
  readonly store: JsonStore<TxRecord>;
  /** Interfaces whose custom errors a revert is decoded with. */
  readonly errors: readonly Interface[];
  readonly onOutcome: (key: string, outcome: TxOutcome) => Promise<void>;
  readonly logger: Logger;
  readonly confirmations?: number;
  readonly replaceAfterMs?: number;
  readonly pollMs?: number;
  readonly now?: () => number;
}

export interface TxSenderCounters {
  sent: number;
  replaced: number;
  confirmed: number;
  reverted: number;
  /** Calls refused at estimation: no transaction was sent. */
  refused: number;
  /** Sent again under a new nonce: another sender of the same key took theirs. */
  renonced: number;
}

const BUMP_NUMERATOR = 1125n;
const BUMP_DENOMINATOR = 1000n;
/** Gas limit over a function's first estimate (see gasLimitFor). */
const GAS_HEADROOM = 2n;
const FEE_CACHE_MS = 1000;
/** Beyond this many new blocks at once, every receipt is looked up instead. */
const MAX_SCANNED_BLOCKS = 64;

export class TxSender {
  readonly counters: TxSenderCounters = {
    sent: 0,
    replaced: 0,
    confirmed: 0,
    reverted: 0,
    refused: 0,
    renonced: 0,
  };
  private nextNonce = -1;
  private readonly confirmations: number;
  private readonly replaceAfterMs: number;
  private readonly pollMs: number;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<void> = Promise.resolve();
  private fees: { at: number; maxFeePerGas: bigint; maxPriorityFeePerGas: bigint } | undefined;
  private chainId = 0n;
  private lastHead = -1;
  /** Receipts of mined transactions still short of their confirmations. */
  private readonly receipts = new Map<string, TransactionReceipt>();
  /** Gas limit per 4-byte function selector (see gasLimitFor). */
  private readonly gasBySelector = new Map<string, bigint>();
  private nodeDownSince: number | undefined;
  private stopped = false;

  constructor(private readonly options: TxSenderOptions) {
    this.confirmations = options.confirmations ?? 1;
    this.replaceAfterMs = options.replaceAfterMs ?? 30_000;
    this.pollMs = options.pollMs ?? 1000;
    this.now = options.now ?? Date.now;
  }

  get address(): string {
    return this.options.wallet.address;
  }

  /** Transactions sent and not yet reported. */
  get inFlight(): number {
    return this.options.store.size;
  }

  /** Picks up where a previous run stopped: its transactions are followed (and re-sent) again. */
  async start(): Promise<void> {
    this.chainId = (await this.options.provider.getNetwork()).chainId;
    await this.syncNonce();
    for (const record of this.options.store.values()) await this.broadcast(record);
    this.schedule();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.polling;
  }

  /**
   * Estimates, signs, stores and broadcasts `job`; resolves with its first hash once it is on
   * disk and handed to the node (or queued to be, while the node is down). Rejects with
   * CHAIN_REVERTED when the call would revert, or a retryable IO_ERROR when the node cannot be
   * asked (nothing was sent then: the caller tries again later).
   */
  async send(job: TxJob): Promise<string> {
    let gasLimit: bigint;
    try {
      gasLimit = await this.gasLimitFor(job);
    } catch (error) {
      const reverted = this.revertReason(error);
      if (reverted !== null) {
        this.counters.refused++;
        throw new EipError('CHAIN_REVERTED', reverted, { details: { key: job.key } });
      }
      throw unreachable(error);
    }
    const fees = await this.feeData();
    if (this.nextNonce < 0) await this.syncNonce();
    // No await between reading and advancing the nonce: concurrent sends get consecutive ones.
    const nonce = this.nextNonce++;
    const attempt = await this.sign(job, nonce, gasLimit, fees);
    const record: TxRecord = { ...job, nonce, gasLimit: gasLimit.toString(), attempts: [attempt] };
    await this.options.store.put(job.key, record);
    this.counters.sent++;
    await this.broadcast(record);
    return attempt.hash;
  }

  /**
   * The gas limit for a call, after checking it would not revert. A node's estimate is a search
   * that runs the call many times (12 ms each on anvil, against 1 ms for one run), so each
   * function is estimated once: later calls are run once (eth_call) to see they succeed, and get
   * twice the largest estimate of their function. A generous limit costs nothing: only the gas
   * used is paid. The calls here differ in gas only by a few storage slots being new or not.
   */
  private async gasLimitFor(job: TxJob): Promise<bigint> {
    const { provider, wallet } = this.options;
    const call = { from: wallet.address, to: job.to, data: job.data };
    const selector = job.data.slice(0, 10);
    const known = this.gasBySelector.get(selector);
    if (known !== undefined) {
      await provider.call(call);
      return known;
    }
    const limit = (await provider.estimateGas(call)) * GAS_HEADROOM;
    this.gasBySelector.set(selector, limit);
    return limit;
  }

  private async syncNonce(): Promise<void> {
    const onChain = await this.options.provider.getTransactionCount(
      this.options.wallet.address,
      'pending',
    );
    let next = onChain;
    for (const record of this.options.store.values()) next = Math.max(next, record.nonce + 1);
    // Never back: a send between taking its nonce and storing it is not in the store yet.
    this.nextNonce = Math.max(this.nextNonce, next);
  }

  private async feeData(): Promise<{ maxFeePerGas: bigint; maxPriorityFeePerGas: bigint }> {
    const now = this.now();
    if (this.fees && now - this.fees.at < FEE_CACHE_MS) return this.fees;
    const data = await this.options.provider.getFeeData();
    if (data.maxFeePerGas === null || data.maxPriorityFeePerGas === null) {
      throw new EipError('IO_ERROR', 'the chain does not report EIP-1559 fees (London fork)');
    }
    this.fees = {
      at: now,
      maxFeePerGas: data.maxFeePerGas,
      maxPriorityFeePerGas: data.maxPriorityFeePerGas,
    };
    return this.fees;
  }

  private async sign(
    job: TxJob,
    nonce: number,
    gasLimit: bigint,
    fees: { maxFeePerGas: bigint; maxPriorityFeePerGas: bigint },
  ): Promise<Attempt> {
    const raw = await this.options.wallet.signTransaction({
      type: 2,
      chainId: this.chainId,
      to: job.to,
      data: job.data,
      nonce,
      gasLimit,
      maxFeePerGas: fees.maxFeePerGas,
      maxPriorityFeePerGas: fees.maxPriorityFeePerGas,
    });
    return {
      hash: keccak256(raw),
      raw,
      maxFeePerGas: fees.maxFeePerGas.toString(),
      maxPriorityFeePerGas: fees.maxPriorityFeePerGas.toString(),
      sentAt: this.now(),
    };
  }

  /** Hands the latest version to the node; a node that is down gets it on a later poll. */
  private async broadcast(record: TxRecord): Promise<void> {
    const latest = record.attempts.at(-1);
    if (!latest) return;
    try {
      await this.options.provider.send('eth_sendRawTransaction', [latest.raw]);
    } catch (error) {
      const text = errorText(error);
      // Already in the pool or already mined: what we wanted. Matched on the whole message, which
      // quotes the node: ethers' short one is its own wording ("nonce has already been used",
      // "could not coalesce error"), so every re-send after a restart was warned as a failure.
      const full = error instanceof Error ? error.message : text;
      if (/already known|nonce too low|known transaction|already imported/i.test(full)) return;
      this.options.logger.warn(
        { key: record.key, nonce: record.nonce, err: text },
        'broadcast failed; it is retried',
      );
    }
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.polling = this.poll().finally(() => this.schedule());
    }, this.pollMs);
  }

  private async poll(): Promise<void> {
    if (this.options.store.size === 0) return;
    const { provider, logger } = this.options;
    let head: number;
    try {
      head = await provider.getBlockNumber();
      if (this.nodeDownSince !== undefined) {
        logger.info({ down_ms: this.now() - this.nodeDownSince }, 'chain node is back');
        this.nodeDownSince = undefined;
      }
    } catch (error) {
      if (this.nodeDownSince === undefined) {
        this.nodeDownSince = this.now();
        logger.warn({ err: errorText(error) }, 'chain node unreachable; transactions wait');
      }
      return;
    }
    const records = [...this.options.store.values()];
    const mined =
      head === this.lastHead ? new Set<string>() : await this.minedIn(this.lastHead, head);
    this.lastHead = head;
    await Promise.all(
      records.map((record) =>
        this.follow(record, head, mined === null || record.attempts.some((a) => mined.has(a.hash))),
      ),
    );
  }

  /**
   * The hashes of the transactions in the blocks after `from` up to `to`; null when they are
   * not listed (the first poll, a long outage, a failed read): then every receipt is looked up.
   */
  private async minedIn(from: number, to: number): Promise<Set<string> | null> {
    if (from < 0 || to - from > MAX_SCANNED_BLOCKS) return null;
    try {
      const blocks = await Promise.all(
        Array.from({ length: to - from }, (_, i) =>
          this.options.provider.send('eth_getBlockByNumber', [toQuantity(from + 1 + i), false]),
        ),
      );
      return new Set(
        blocks.flatMap((block: { transactions?: string[] } | null) =>
          (block?.transactions ?? []).map((hash) => hash.toLowerCase()),
        ),
      );
    } catch {
      return null;
    }
  }

  private async follow(record: TxRecord, head: number, maybeMined: boolean): Promise<void> {
    const latest = record.attempts.at(-1);
    const due = latest !== undefined && this.now() - latest.sentAt >= this.replaceAfterMs;
    // Also looked up when a replacement is due, not only when seen in a new block: a receipt
    // missed at its block (a failed lookup, a node behind a load balancer) was otherwise never
    // looked up again on a quiet chain, and the mined call was sent again under a new nonce.
    let receipt = this.receipts.get(record.key) ?? null;
    if (receipt === null && (maybeMined || due)) {
      receipt = await this.receiptOf(record).catch(() => null);
      // Kept while it waits for its confirmations, so it is not looked up at every poll.
      if (receipt) this.receipts.set(record.key, receipt);
    }
    if (receipt === null) {
      if (due) await this.replace(record);
      return;
    }
    if (head - receipt.blockNumber + 1 < this.confirmations) return;
    this.receipts.delete(record.key);
    const outcome: TxOutcome =
      receipt.status === 1
        ? { kind: 'confirmed', hash: receipt.hash, blockNumber: receipt.blockNumber, receipt }
        : {
            kind: 'reverted',
            hash: receipt.hash,
            blockNumber: receipt.blockNumber,
            reason: await this.replayReason(record, receipt.blockNumber),
          };
    if (outcome.kind === 'confirmed') this.counters.confirmed++;
    else this.counters.reverted++;
    await this.options.onOutcome(record.key, outcome);
    await this.options.store.delete(record.key);
  }

  /** The receipt of whichever version of `record` was mined, or null; rejects if not known. */
  private async receiptOf(record: TxRecord): Promise<TransactionReceipt | null> {
    const { provider } = this.options;
    const receipts = await Promise.all(
      record.attempts.map((a) => provider.getTransactionReceipt(a.hash)),
    );
    return receipts.find((r) => r !== null) ?? null;
  }

  private async replace(record: TxRecord): Promise<void> {
    const latest = record.attempts.at(-1);
    if (!latest) return;
    let current: { maxFeePerGas: bigint; maxPriorityFeePerGas: bigint };
    let mined: number;
    try {
      this.fees = undefined;
      current = await this.feeData();
      mined = await this.options.provider.getTransactionCount(this.address, 'latest');
    } catch {
      return; // the node is down: try again next poll
    }
    if (mined > record.nonce) {
      // One of our versions may have been mined since its receipt was looked up: the nonce count
      // read above covers it, so a receipt looked up now shows it, and the next poll reports it.
      // A lookup that fails is no proof either way: nothing is sent again on a guess.
      const ours = await this.receiptOf(record).catch(() => undefined);
      if (ours !== null) return;
      // The nonce is spent and none of our versions has a receipt: something else sent from
      // this key. The call goes again under a fresh nonce.
      await this.renonce(record, current);
      return;
    }
    const bump = (value: string) => (BigInt(value) * BUMP_NUMERATOR) / BUMP_DENOMINATOR + 1n;
    const max = (a: bigint, b: bigint) => (a > b ? a : b);
    const fees = {
      maxFeePerGas: max(bump(latest.maxFeePerGas), current.maxFeePerGas),
      maxPriorityFeePerGas: max(bump(latest.maxPriorityFeePerGas), current.maxPriorityFeePerGas),
    };
    const attempt = await this.sign(record, record.nonce, BigInt(record.gasLimit), fees);
    const replaced: TxRecord = { ...record, attempts: [...record.attempts, attempt] };
    await this.options.store.put(record.key, replaced);
    this.counters.replaced++;
    this.options.logger.info(
      { key: record.key, nonce: record.nonce, max_fee_per_gas: attempt.maxFeePerGas },
      'transaction not mined in time; replaced with a higher fee',
    );
    await this.broadcast(replaced);
  }

  private async renonce(
    record: TxRecord,
    fees: { maxFeePerGas: bigint; maxPriorityFeePerGas: bigint },
  ): Promise<void> {
    await this.syncNonce();
    const nonce = this.nextNonce++;
    const attempt = await this.sign(record, nonce, BigInt(record.gasLimit), fees);
    const moved: TxRecord = { ...record, nonce, attempts: [...record.attempts, attempt] };
    await this.options.store.put(record.key, moved);
    this.counters.renonced++;
    this.options.logger.warn(
      { key: record.key, was: record.nonce, nonce },
      'nonce used by another sender of this key; sent again under a new one',
    );
    await this.broadcast(moved);
  }

  /** Why a mined transaction reverted: the same call replayed on the state before its block. */
  private async replayReason(record: TxRecord, blockNumber: number): Promise<string> {
    try {
      await this.options.provider.call({
        from: this.options.wallet.address,
        to: record.to,
        data: record.data,
        blockTag: blockNumber - 1,
      });
      return 'reverted on chain';
    } catch (error) {
      return this.revertReason(error) ?? 'reverted on chain';
    }
  }

  /** The decoded custom error of a revert, or null when `error` is not a revert. */
  private revertReason(error: unknown): string | null {
    if (!isError(error, 'CALL_EXCEPTION')) return null;
    const data = error.data;
    if (typeof data === 'string' && data.length >= 10) {
      for (const iface of this.options.errors) {
        const decoded = iface.parseError(data);
        if (decoded) return `${decoded.name}(${decoded.args.map(String).join(', ')})`;
      }
    }
    return error.reason ?? error.shortMessage;
  }
}

function errorText(error: unknown): string {
  return (
    (error as { shortMessage?: string }).shortMessage ??
    (error instanceof Error ? error.message : String(error))
  );
}

function unreachable(error: unknown): EipError {
  return new EipError('IO_ERROR', `the chain node could not be asked: ${errorText(error)}`, {
    cause: error,
    retryable: true,
  });
}
