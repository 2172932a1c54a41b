/**
 * Polls a plant's meters cycle by cycle. A request that fails is retried a few times; a meter
 * that keeps failing backs off exponentially (1 s, 2 s, 4 s ... up to a minute by default) while
 * the others on the bus keep being polled; its last values stay known but are marked stale. The
 * clock is injected, so back-off is tested without waiting.
 */
import type { Profile } from '../../core/meters/profile.js';
import { type Reading, type RegisterReader, readProfile } from './reader.js';

export interface PolledMeter {
  readonly id: string;
  readonly profile: Profile;
  readonly reader: RegisterReader;
}

export interface PollerOptions {
  readonly meters: readonly PolledMeter[];
  /** Extra attempts after a failed read within one cycle. */
  readonly retries?: number;
  readonly backoffInitialMs?: number;
  readonly backoffMaxMs?: number;
  readonly now?: () => number;
}

export interface MeterState {
  readonly readings: readonly Reading[];
  /** When the readings were taken; undefined before the first success. */
  readonly readAt?: number;
  /** The last cycle that tried this meter failed: the readings are old. */
  readonly stale: boolean;
  /** Failed cycles in a row. */
  readonly failures: number;
  /** No attempt before this time (back-off). */
  readonly nextAttemptAt: number;
  readonly lastError?: Error;
}

export interface PollCounters {
  polls: number;
  errors: number;
  skippedBackingOff: number;
}

export class Poller {
  private readonly states = new Map<string, MeterState>();
  readonly counters: PollCounters = { polls: 0, errors: 0, skippedBackingOff: 0 };
  private readonly retries: number;
  private readonly backoffInitialMs: number;
  private readonly backoffMaxMs: number;
  private readonly now: () => number;

  constructor(private readonly options: PollerOptions) {
    this.retries = options.retries ?? 2;
    this.backoffInitialMs = options.backoffInitialMs ?? 1000;
    this.backoffMaxMs = options.backoffMaxMs ?? 60_000;
    this.now = options.now ?? Date.now;
    for (const meter of options.meters) {
      this.states.set(meter.id, { readings: [], stale: true, failures: 0, nextAttemptAt: 0 });
    }
  }

  state(id: string): MeterState | undefined {
    return this.states.get(id);
  }

  /** Meters whose values are not fresh. */
  staleMeters(): string[] {
    return [...this.states].filter(([, state]) => state.stale).map(([id]) => id);
  }

  /** One pass over every meter not backing off; returns the ids read successfully. */
  async cycle(): Promise<string[]> {
    const read: string[] = [];
    for (const meter of this.options.meters) {
      const state = this.states.get(meter.id) as MeterState;
      if (this.now() < state.nextAttemptAt) {
        this.counters.skippedBackingOff++;
        continue;
      }
      if (await this.poll(meter, state)) read.push(meter.id);
    }
    return read;
  }

  private async poll(meter: PolledMeter, state: MeterState): Promise<boolean> {
    let lastError: Error | undefined;
    for (let attempt = 0; attempt <= this.retries; attempt++) {
      this.counters.polls++;
      try {
        const readings = await readProfile(meter.reader, meter.profile);
        this.states.set(meter.id, {
          readings,
          readAt: this.now(),
          stale: false,
          failures: 0,
          nextAttemptAt: 0,
        });
        return true;
      } catch (error) {
        this.counters.errors++;
        lastError = error as Error;
      }
    }
    const failures = state.failures + 1;
    const delay = Math.min(this.backoffMaxMs, this.backoffInitialMs * 2 ** (failures - 1));
    this.states.set(meter.id, {
      ...state,
      stale: true,
      failures,
      nextAttemptAt: this.now() + delay,
      ...(lastError && { lastError }),
    });
    return false;
  }
}
