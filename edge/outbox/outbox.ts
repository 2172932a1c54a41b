/**
 * The edge agent's durable store-and-forward outbox (LevelDB through classic-level). A reading or
 * an agreement counts as sent once `append` resolves: by then it is on disk (a synced write), and
 * it survives a broker outage, a network cut and `kill -9`. A record leaves only when the broker
 * has it (`ack`), when the outbox is full and it is the oldest (`dropped`), or when it is found
 * corrupt (`corrupt`); each way is counted.
 *
 * Every change goes through one queue of jobs, so the bookkeeping entry (sizes, counters, the
 * next sequence number) is written in the same atomic batch as the records it describes and is
 * never out of step with them, even after a crash. Opening reads that one entry and one key, so it
 * takes the same time with 100 records or 300,000.
 *
 * Appends made while a batch is being written, or in the same tick, are committed together in
 * one synced batch, in call order: a durable append costs one fsync per batch, not per record.
 */
import { ClassicLevel } from 'classic-level';
import { EipError, isEipError } from '../../core/errors.js';
import { type Logger, silentLogger } from '../../core/logger.js';
import {
  decodeMeta,
  decodeRecord,
  emptyMeta,
  encodeMeta,
  encodeRecord,
  META_KEY,
  type Meta,
  type OutboxRecord,
  RECORDS_END,
  RECORDS_START,
  recordKey,
  seqOf,
  storedSize,
} from './codec.js';

export type { OutboxRecord } from './codec.js';

export const DEFAULT_MAX_BYTES = 64 * 1024 * 1024;

export interface OutboxOptions {
  readonly dir: string;
  /**
   * The bound on the records' keys and values together. LevelDB's own files add to it: its log
   * (up to its 4 MB write buffer) and deleted entries until compaction reclaims them.
   */
  readonly maxBytes?: number;
  readonly now?: () => number;
  readonly logger?: Logger;
}

export interface OutboxStats {
  /** Records stored and not yet acked. */
  readonly depth: number;
  readonly bytes: number;
  /** Since the outbox was created, across restarts. */
  readonly appended: number;
  readonly acked: number;
  readonly dropped: number;
  readonly corrupt: number;
  /** Synced batches written; appended / commits shows how well appends are grouped. */
  readonly commits: number;
  readonly oldestSeq: number | undefined;
  readonly nextSeq: number;
}

type Db = ClassicLevel<Buffer, Buffer>;
type Op = { type: 'put'; key: Buffer; value: Buffer } | { type: 'del'; key: Buffer };

interface PendingAppend {
  readonly seq: number;
  readonly key: Buffer;
  readonly value: Buffer;
  readonly size: number;
  readonly resolve: (seq: number) => void;
  readonly reject: (error: unknown) => void;
}

interface Waiter {
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

const SYNC = { sync: true };

/**
 * The first sequence number of a new outbox comes from the clock (1000 per millisecond), not 1:
 * the gateway drops a reading whose (prosumer, meter, seq) it has seen, so an agent whose outbox
 * was wiped or replaced must not start again below numbers it has already sent.
 */
const seedSeq = (now: number) => Math.floor(now) * 1000;

export class Outbox {
  /** The next seq to hand out: ahead of meta.nextSeq while appends wait for their batch. */
  private allocated: number;
  private pendingAppends: PendingAppend[] = [];
  private ackUpTo = -1;
  private ackWaiters: Waiter[] = [];
  private jobs: Promise<unknown> = Promise.resolve();
  private closed: Promise<void> | undefined;

  private constructor(
    private readonly db: Db,
    private meta: Meta,
    private oldest: number | undefined,
    private readonly dir: string,
    private readonly maxBytes: number,
    private readonly now: () => number,
    private readonly logger: Logger,
  ) {
    this.allocated = meta.nextSeq;
  }

