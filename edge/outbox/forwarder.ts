/**
 * Drains the outbox to the broker, oldest first, with up to `window` messages in flight. A record
 * is acked (deleted) once it and every record before it were delivered; on a failure the forwarder
 * stops, lets what is in flight settle, waits (exponential back-off, cut short by `reconnected()`)
 * and starts again from the oldest record not acked.
 *
 * Why the receiver, dropping what it has seen, gets every record once and in order:
 * - one connection delivers the records it was given in order (TCP, and MQTT's ordering of one
 *   client's QoS 1 publishes on a topic), so what reaches the broker before a failure is a prefix
 *   of what was sent;
 * - the resend starts at the oldest record not acked, at or before the first one not delivered,
 *   and goes up in seq order again; so the first arrival of every record is in seq order, and a
 *   record arrives again only if it had arrived already;
 * - which happens when it was delivered but its ack was not yet on disk (a PUBACK lost with the
 *   connection, a failure of an earlier record in the window, or a crash between PUBACK and the
 *   ack's write). The outbox cannot tell those apart from a loss, so it sends again: at least
 *   once from here, exactly once after the receiver's dedupe by seq.
 */
import { isEipError } from '../../core/errors.js';
import { type Logger, silentLogger } from '../../core/logger.js';
import type { OutboxRecord } from './codec.js';

/** Resolves when the broker has the message (PUBACK), rejects when it may not have it. */
export type Publish = (topic: string, payload: string) => Promise<void>;

/** The part of the outbox the forwarder drains. */
export interface OutboxSource {
  peek(limit: number, after?: number): Promise<OutboxRecord[]>;
  ack(seq: number): Promise<void>;
}

export interface ForwarderOptions {
  readonly outbox: OutboxSource;
  readonly publish: Publish;
  /** Messages in flight at once; a window hides the round trip to the broker. */
  readonly window?: number;
  readonly backoffInitialMs?: number;
  readonly backoffMaxMs?: number;
  readonly logger?: Logger;
}

export interface ForwarderCounters {
  /** Messages the broker acknowledged (a resent one counts again). */
  sent: number;
  /** Drains that stopped on a failed publish or ack. */
  failures: number;
  /** Drains started again after a failure. */
  retries: number;
  /** Records the broker refused for good (not retryable): skipped, so they cannot block the rest. */
  refused: number;
}

interface Delivery {
  readonly record: OutboxRecord;
  /** Delivered, or refused for good: either way the outbox is done with it. */
  done: boolean;
  readonly settled: Promise<void>;
}

export class Forwarder {
  readonly counters: ForwarderCounters = { sent: 0, failures: 0, retries: 0, refused: 0 };
  private readonly window: number;
  private readonly backoffInitialMs: number;
  private readonly backoffMaxMs: number;
  private readonly logger: Logger;
  private running: Promise<void> | undefined;
  private stopping = false;
  /** Set by wake(): records may have come in since the last peek. */
  private woken = false;
  private interrupt: (() => void) | undefined;
  private backingOff = false;

  constructor(private readonly options: ForwarderOptions) {
    this.window = options.window ?? 32;
    this.backoffInitialMs = options.backoffInitialMs ?? 1000;
    this.backoffMaxMs = options.backoffMaxMs ?? 60_000;
    this.logger = options.logger ?? silentLogger;
  }

  start(): void {
    if (this.running !== undefined) return;
    this.stopping = false;
    this.running = this.run();
  }

  /** Stops after the messages in flight have settled (and the delivered prefix is acked). */
  async stop(): Promise<void> {
    this.stopping = true;
    this.interrupt?.();
    await this.running;
    this.running = undefined;
  }

  /**
   * New records are in the outbox (call it after an append). It ends an idle wait, not a
   * back-off: while the broker is away, every reading would otherwise be a retry.
   */
  wake(): void {
    this.woken = true;
    if (!this.backingOff) this.interrupt?.();
  }

  /** The connection is up again (call it on MQTT `connect`): retry now. */
  reconnected(): void {
    this.woken = true;
    this.interrupt?.();
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.stopping) {
      try {
        this.woken = false;
        await this.drain();
        failures = 0;
        if (!this.woken) await this.pause(undefined);
      } catch (error) {
        failures++;
        this.counters.failures++;
        const delayMs = Math.min(this.backoffMaxMs, this.backoffInitialMs * 2 ** (failures - 1));
        // Once per outage at warn, then debug: a broker away for an hour is one line, not 100.
        const log = failures === 1 ? this.logger.warn : this.logger.debug;
        log.call(
          this.logger,
          { code: isEipError(error) ? error.code : undefined, failures, delayMs },
          `outbox forwarding stopped: ${(error as Error).message}; trying again in ${delayMs} ms`,
        );
        this.backingOff = true;
        await this.pause(delayMs);
        this.backingOff = false;
        if (!this.stopping) this.counters.retries++;
      }
    }
  }

  /** Waits `ms` (or until woken, for undefined) unless stop() or an interrupt ends it first. */
  private pause(ms: number | undefined): Promise<void> {
    if (this.stopping) return Promise.resolve();
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const done = () => {
        clearTimeout(timer);
        this.interrupt = undefined;
        resolve();
      };
      if (ms !== undefined) timer = setTimeout(done, ms);
      this.interrupt = done;
    });
  }

  /** Sends until the outbox is empty; throws on the first failure, once in-flight has settled. */
  private async drain(): Promise<void> {
    const inFlight: Delivery[] = [];
    const acks: Promise<void>[] = [];
    let failure: { error: unknown } | undefined;
    let last: number | undefined;
    const fail = (error: unknown) => {
      failure ??= { error };
    };

    const ackDonePrefix = () => {
      let upTo: number | undefined;
      while (inFlight[0]?.done) upTo = inFlight.shift()?.record.seq;
      if (upTo !== undefined) {
        acks.push(this.options.outbox.ack(upTo).catch(fail));
      }
    };

    while (failure === undefined && !this.stopping) {
      const room = this.window - inFlight.length;
      let records: OutboxRecord[] = [];
      try {
        if (room > 0) records = await this.options.outbox.peek(room, last);
      } catch (error) {
        fail(error);
        break;
      }
      for (const record of records) {
        inFlight.push(this.send(record, fail));
        last = record.seq;
      }
      const head = inFlight[0];
      if (head === undefined) break; // everything sent and acked
      if (records.length < room || room === 0) await head.settled;
      ackDonePrefix();
    }
    await Promise.all(inFlight.map((d) => d.settled));
    ackDonePrefix(); // what was delivered before the failure need not go again
    await Promise.all(acks);
    if (failure !== undefined) throw failure.error;
  }

  private send(record: OutboxRecord, fail: (error: unknown) => void): Delivery {
    const delivery: Delivery = {
      record,
      done: false,
      settled: this.options.publish(record.topic, record.payload).then(
        () => {
          this.counters.sent++;
          delivery.done = true;
        },
        (error: unknown) => {
          if (isEipError(error) && !error.retryable) {
            this.counters.refused++;
            this.logger.error(
              { err: error, seq: record.seq, topic: record.topic },
              `the broker refused outbox record ${record.seq} on ${record.topic} for good: ${error.message}; skipped`,
            );
            delivery.done = true;
          } else {
            fail(error);
          }
        },
      ),
    };
    return delivery;
  }
}
