/**
 * The indexer's reads from the chain node: block headers and the park's logs in a block range,
 * grouped into the blocks and transactions that carry them. The node is reached through
 * `ChainSource`, the few JSON-RPC calls used, which ethers' JsonRpcProvider satisfies as it is.
 */
import { EipError } from '../../core/errors.js';
import type { ChainLog, DecodedLog, LogDecoder } from './decode.js';

export interface ChainTx {
  readonly hash: string;
  readonly from: string;
  readonly to: string | null;
  /** Position in its block. */
  readonly index: number;
}

export interface ChainBlock {
  readonly number: number;
  readonly hash: string | null;
  readonly parentHash: string;
  /** Unix seconds. */
  readonly timestamp: number;
  readonly transactions: readonly string[];
  /** Only read when the block was asked for with its transactions. */
  readonly prefetchedTransactions: readonly ChainTx[];
}

export interface ChainSource {
  getNetwork(): Promise<{ readonly chainId: bigint }>;
  getBlockNumber(): Promise<number>;
  getBlock(block: number, prefetchTxs?: boolean): Promise<ChainBlock | null>;
  getLogs(filter: {
    address: string[];
    fromBlock: number;
    toBlock: number;
  }): Promise<readonly ChainLog[]>;
}

export interface BlockHeader {
  readonly number: number;
  readonly hash: string;
  readonly parentHash: string;
}

/** A transaction that touched the park's contracts, with its decoded logs in order. */
export interface ParkTx {
  readonly hash: string;
  readonly index: number;
  readonly from: string;
  readonly to: string | null;
  readonly logs: readonly DecodedLog[];
}

/** A block that carries at least one log of the park's contracts. */
export interface ParkBlock extends BlockHeader {
  readonly timestamp: number;
  /** Every transaction in the block, the park's or not. */
  readonly txCount: number;
  readonly transactions: readonly ParkTx[];
}

/** Items by key, each group in the items' order. */
function groupBy<K, T>(items: readonly T[], key: (item: T) => K): Map<K, T[]> {
  const groups = new Map<K, T[]>();
  for (const item of items) {
    const group = groups.get(key(item));
    if (group === undefined) groups.set(key(item), [item]);
    else group.push(item);
  }
  return groups;
}

/** Blocks fetched at once while reading a range; bounds the calls in flight to the node. */
const BLOCKS_AT_ONCE = 8;

/** The chain moved between two reads of one range: the range is read again. */
function reorganised(what: string): EipError {
  return new EipError('IO_ERROR', `the chain reorganised while reading ${what}`, {
    retryable: true,
  });
}

async function readHeader(source: ChainSource, number: number): Promise<BlockHeader> {
  const block = await source.getBlock(number);
  // A block below the head the node just reported is gone only if the chain reorganised.
  if (block === null || block.hash === null) throw reorganised(`block ${number}`);
  return { number, hash: block.hash, parentHash: block.parentHash };
}

/** What reading a range found: its blocks, or that it does not follow the given parent. */
export type RangeRead =
  | { readonly forked: false; readonly last: BlockHeader; readonly blocks: readonly ParkBlock[] }
  | { readonly forked: true };

/**
 * The blocks from `fromBlock` to `toBlock` that carry logs of `decoder`'s contracts, oldest
 * first, and the header of `toBlock`, the new last indexed block. `forked` when `fromBlock` is
 * no longer the child of `parent` (the last indexed block; null for the first range). Every
 * log's block hash is checked against the block fetched for it, so a range read across a
 * reorganisation is refused rather than mixed.
 */
export async function readRange(
  source: ChainSource,
  decoder: LogDecoder,
  parent: BlockHeader | null,
  fromBlock: number,
  toBlock: number,
): Promise<RangeRead> {
  const last = await readHeader(source, toBlock);
  if (parent !== null) {
    const first = fromBlock === toBlock ? last : await readHeader(source, fromBlock);
    if (first.parentHash !== parent.hash) return { forked: true };
  }
  const logs = await source.getLogs({ address: [...decoder.addresses], fromBlock, toBlock });
  const byBlock = groupBy(logs, (log) => log.blockNumber);
  const numbers = [...byBlock.keys()].sort((a, b) => a - b);
  const blocks: ParkBlock[] = [];
  for (let i = 0; i < numbers.length; i += BLOCKS_AT_ONCE) {
    const batch = numbers.slice(i, i + BLOCKS_AT_ONCE);
    const read = batch.map((n) => parkBlock(source, decoder, n, byBlock.get(n) ?? []));
    blocks.push(...(await Promise.all(read)));
  }
  const lastPark = blocks.at(-1);
  if (lastPark?.number === toBlock && lastPark.hash !== last.hash) {
    throw reorganised(`block ${toBlock}`);
  }
  return { forked: false, last, blocks };
}

async function parkBlock(
  source: ChainSource,
  decoder: LogDecoder,
  number: number,
  logs: readonly ChainLog[],
): Promise<ParkBlock> {
  const block = await source.getBlock(number, true);
  const hash = block?.hash ?? null;
  if (block === null || hash === null || logs.some((log) => log.blockHash !== hash)) {
    throw reorganised(`block ${number}`);
  }
  const senders = new Map(block.prefetchedTransactions.map((tx) => [tx.hash, tx]));
  const byTx = groupBy(
    [...logs].sort((a, b) => a.index - b.index),
    (log) => log.transactionHash,
  );
  const transactions = [...byTx].map(([txHash, txLogs]): ParkTx => {
    const tx = senders.get(txHash);
    if (tx === undefined) throw reorganised(`transaction ${txHash}`);
    return {
      hash: txHash,
      index: tx.index,
      from: tx.from,
      to: tx.to,
      logs: txLogs.map((log) => decoder.decode(log)),
    };
  });
  return {
    number,
    hash,
    parentHash: block.parentHash,
    timestamp: block.timestamp,
    txCount: block.transactions.length,
    transactions: transactions.sort((a, b) => a.index - b.index),
  };
}
