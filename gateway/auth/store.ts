/**
 * Records in server memory under opaque random ids, each for a fixed time: signed-in sessions and
 * sign-ins in progress. Memory only, by design: a gateway restart signs everyone out, and no
 * token or session ever sits in a browser or on disk.
 *
 * Every record lives the same time, so insertion order is expiry order: expired records are swept
 * from the front as new ones come, and `maxEntries` caps what strangers can make us hold (each
 * GET /auth/login makes a record before anyone has signed in).
 */
import { randomBytes } from 'node:crypto';

export interface ExpiringStoreOptions {
  readonly ttlMs: number;
  readonly maxEntries: number;
  /** Unix ms. */
  readonly clock: () => number;
}

interface Entry<T> {
  readonly value: T;
  readonly expiresAt: number;
}

export type Lookup<T> =
  | { readonly found: 'live'; readonly value: T; readonly expiresAt: number }
  | { readonly found: 'expired' | 'none' };

export class ExpiringStore<T> {
  private readonly entries = new Map<string, Entry<T>>();

  constructor(private readonly options: ExpiringStoreOptions) {}

  /** Keeps `value`; returns its id: 256 random bits, base64url. */
  add(value: T): string {
    const now = this.options.clock();
    for (const [id, entry] of this.entries) {
      if (entry.expiresAt > now && this.entries.size < this.options.maxEntries) break;
      this.entries.delete(id);
    }
    const id = randomBytes(32).toString('base64url');
    this.entries.set(id, { value, expiresAt: now + this.options.ttlMs });
    return id;
  }

  get(id: string | undefined): Lookup<T> {
    if (id === undefined) return { found: 'none' };
    const entry = this.entries.get(id);
    if (entry === undefined) return { found: 'none' };
    if (entry.expiresAt <= this.options.clock()) {
      this.entries.delete(id);
      return { found: 'expired' };
    }
    return { found: 'live', value: entry.value, expiresAt: entry.expiresAt };
  }

  /** Gets and forgets: a record that must be used once. */
  take(id: string | undefined): Lookup<T> {
    const lookup = this.get(id);
    if (id !== undefined) this.entries.delete(id);
    return lookup;
  }

  delete(id: string | undefined): void {
    if (id !== undefined) this.entries.delete(id);
  }
}