  static async open(options: OutboxOptions): Promise<Outbox> {
    const { dir } = options;
    const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
    if (!Number.isSafeInteger(maxBytes) || maxBytes <= 0) {
      throw new EipError(
        'INVALID_ARGUMENT',
        `outbox maxBytes must be a positive whole number of bytes (got ${maxBytes})`,
        { details: { maxBytes } },
      );
    }
    const now = options.now ?? Date.now;
    const logger = options.logger ?? silentLogger;
    const db: Db = new ClassicLevel(dir, {
      keyEncoding: 'buffer',
      valueEncoding: 'buffer',
      // LevelDB's defaults (8 MB block cache, 4 MB write buffer) suit a database that is read;
      // this one is appended to and read once at its head. 1 MB each saves 10 MB on a Pi.
      cacheSize: 1024 * 1024,
      writeBufferSize: 1024 * 1024,
    });
    try {
      await db.open();
    } catch (error) {
      // Held by another process, or by an instance in this one that is still closing.
      const locked = (error as { cause?: { code?: string } }).cause?.code === 'LEVEL_LOCKED';
      throw storeFailure(`opening the outbox at ${dir}`, error, dir, locked);
    }
    try {
      const { meta, oldest } = await load(db, { dir, now, logger });
      return new Outbox(db, meta, oldest, dir, maxBytes, now, logger);
    } catch (error) {
      await db.close();
      throw isEipError(error) ? error : storeFailure(`opening the outbox at ${dir}`, error, dir);
    }
  }

  /**
   * Stores a record under the next sequence number and resolves with it once the record is on
   * disk. `render` makes the payload from the seq, so the message can carry it.
   */
  async append(topic: string, render: (seq: number) => string): Promise<number> {
    this.assertOpen();
    const seq = this.allocated;
    const key = recordKey(seq);
    const value = encodeRecord(key, { topic, payload: render(seq), enqueued_at_ms: this.now() });
    const size = storedSize(key, value);
    if (size > this.maxBytes) {
      throw new EipError(
        'INVALID_ARGUMENT',
        `an outbox record of ${size} bytes for ${topic} is larger than the whole outbox (${this.maxBytes} bytes)`,
        { details: { topic, size, maxBytes: this.maxBytes } },
      );
    }
    this.allocated = seq + 1; // only now: a render or size failure does not use up a number
    return new Promise((resolve, reject) => {
      this.pendingAppends.push({ seq, key, value, size, resolve, reject });
      if (this.pendingAppends.length === 1) void this.enqueue(() => this.commitAppends());
    });
  }

  /** The oldest records in seq order, or the oldest after seq `after`; corrupt ones are skipped. */
  async peek(limit: number, after?: number): Promise<OutboxRecord[]> {
    this.assertOpen();
    if (!Number.isSafeInteger(limit) || limit <= 0) {
      throw new EipError(
        'INVALID_ARGUMENT',
        `peek limit must be a positive integer (got ${limit})`,
      );
    }
    if (after !== undefined && !Number.isSafeInteger(after)) {
      throw new EipError('INVALID_ARGUMENT', `peek after must be a seq (got ${after})`);
    }
    const records: OutboxRecord[] = [];
    if (this.oldest === undefined) return records;
    let from = Math.max(this.oldest, after === undefined ? 0 : after + 1);
    for (;;) {
      const entries = await this.io('reading', () =>
        this.db
          .iterator({ gte: recordKey(from), lt: RECORDS_END, limit: limit - records.length })
          .all(),
      );
      const corrupt: number[] = [];
      for (const [key, value] of entries) {
        try {
          records.push(decodeRecord(key, value));
        } catch (error) {
          this.logger.error(
            { dir: this.dir, seq: seqOf(key) },
            `${(error as Error).message}; removed`,
          );
          corrupt.push(seqOf(key));
        }
      }
      const last = entries.at(-1);
      if (corrupt.length === 0 || last === undefined) return records;
      await this.removeCorrupt(corrupt);
      if (records.length === limit) return records;
      from = seqOf(last[0]) + 1;
    }
  }

  /** Removes every record up to and including `seq`; resolves once that is on disk. */
  async ack(seq: number): Promise<void> {
    this.assertOpen();
    if (!Number.isSafeInteger(seq) || seq < 0 || seq >= this.meta.nextSeq) {
      throw new EipError(
        'INVALID_ARGUMENT',
        `cannot ack seq ${seq}: the outbox has stored nothing at or above ${this.meta.nextSeq}`,
        { details: { seq } },
      );
    }
    // Acks that arrive while a batch is written are folded into the next one: only the highest
    // matters, since an ack covers everything below it.
    this.ackUpTo = Math.max(this.ackUpTo, seq);
    return new Promise((resolve, reject) => {
      this.ackWaiters.push({ resolve, reject });
      if (this.ackWaiters.length === 1) void this.enqueue(() => this.commitAcks());
    });
  }

