/**
 * The gateway's indexer of the park's contract events. It reads the logs of the token and the
 * three markets with eth_getLogs in block ranges, from the manifest's first block up to the head,
 * then polls for new blocks (plain polling: a filter installed on the node dies when the node
 * restarts), and folds every block into the read model (model.ts) that the HTTP API serves.
 *
 * The read model lives in memory only. The chain is the source of truth: a restarted gateway
 * indexes again from the manifest's block, which for a park's history is a few eth_getLogs calls,
 * and nothing kept on disk can disagree with the chain.
 *
 * Resilience:
 * - The node down or failing: one warning, then retries at debug with a doubling back-off; the
 *   next successful read resumes after the last indexed block, so nothing is folded twice.
 * - Reorganisations: each range must start at a child of the last indexed block (its parent hash
 *   is checked), and a head below the last indexed block means the chain got shorter. Either way
 *   the indexer walks back its recent checkpoints to the newest block still on the chain, drops
 *   what came after, rebuilds the model from the blocks it kept and emits `reorg` (so live
 *   clients refetch); beyond its checkpoints it indexes again from the manifest's block.
 *   `confirmations` keeps the indexer that many blocks behind the head, where shallow
 *   reorganisations cannot reach it.
 */
import { EventEmitter } from 'node:events';
import { EipError, isEipError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import { UTILITY_IDS, type UtilityId } from '../../core/utilities.js';
import type { Manifest } from '../chain/manifest.js';
import { type BlockHeader, type ChainSource, type ParkBlock, readRange } from './chain.js';
import { LogDecoder } from './decode.js';
import {
  type AgreementRecord,
  type BlockChanges,
  type BlockRecord,
  type DeliveryRecord,
  ReadModel,
  type SettlementRecord,
} from './model.js';

export interface IndexerOptions {
  /** The chain node; an ethers JsonRpcProvider fits. */
  readonly provider: ChainSource;
  readonly manifest: Manifest;
  readonly logger: Logger;
  /** Blocks to stay behind the head. */
  readonly confirmations?: number;
  /** Time between polls for new blocks. */
  readonly pollMs?: number;
  /** Most blocks one eth_getLogs call asks for (nodes cap ranges or results). */
  readonly batchBlocks?: number;
  /** Longest wait between retries while the node fails. */
  readonly maxBackoffMs?: number;
}

export interface IndexerStatus {
  readonly chainId: number;
  /** The manifest's first block. */
  readonly startBlock: number;
  /** Last block folded into the model; startBlock - 1 before the first. */
  readonly indexedBlock: number;
  /** The node's head at the last poll; null before the node first answered. */
  readonly headBlock: number | null;
  readonly confirmations: number;
  /** Whether the last read of the chain succeeded. */
  readonly nodeReachable: boolean;
  /** Why the last read failed, while it keeps failing. */
  readonly lastError: string | null;
  readonly contracts: {
    readonly token: string;
    readonly markets: Readonly<Record<UtilityId, string>>;
  };
}

/** Change events, emitted once a block is folded (agreements in their state at its end). */
export type IndexerEvents = {
  /** An agreement opened, was reported on, or settled. */
  agreement: [AgreementRecord];
  delivery: [DeliveryRecord];
  settlement: [SettlementRecord];
  /** A block that carried the park's events, after its other events. */
  block: [BlockRecord];
  /** The chain reorganised: the model now ends at block `to`; what clients hold may be stale. */
  reorg: [{ readonly from: number; readonly to: number }];
};

/** Recent last-indexed blocks kept to find where a reorganisation forked. */
const CHECKPOINTS = 64;

function describe(error: unknown): string {
  const { shortMessage, message } = error as { shortMessage?: string; message?: string };
  return shortMessage ?? message ?? String(error);
}

export class Indexer extends EventEmitter<IndexerEvents> {
  private readonly source: ChainSource;
  private readonly manifest: Manifest;
  private readonly logger: Logger;
  private readonly confirmations: number;
  private readonly pollMs: number;
  private readonly batchBlocks: number;
  private readonly maxBackoffMs: number;
  private readonly decoder: LogDecoder;
  /** The park blocks folded so far, to rebuild the model from after a reorganisation. */
  private history: ParkBlock[] = [];
  private current: ReadModel;
  /** The last indexed block; null before the first range. */
  private tip: BlockHeader | null = null;
  private checkpoints: BlockHeader[] = [];
  private head: number | null = null;
  private chainChecked = false;
  private failures = 0;
  private lastError: string | null = null;
  private stopped = true;
  /** Counts start() calls, so a poll of a loop that was stopped does not reschedule itself. */
  private loop = 0;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> = Promise.resolve();

  constructor(options: IndexerOptions) {
    super();
    this.source = options.provider;
    this.manifest = options.manifest;
    this.logger = options.logger;
    this.confirmations = options.confirmations ?? 0;
    this.pollMs = options.pollMs ?? 1000;
    this.batchBlocks = options.batchBlocks ?? 2000;
    this.maxBackoffMs = options.maxBackoffMs ?? 30_000;
    if (!Number.isSafeInteger(this.batchBlocks) || this.batchBlocks < 1) {
      throw new EipError('INVALID_ARGUMENT', `batchBlocks must be a whole number >= 1`);
    }
    this.decoder = new LogDecoder(this.manifest);
    this.current = new ReadModel(this.manifest, this.logger);
  }

  /** The read model; replaced on a reorganisation, so read it anew for each request. */
  get model(): ReadModel {
    return this.current;
  }

  status(): IndexerStatus {
    return {
      chainId: this.manifest.chainId,
      startBlock: this.manifest.block,
      indexedBlock: this.tip?.number ?? this.manifest.block - 1,
      headBlock: this.head,
      confirmations: this.confirmations,
      nodeReachable: this.head !== null && this.failures === 0,
      lastError: this.lastError,
      contracts: {
        token: this.manifest.token,
        markets: Object.fromEntries(
          UTILITY_IDS.map((id) => [id, this.manifest.markets[id].address]),
        ) as Record<UtilityId, string>,
      },
    };
  }

  /** Catches up from the manifest's block, then follows the head until stopped. */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.loop++;
    this.schedule(0, this.loop);
  }

  /** Stops polling; resolves once a read in flight has ended. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  private schedule(delayMs: number, loop: number): void {
    this.timer = setTimeout(() => {
      // Chained: after a quick stop() and start(), a poll still in flight finishes first.
      this.running = this.running.then(() => this.poll(loop));
    }, delayMs);
  }

  private async poll(loop: number): Promise<void> {
    let delayMs = this.pollMs;
    try {
      await this.catchUp();
      if (this.failures > 0) {
        this.logger.info(
          { block: this.status().indexedBlock },
          'chain node answers again; indexing resumed',
        );
      }
      this.failures = 0;
      this.lastError = null;
    } catch (error) {
      if (this.stopped) return;
      this.lastError = describe(error);
      if (isEipError(error) && !error.retryable) {
        this.logger.error({ err: error }, 'indexer stopped');
        this.stopped = true;
        return;
      }
      delayMs = this.failed();
    }
    if (!this.stopped && loop === this.loop) this.schedule(delayMs, loop);
  }

  /** Logs the first of a run of failures as a warning, the rest at debug; the next delay. */
  private failed(): number {
    this.failures++;
    this.chainChecked = false; // the node that comes back may be another
    const context = { error: this.lastError, failures: this.failures };
    if (this.failures === 1) {
      this.logger.warn(context, 'cannot read the chain; retrying with back-off');
    } else {
      this.logger.debug(context, 'chain read failed again');
    }
    return Math.min(this.pollMs * 2 ** this.failures, this.maxBackoffMs);
  }

  private async checkChain(): Promise<void> {
    if (this.chainChecked) return;
    const { chainId } = await this.source.getNetwork();
    if (chainId !== BigInt(this.manifest.chainId)) {
      throw new EipError(
        'INVALID_ARGUMENT',
        `the chain node serves chain ${chainId}, the manifest's contracts are on chain ${this.manifest.chainId}`,
      );
    }
    this.chainChecked = true;
  }

  private async catchUp(): Promise<void> {
    await this.checkChain();
    const head = await this.source.getBlockNumber();
    this.head = head;
    const target = head - this.confirmations;
    // A head below the last indexed block: the chain got shorter, so it reorganised.
    if (this.tip !== null && target < this.tip.number) {
      await this.rewind();
      return;
    }
    while (!this.stopped) {
      const from = this.tip === null ? this.manifest.block : this.tip.number + 1;
      if (from > target) return;
      const to = Math.min(from + this.batchBlocks - 1, target);
      const range = await readRange(this.source, this.decoder, this.tip, from, to);
      if (this.stopped) return;
      if (range.forked) {
        // A node answering inconsistently forks without a rewind: wait for the next poll then.
        if (await this.rewind()) continue;
        return;
      }
      const changes = range.blocks.map((block) => this.current.applyBlock(block));
      this.history.push(...range.blocks);
      this.advance(range.last);
      // After the tip moved: a failing listener must not make the range be folded twice.
      for (const change of changes) this.notify(change);
    }
  }

  private advance(tip: BlockHeader): void {
    this.tip = tip;
    this.checkpoints.push(tip);
    if (this.checkpoints.length > CHECKPOINTS) this.checkpoints.shift();
  }

  private notify(changes: BlockChanges): void {
    for (const agreement of changes.agreements) this.tell('agreement', agreement);
    for (const delivery of changes.deliveries) this.tell('delivery', delivery);
    for (const settlement of changes.settlements) this.tell('settlement', settlement);
    this.tell('block', changes.block);
  }

  /** Emits; a listener that throws is logged, and cannot stall indexing. */
  private tell<K extends keyof IndexerEvents>(event: K, ...args: IndexerEvents[K]): void {
    try {
      // @types/node resolves a key's arguments only for a literal key, not for a generic one.
      this.emit(event, ...(args as K extends keyof IndexerEvents ? IndexerEvents[K] : never));
    } catch (error) {
      this.logger.error({ err: error, event }, 'an indexer listener failed');
    }
  }

  /**
   * Rewinds to the newest checkpoint still on the chain, or to before the manifest's block when
   * none is, and rebuilds the model from the park blocks up to it. Reads first, then changes
   * state, so a node failing halfway leaves the indexer as it was. False when nothing changed.
   */
  private async rewind(): Promise<boolean> {
    let fork: BlockHeader | null = null;
    for (const checkpoint of [...this.checkpoints].reverse()) {
      const block = await this.source.getBlock(checkpoint.number);
      if (block?.hash === checkpoint.hash) {
        fork = checkpoint;
        break;
      }
    }
    const from = this.tip?.number ?? this.manifest.block - 1;
    // Stopped meanwhile, or the last indexed block is still on the chain (shorter only by
    // confirmations, or the chain moved between two reads): nothing to undo.
    if (this.stopped || fork?.number === from) return false;
    const to = fork?.number ?? this.manifest.block - 1;
    this.tip = fork;
    this.checkpoints = this.checkpoints.filter((c) => c.number <= to);
    this.history = this.history.filter((block) => block.number <= to);
    const model = new ReadModel(this.manifest, this.logger);
    for (const block of this.history) model.applyBlock(block);
    this.current = model;
    this.logger.warn({ from, to }, 'the chain reorganised; the read model was rewound');
    this.tell('reorg', { from, to });
    return true;
  }
}
