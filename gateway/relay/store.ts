/**
 * The relay's durable state: one JSON record per key in LevelDB (classic-level), mirrored in
 * memory so reads never wait on disk. A `put` resolves once its record is synced; puts made while
 * a batch is being written, or in the same tick, are committed together in one synced batch, so
 * many agreements in flight cost one fsync per batch, not one each (the edge outbox does the same).
 *
 * Records are small (an agreement with its signatures and transactions is about 2 kB) and the
 * relay needs all open ones at hand; settled ones are kept so a replayed agreement is recognised.
 */
import { ClassicLevel } from 'classic-level';
import { EipError } from '../../core/errors.js';

interface Pending {
  readonly key: string;
  readonly value: string | null;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

export class JsonStore<T> {
  private readonly pending: Pending[] = [];
  private writing: Promise<void> | undefined;
  private commits = 0;

  private constructor(
    private readonly db: ClassicLevel<string, string>,
    private readonly records: Map<string, T>,
    private readonly where: string,
  ) {}

  /** `revive` makes each stored record's value as it is read at open (the parsed JSON by default). */
  static async open<T>(
    dir: string,
    revive: (stored: unknown) => T = (stored) => stored as T,
  ): Promise<JsonStore<T>> {
    const db = new ClassicLevel<string, string>(dir, { valueEncoding: 'utf8' });
    try {
      await db.open();
    } catch (error) {
      throw new EipError('IO_ERROR', `cannot open the relay store at ${dir}: ${message(error)}`, {
        cause: error,
      });
    }
    const records = new Map<string, T>();
    for await (const [key, value] of db.iterator()) records.set(key, revive(JSON.parse(value)));
    return new JsonStore(db, records, dir);
  }

  get(key: string): T | undefined {
    return this.records.get(key);
  }

  values(): IterableIterator<T> {
    return this.records.values();
  }

  get size(): number {
    return this.records.size;
  }

  /** Synced batches written; puts / commits shows how well writes are grouped. */
  get commitCount(): number {
    return this.commits;
  }

  /** Stores `value` (visible to `get` at once) and resolves once it is on disk. */
  put(key: string, value: T): Promise<void> {
    this.records.set(key, value);
    return this.enqueue(key, JSON.stringify(value));
  }

  delete(key: string): Promise<void> {
    this.records.delete(key);
    return this.enqueue(key, null);
  }

  async close(): Promise<void> {
    while (this.writing) await this.writing;
    await this.db.close();
  }

  private enqueue(key: string, value: string | null): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pending.push({ key, value, resolve, reject });
      // One writer at a time: what arrives meanwhile waits for the next batch.
      this.writing ??= Promise.resolve().then(() => this.drain());
    });
  }

  private async drain(): Promise<void> {
    while (this.pending.length > 0) {
      const batch = this.pending.splice(0);
      try {
        await this.db.batch(
          batch.map((p) =>
            p.value === null
              ? { type: 'del' as const, key: p.key }
              : { type: 'put' as const, key: p.key, value: p.value },
          ),
          { sync: true },
        );
        this.commits++;
        for (const p of batch) p.resolve();
      } catch (error) {
        const failure = new EipError(
          'IO_ERROR',
          `writing the relay store at ${this.where} failed: ${message(error)}`,
          { cause: error, retryable: true },
        );
        for (const p of batch) p.reject(failure);
      }
    }
    this.writing = undefined;
  }
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
