/**
 * A server-sent events client (the WHATWG "event stream" format) over node:http, for the
 * gateway's /api/events: Node 20 has no EventSource. Like a browser's, it reconnects after the
 * server's `retry` time and sends the last event id back as Last-Event-ID, so the gateway replays
 * what was missed (or answers with a `reset`).
 */
import http from 'node:http';
import https from 'node:https';
import { EipError } from '../../core/errors.js';

export interface StreamEvent {
  readonly event: string;
  readonly data: string;
  /** The last id the stream set, for Last-Event-ID; '' before any. */
  readonly id: string;
}

export interface StreamListener {
  /** Connected (again): events follow. */
  open(): void;
  event(event: StreamEvent): void;
  /** The stream ended (`error` null) or could not be opened; it retries after the retry time. */
  drop(error: EipError | null): void;
}

export interface EventSourceOptions {
  /** Until the server sends its own `retry`. */
  readonly retryMs: number;
  /**
   * A stream silent for this long is taken for dead and reopened: the gateway sends a heartbeat
   * comment every 15 s, and a peer that vanished (power cut, cable) never closes the socket.
   */
  readonly idleMs: number;
  /** Sent with every request, such as the gateway's Authorization. */
  readonly headers: Readonly<Record<string, string>>;
  /** The error an answer of HTTP `status` stands for, when there is more to say than its number. */
  readonly refusal: (status: number) => EipError | undefined;
}

/** Splits the stream into events, per the WHATWG parsing rules (any of CR, LF, CRLF ends a line). */
export class EventStreamParser {
  private buffer = '';
  private type = '';
  private data: string[] = [];
  lastId = '';
  retryMs: number | undefined;

  feed(chunk: string): StreamEvent[] {
    this.buffer += chunk;
    const events: StreamEvent[] = [];
    for (;;) {
      const end = this.buffer.search(/\r\n|\r|\n/);
      // A CR at the end of a chunk may be the first half of a CRLF: wait for the next chunk.
      if (end < 0 || (end === this.buffer.length - 1 && this.buffer.endsWith('\r'))) break;
      const line = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(this.buffer.startsWith('\r\n', end) ? end + 2 : end + 1);
      const event = this.line(line);
      if (event) events.push(event);
    }
    return events;
  }

  private line(line: string): StreamEvent | undefined {
    if (line === '') {
      const event =
        this.data.length > 0
          ? { event: this.type || 'message', data: this.data.join('\n'), id: this.lastId }
          : undefined;
      this.type = '';
      this.data = [];
      return event;
    }
    if (line.startsWith(':')) return undefined;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'event') this.type = value;
    else if (field === 'data') this.data.push(value);
    else if (field === 'id' && !value.includes('\0')) this.lastId = value;
    else if (field === 'retry' && /^\d+$/.test(value)) this.retryMs = Number(value);
    return undefined;
  }
}

/** Opens the stream and keeps it open until `close()`. */
export function openEventSource(
  url: URL,
  listener: StreamListener,
  options: EventSourceOptions,
): { close(): void } {
  let lastId = '';
  let retryMs = options.retryMs;
  let request: http.ClientRequest | undefined;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;

  const connect = () => {
    const parser = new EventStreamParser();
    parser.lastId = lastId;
    let dropped = false;
    const drop = (error: EipError | null) => {
      if (dropped || closed) return;
      dropped = true;
      lastId = parser.lastId;
      retryMs = parser.retryMs ?? retryMs;
      request?.destroy();
      listener.drop(error);
      timer = setTimeout(connect, retryMs);
    };
    const get = url.protocol === 'https:' ? https.get : http.get;
    request = get(url, {
      headers: {
        ...options.headers,
        accept: 'text/event-stream',
        'cache-control': 'no-store',
        ...(lastId !== '' && { 'last-event-id': lastId }),
      },
    });
    request.setTimeout(options.idleMs, () =>
      drop(failure(url, `no data for ${options.idleMs / 1000} s`)),
    );
    request.on('error', (error) => drop(failure(url, error.message, error)));
    request.on('response', (response) => {
      const type = response.headers['content-type'] ?? '';
      const status = response.statusCode ?? 0;
      if (status !== 200 || !type.startsWith('text/event-stream')) {
        response.resume();
        drop(options.refusal(status) ?? failure(url, `answered HTTP ${status} ${type}`.trim()));
        return;
      }
      listener.open();
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        for (const event of parser.feed(chunk)) if (!closed) listener.event(event);
      });
      response.on('error', (error) => drop(failure(url, error.message, error)));
      // After 'end' or after an 'error' that already dropped: the stream is over either way.
      response.on('close', () => drop(null));
    });
  };

  connect();
  return {
    close() {
      closed = true;
      clearTimeout(timer);
      request?.destroy();
    },
  };
}

function failure(url: URL, why: string, cause?: Error): EipError {
  return new EipError('IO_ERROR', `event stream ${url.href}: ${why}`, {
    retryable: true,
    ...(cause && { cause }),
  });
}
