/**
 * The live stream, as server-sent events: the indexer's change events (agreement, delivery,
 * settlement, block) in the JSON of the HTTP routes. Every event has an id, "EPOCH-N", and the
 * last `replayEvents` are kept, so an EventSource that reconnects (it sends Last-Event-ID by
 * itself) gets what it missed. When that is no longer kept, the id is from before a gateway
 * restart, or the chain reorganised, it gets a `reset` event instead: refetch what you show.
 * The epoch changes at each start and reorganisation, which is what makes older ids unusable.
 *
 * Each connection sees the events its caller's scope lets through (scope.ts), narrowed as the
 * routes narrow them, and so does its replay; ids are shared by all connections, so a plant's
 * stream has gaps in its sequence, which Last-Event-ID does not mind.
 *
 * Comments every `heartbeatMs` keep proxies from closing an idle stream and let a client notice
 * a dead one. A client that does not read (more than MAX_BUFFERED unsent) is disconnected: it
 * reconnects with its last id and catches up from the ring, instead of holding gateway memory.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../../core/logger.js';
import type { IndexerEvents } from '../indexer/indexer.js';
import type { Change, Scope } from './scope.js';
import { agreementJson, blockJson, deliveryJson, type NameOf, settlementJson } from './views.js';

/** The indexer's change events, as the stream listens to them (an `Indexer` is one). */
export interface IndexerFeed {
  on<K extends keyof IndexerEvents>(
    event: K,
    listener: (...args: IndexerEvents[K]) => void,
  ): unknown;
  off<K extends keyof IndexerEvents>(
    event: K,
    listener: (...args: IndexerEvents[K]) => void,
  ): unknown;
}

export interface EventStreamOptions {
  readonly feed: IndexerFeed;
  readonly logger: Logger;
  readonly heartbeatMs: number;
  readonly replayEvents: number;
  readonly nameOf: NameOf;
}

const MAX_BUFFERED = 1 << 20;
/** How long an EventSource waits before reconnecting. */
const RETRY_MS = 2000;

interface Client {
  readonly scope: Scope;
  readonly authorized: () => boolean;
}

interface Kept {
  readonly seq: number;
  readonly change: Change;
}

function dataOf(change: Change, nameOf: NameOf): unknown {
  switch (change.event) {
    case 'agreement':
      return agreementJson(change.record, nameOf);
    case 'delivery':
      return deliveryJson(change.record);
    case 'settlement':
      return settlementJson(change.record, nameOf);
    case 'block':
      return blockJson(change.record);
  }
}

function newEpoch(): string {
  return randomBytes(4).toString('hex');
}

export class EventStream {
  private epoch = newEpoch();
  private seq = 0;
  private kept: Kept[] = [];
  /** Each connection, what its caller may see, and whether the caller still may. */
  private readonly clients = new Map<ServerResponse, Client>();
  private readonly heartbeat: NodeJS.Timeout;
  private readonly detach: (() => void)[] = [];

  constructor(private readonly options: EventStreamOptions) {
    this.forward('agreement');
    this.forward('delivery');
    this.forward('settlement');
    this.forward('block');
    const onReorg = () => this.reset();
    options.feed.on('reorg', onReorg);
    this.detach.push(() => options.feed.off('reorg', onReorg));
    this.heartbeat = setInterval(
      () => this.broadcast(() => ': heartbeat\n\n'),
      options.heartbeatMs,
    );
  }

  /**
   * Serves one client: the replay its Last-Event-ID asks for, then live events in its scope,
   * until `authorized` says no more (its session ended: the stream ends at the next event or
   * heartbeat, and the EventSource's reconnection meets a 401).
   */
  attach(
    request: IncomingMessage,
    response: ServerResponse,
    scope: Scope,
    authorized: () => boolean,
  ): void {
    response.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      // A buffering reverse proxy (nginx) would hold events back.
      'x-accel-buffering': 'no',
    });
    response.write(`retry: ${RETRY_MS}\n\n`);
    const lastId = request.headers['last-event-id'];
    if (typeof lastId === 'string') response.write(this.missedSince(lastId, scope));
    this.clients.set(response, { scope, authorized });
    response.on('close', () => this.clients.delete(response));
  }

  /** Ends every stream; an EventSource then retries, and finds the next server or none. */
  close(): void {
    clearInterval(this.heartbeat);
    for (const detach of this.detach) detach();
    for (const client of this.clients.keys()) client.end();
    this.clients.clear();
  }

  private forward<K extends Change['event']>(event: K): void {
    const { feed } = this.options;
    const listener = (...[record]: IndexerEvents[K]) =>
      this.publish({ event, record } as Extract<Change, { event: K }>);
    feed.on(event, listener);
    this.detach.push(() => feed.off(event, listener));
  }

  private publish(change: Change): void {
    this.seq++;
    const kept = { seq: this.seq, change };
    this.kept.push(kept);
    if (this.kept.length > this.options.replayEvents) this.kept.shift();
    // Scopes that let the change through unchanged (the operator's) share one serialisation.
    const frames = new Map<Change, string>();
    this.broadcast((scope) => {
      const seen = scope.change(change);
      if (seen === null) return null;
      const frame = frames.get(seen) ?? this.frame({ seq: kept.seq, change: seen });
      frames.set(seen, frame);
      return frame;
    });
  }

  private frame({ seq, change }: Kept): string {
    const data = JSON.stringify(dataOf(change, this.options.nameOf));
    return `id: ${this.epoch}-${seq}\nevent: ${change.event}\ndata: ${data}\n\n`;
  }

  /** The frames after `lastId` that `scope` lets through, or a reset when they are not all kept. */
  private missedSince(lastId: string, scope: Scope): string {
    const match = /^([0-9a-f]+)-(\d+)$/.exec(lastId.trim());
    const seq = Number(match?.[2]);
    const oldest = this.kept[0]?.seq ?? this.seq + 1;
    if (match?.[1] !== this.epoch || seq > this.seq || seq < oldest - 1) {
      return this.resetFrame(match?.[1] === this.epoch ? 'missed' : 'unknown');
    }
    return this.kept
      .filter((k) => k.seq > seq)
      .flatMap((k) => {
        const seen = scope.change(k.change);
        return seen === null ? [] : [this.frame({ seq: k.seq, change: seen })];
      })
      .join('');
  }

  /** After a reorganisation: a new epoch, and every client told to refetch. */
  private reset(): void {
    this.epoch = newEpoch();
    this.seq = 0;
    this.kept = [];
    const frame = this.resetFrame('reorg');
    this.broadcast(() => frame);
  }

  /**
   * `reason`: "missed" (more events than kept since the client's id), "unknown" (an id of
   * another run of the gateway, or from before a reorganisation), "reorg". Its id is the latest,
   * so the client's next reconnection resumes from here.
   */
  private resetFrame(reason: 'missed' | 'unknown' | 'reorg'): string {
    return `id: ${this.epoch}-${this.seq}\nevent: reset\ndata: ${JSON.stringify({ reason })}\n\n`;
  }

  /** Writes to each client what `textFor` its scope gives, if anything. */
  private broadcast(textFor: (scope: Scope) => string | null): void {
    for (const [client, { scope, authorized }] of this.clients) {
      if (!authorized()) {
        client.end();
        this.clients.delete(client);
      } else if (client.writableLength > MAX_BUFFERED) {
        this.options.logger.warn(
          { buffered: client.writableLength },
          'slow event stream client dropped',
        );
        client.destroy();
        this.clients.delete(client);
      } else {
        const text = textFor(scope);
        if (text !== null) client.write(text);
      }
    }
  }
}
