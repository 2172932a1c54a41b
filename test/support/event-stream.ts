/** A minimal server-sent events client over node:http, for tests of the gateway's live stream. */
import { type IncomingMessage, request } from 'node:http';

export interface StreamEvent {
  readonly event: string;
  readonly id: string | undefined;
  readonly data: string;
}

export interface EventStreamClient {
  readonly response: IncomingMessage;
  readonly events: StreamEvent[];
  /** Comment lines (": heartbeat"), without the colon. */
  readonly comments: string[];
  /** Whether the server ended the stream. */
  ended(): boolean;
  close(): void;
}

/** Connects; resolves once the response headers arrived. */
export function openEventStream(
  url: string,
  headers: Readonly<Record<string, string>> = {},
): Promise<EventStreamClient> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { accept: 'text/event-stream', ...headers } });
    req.once('error', reject);
    req.once('response', (response) => {
      const events: StreamEvent[] = [];
      const comments: string[] = [];
      let ended = false;
      let buffer = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        buffer += chunk;
        let end = buffer.indexOf('\n\n');
        while (end >= 0) {
          const fields = {
            event: 'message',
            id: undefined as string | undefined,
            data: [] as string[],
          };
          for (const line of buffer.slice(0, end).split('\n')) {
            if (line.startsWith(':')) comments.push(line.slice(1).trim());
            else if (line.startsWith('event: ')) fields.event = line.slice(7);
            else if (line.startsWith('id: ')) fields.id = line.slice(4);
            else if (line.startsWith('data: ')) fields.data.push(line.slice(6));
          }
          if (fields.data.length > 0) {
            events.push({ event: fields.event, id: fields.id, data: fields.data.join('\n') });
          }
          buffer = buffer.slice(end + 2);
          end = buffer.indexOf('\n\n');
        }
      });
      response.on('end', () => {
        ended = true;
      });
      response.on('error', () => {
        ended = true;
      });
      resolve({
        response,
        events,
        comments,
        ended: () => ended,
        close: () => req.destroy(),
      });
    });
    req.end();
  });
}