  stats(): OutboxStats {
    const { depth, bytes, appended, acked, dropped, corrupt, commits } = this.meta;
    return {
      depth,
      bytes,
      appended,
      acked,
      dropped,
      corrupt,
      commits,
      oldestSeq: this.oldest,
      nextSeq: this.allocated,
    };
  }

  /** Waits for the writes under way, then closes the store; later calls are refused. */
  close(): Promise<void> {
    this.closed ??= this.jobs.then(() => this.db.close());
    return this.closed;
  }

  private assertOpen(): void {
    if (this.closed !== undefined) {
      throw new EipError('IO_ERROR', `the outbox at ${this.dir} is closed`, {
        details: { dir: this.dir },
      });
    }
  }

  /** Runs jobs one at a time, in the order they were queued. */
  private enqueue<T>(job: () => Promise<T>): Promise<T> {
    const run = this.jobs.then(job);
    this.jobs = run.catch(() => undefined);
    return run;
  }

  private async io<T>(what: string, operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (error) {
      throw storeFailure(`${what} the outbox at ${this.dir}`, error, this.dir, true);
    }
  }

  private async commitAppends(): Promise<void> {
    const batch = this.pendingAppends;
    this.pendingAppends = [];
    try {
      const next = { ...this.meta };
      const ops: Op[] = [];
      const incoming = batch.reduce((sum, a) => sum + a.size, 0);
      let oldest = this.oldest;
      let droppedFrom: number | undefined;
      if (next.bytes + incoming > this.maxBytes) {
        // removeOldest brings next.bytes down as it goes.
        const removed = await this.removeOldest(
          next,
          ops,
          () => next.bytes + incoming > this.maxBytes,
        );
        next.dropped += removed.count;
        droppedFrom = removed.first;
        oldest = removed.nextOldest;
      }
      let excess = next.bytes + incoming - this.maxBytes;
      // A batch can overflow on its own (many appends at once into a small outbox): its own
      // oldest records go then, never written, but counted as dropped all the same.
      for (const a of batch) {
        next.appended++;
        next.nextSeq = a.seq + 1;
        if (excess > 0) {
          excess -= a.size;
          next.dropped++;
          droppedFrom ??= a.seq;
          continue;
        }
        ops.push({ type: 'put', key: a.key, value: a.value });
        next.bytes += a.size;
        next.depth++;
        oldest ??= a.seq;
      }
      await this.commit(next, ops);
      this.oldest = oldest;
      if (droppedFrom !== undefined) {
        const dropped = next.dropped - this.meta.dropped;
        this.logger.warn(
          { dir: this.dir, dropped, fromSeq: droppedFrom, maxBytes: this.maxBytes },
          `outbox full: dropped the ${dropped} oldest records, from seq ${droppedFrom}`,
        );
      }
      this.meta = next;
      for (const a of batch) a.resolve(a.seq);
    } catch (error) {
      for (const a of batch) a.reject(error);
    }
  }

  private async commitAcks(): Promise<void> {
    const waiters = this.ackWaiters;
    this.ackWaiters = [];
    const upTo = this.ackUpTo;
    try {
      const next = { ...this.meta };
      const ops: Op[] = [];
      const removed = await this.removeOldest(next, ops, (seq) => seq <= upTo);
      if (removed.count > 0) {
        next.acked += removed.count;
        await this.commit(next, ops);
        this.meta = next;
        this.oldest = removed.nextOldest;
      }
      for (const w of waiters) w.resolve();
    } catch (error) {
      for (const w of waiters) w.reject(error);
    }
  }

  private removeCorrupt(seqs: readonly number[]): Promise<void> {
    return this.enqueue(async () => {
      const next = { ...this.meta };
      const ops: Op[] = [];
      for (const seq of seqs) {
        const key = recordKey(seq);
        const value = await this.io('reading', () => this.db.get(key));
        if (value === undefined) continue; // acked or dropped since it was read
        ops.push({ type: 'del', key });
        next.bytes -= storedSize(key, value);
        next.depth--;
        next.corrupt++;
      }
      if (ops.length === 0) return;
      await this.commit(next, ops);
      this.meta = next;
      if (this.oldest !== undefined && seqs.includes(this.oldest)) {
        this.oldest = await this.io('reading', () => firstSeq(this.db, this.oldest ?? 0));
      }
    });
  }

