/**
 * The live stream, as server-sent events: the indexer's change events (agreement, delivery,
 * settlement, block) in the JSON of the HTTP routes. Every event has an id, "EPOCH-N", and the
 * last `replayEvents` are kept, so an EventSource that reconnects (it sends Last-Event-ID by
 * itself) gets what it missed. When that is no longer kept, the id is from before a gateway
 * restart, or the chain reorganised, it gets a `reset` event instead: refetch what you show.
 * The epoch changes at each start and reorganisation, which is what makes older ids unusable.
 *
 * Comments every `heartbeatMs` keep proxies from closing an idle stream and let a client notice
 * a dead one. A client that does not read (more than MAX_BUFFERED unsent) is disconnected: it
 * reconnects with its last id and catches up from the ring, instead of holding gateway memory.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../../core/logger.js';
import type { IndexerEvents } from '../indexer/indexer.js';
import { agreementJson, blockJson, deliveryJson, settlementJson } from './views.js';

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
}

const MAX_BUFFERED = 1 << 20;
/** How long an EventSource waits before reconnecting. */
const RETRY_MS = 2000;

interface Kept {
  readonly seq: number;
  readonly frame: string;
}

function newEpoch(): string {
  return randomBytes(4).toString('hex');
}

export class EventStream {
  private epoch = newEpoch();
  private seq = 0;
  private kept: Kept[] = [];
  private readonly clients = new Set<ServerResponse>();
  private readonly heartbeat: NodeJS.Timeout;
  private readonly detach: (() => void)[] = [];

  constructor(private readonly options: EventStreamOptions) {
    this.forward('agreement', agreementJson);
    this.forward('delivery', deliveryJson);
    this.forward('settlement', settlementJson);
    this.forward('block', blockJson);
    const onReorg = () => this.reset();
    options.feed.on('reorg', onReorg);
    this.detach.push(() => options.feed.off('reorg', onReorg));
    this.heartbeat = setInterval(() => this.broadcast(': heartbeat\n\n'), options.heartbeatMs);
  }

  /** Serves one client: the replay its Last-Event-ID asks for, then live events. */
  attach(request: IncomingMessage, response: ServerResponse): void {
    response.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      // A buffering reverse proxy (nginx) would hold events back.
      'x-accel-buffering': 'no',
    });
    response.write(`retry: ${RETRY_MS}\n\n`);
    const lastId = request.headers['last-event-id'];
    if (typeof lastId === 'string') response.write(this.missedSince(lastId));
    this.clients.add(response);
    response.on('close', () => this.clients.delete(response));
  }

  /** Ends every stream; an EventSource then retries, and finds the next server or none. */
  close(): void {
    clearInterval(this.heartbeat);
    for (const detach of this.detach) detach();
    for (const client of this.clients) client.end();
    this.clients.clear();
  }

  private forward<K extends 'agreement' | 'delivery' | 'settlement' | 'block'>(
    event: K,
    view: (...record: IndexerEvents[K]) => unknown,
  ): void {
    const { feed } = this.options;
    const listener = (...record: IndexerEvents[K]) => this.publish(event, view(...record));
    feed.on(event, listener);
    this.detach.push(() => feed.off(event, listener));
  }

  private publish(event: string, data: unknown): void {
    this.seq++;
    const frame = `id: ${this.epoch}-${this.seq}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    this.kept.push({ seq: this.seq, frame });
    if (this.kept.length > this.options.replayEvents) this.kept.shift();
    this.broadcast(frame);
  }

  /** The frames after `lastId`, or a reset when they are not all kept. */
  private missedSince(lastId: string): string {
    const match = /^([0-9a-f]+)-(\d+)$/.exec(lastId.trim());
    const seq = Number(match?.[2]);
    const oldest = this.kept[0]?.seq ?? this.seq + 1;
    if (match?.[1] !== this.epoch || seq > this.seq || seq < oldest - 1) {
      return this.resetFrame(match?.[1] === this.epoch ? 'missed' : 'unknown');
    }
    return this.kept
      .filter((k) => k.seq > seq)
      .map((k) => k.frame)
      .join('');
  }

  /** After a reorganisation: a new epoch, and every client told to refetch. */
  private reset(): void {
    this.epoch = newEpoch();
    this.seq = 0;
    this.kept = [];
    this.broadcast(this.resetFrame('reorg'));
  }

  /**
   * `reason`: "missed" (more events than kept since the client's id), "unknown" (an id of
   * another run of the gateway, or from before a reorganisation), "reorg". Its id is the latest,
   * so the client's next reconnection resumes from here.
   */
  private resetFrame(reason: 'missed' | 'unknown' | 'reorg'): string {
    return `id: ${this.epoch}-${this.seq}\nevent: reset\ndata: ${JSON.stringify({ reason })}\n\n`;
  }

  private broadcast(text: string): void {
    for (const client of this.clients) {
      if (client.writableLength > MAX_BUFFERED) {
        this.options.logger.warn(
          { buffered: client.writableLength },
          'slow event stream client dropped',
        );
        client.destroy();
        this.clients.delete(client);
      } else {
        client.write(text);
      }
    }
  }
}