  /**
   * Deletes records from the oldest on while `take` says so, into `ops`, and keeps `next`'s
   * sizes in step. Reading from the oldest known seq, not from the start of the key range, skips
   * the deleted keys LevelDB keeps until compaction: a queue that is read from the front would
   * otherwise walk over all of them.
   */
  private async removeOldest(
    next: Meta,
    ops: Op[],
    take: (seq: number, size: number) => boolean,
  ): Promise<{ count: number; first: number | undefined; nextOldest: number | undefined }> {
    let count = 0;
    let first: number | undefined;
    const emptied = () => {
      // Nothing is left below or above: the sizes are exactly zero, whatever they said before.
      next.bytes = 0;
      next.depth = 0;
      return { count, first, nextOldest: undefined };
    };
    if (this.oldest === undefined) return emptied();
    const iterator = this.db.iterator({ gte: recordKey(this.oldest), lt: RECORDS_END });
    try {
      for (;;) {
        const entries = await this.io('reading', () => iterator.nextv(256));
        if (entries.length === 0) return emptied();
        for (const [key, value] of entries) {
          const seq = seqOf(key);
          const size = storedSize(key, value);
          if (!take(seq, size)) return { count, first, nextOldest: seq };
          ops.push({ type: 'del', key });
          next.bytes -= size;
          next.depth--;
          count++;
          first ??= seq;
        }
      }
    } finally {
      await iterator.close();
    }
  }

  private commit(next: Meta, ops: Op[]): Promise<void> {
    next.commits++;
    ops.push({ type: 'put', key: META_KEY, value: encodeMeta(next) });
    return this.io('writing', () => this.db.batch(ops, SYNC));
  }
}

async function firstSeq(db: Db, from: number): Promise<number | undefined> {
  const [key] = await db.keys({ gte: recordKey(from), lt: RECORDS_END, limit: 1 }).all();
  return key === undefined ? undefined : seqOf(key);
}

interface Opening {
  readonly dir: string;
  readonly now: () => number;
  readonly logger: Logger;
}

interface Loaded {
  readonly meta: Meta;
  readonly oldest: number | undefined;
}

async function load(db: Db, opening: Opening): Promise<Loaded> {
  const { dir, now, logger } = opening;
  const stored = await db.get(META_KEY);
  const meta = stored === undefined ? undefined : decodeMeta(stored);
  const oldest = await firstSeq(db, 0);
  if (typeof meta === 'object') return { meta, oldest };
  if (meta === undefined && oldest === undefined)
    return { meta: emptyMeta(seedSeq(now())), oldest };
  logger.error(
    { dir, problem: meta ?? 'missing' },
    `the outbox's bookkeeping entry is unreadable (${meta ?? 'missing'}): rebuilding it from the records; its counters start again at 0`,
  );
  return rebuild(db, opening);
}

/** Recounts the records, removing corrupt ones; used only when the bookkeeping entry is lost. */
async function rebuild(db: Db, { dir, now, logger }: Opening): Promise<Loaded> {
  const meta = emptyMeta(0);
  const ops: Op[] = [];
  let oldest: number | undefined;
  let last = -1;
  for await (const [key, value] of db.iterator({ gte: RECORDS_START, lt: RECORDS_END })) {
    last = seqOf(key);
    try {
      decodeRecord(key, value);
    } catch (error) {
      logger.error({ dir, seq: last }, `${(error as Error).message}; removed`);
      ops.push({ type: 'del', key });
      meta.corrupt++;
      continue;
    }
    oldest ??= last;
    meta.depth++;
    meta.bytes += storedSize(key, value);
  }
  // Above the last stored record, and above what an acked, deleted one may have had (seedSeq).
  meta.nextSeq = Math.max(last + 1, seedSeq(now()));
  meta.commits++;
  ops.push({ type: 'put', key: META_KEY, value: encodeMeta(meta) });
  await db.batch(ops, SYNC);
  return { meta, oldest };
}

function storeFailure(what: string, error: unknown, dir: string, retryable = false): EipError {
  if (isEipError(error)) return error;
  return new EipError('IO_ERROR', `${what} failed: ${(error as Error).message}`, {
    retryable,
    cause: error,
    details: { dir },
  });
}
