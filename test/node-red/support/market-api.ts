/**
 * A stand-in for the gateway's HTTP API, as gateway/api/README.md describes it, on a loopback
 * port: `/api/events` (events with ids, a short `retry`, and the missed events replayed to a
 * client that comes back with Last-Event-ID) and `/api/agreements`. Small enough to cut the
 * stream at will, which is what the reconnection tests need.
 */
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface MarketApi {
  readonly url: string;
  /** Sets what GET /api/agreements lists, newest first. */
  list(agreements: readonly unknown[]): void;
  /** Holds the answers to GET /api/agreements back until the returned call. */
  holdList(): () => void;
  /** The Last-Event-ID of each stream request, in order ('' when it sent none). */
  readonly lastEventIds: string[];
  publish(event: string, data: unknown): void;
  /** Sends `text` as the event's data as it is, JSON or not. */
  publishText(event: string, text: string): void;
  /** Drops every open stream, as a gateway restart or a network fault does. */
  cut(): void;
  close(): Promise<void>;
}

export async function startMarketApi(): Promise<MarketApi> {
  const frames: string[] = [];
  const streams = new Set<ServerResponse>();
  const lastEventIds: string[] = [];
  let listed: readonly unknown[] = [];
  let held: Promise<void> = Promise.resolve();

  const server = createServer((request, response) => {
    if (request.url?.startsWith('/api/agreements')) {
      void held.then(() => {
        response.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
        response.end(JSON.stringify({ items: listed, next: null }));
      });
      return;
    }
    if (request.url !== '/api/events') {
      response.writeHead(404).end();
      return;
    }
    const header = request.headers['last-event-id'];
    const lastId = typeof header === 'string' ? header : '';
    lastEventIds.push(lastId);
    response.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' });
    // Ids are 1, 2, ...: the frames after the client's last are frames.slice(lastId); a new
    // client gets only what comes next.
    const missed = frames.slice(lastId === '' ? frames.length : Number(lastId));
    response.write(`retry: 50\n\n${missed.join('')}`);
    streams.add(response);
    response.on('close', () => streams.delete(response));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  const publishText = (event: string, text: string) => {
    const frame = `id: ${frames.length + 1}\nevent: ${event}\ndata: ${text}\n\n`;
    frames.push(frame);
    for (const stream of streams) stream.write(frame);
  };
  return {
    url: `http://127.0.0.1:${port}`,
    list(agreements) {
      listed = agreements;
    },
    holdList() {
      let release = () => {};
      held = new Promise((resolve) => {
        release = resolve;
      });
      return release;
    },
    lastEventIds,
    publish: (event, data) => publishText(event, JSON.stringify(data)),
    publishText,
    cut() {
      for (const stream of streams) stream.destroy();
    },
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

const SELLER = '0x19E7E376E7C213B7E7e7e46cc70A5dD086DAff2A';
const BUYER = '0x1563915e194D8CfBA1943570603F7606A3115508';
export const PARTIES = { seller: SELLER, buyer: BUYER } as const;

/** An agreement in the API's JSON (gateway/api/views.ts), number `n`, active or settled. */
export function agreementView(n: number, state: 'active' | 'settled' = 'active') {
  const id = `0x${n.toString(16).padStart(64, '0')}`;
  return {
    id,
    utility: 'biogas',
    unit: 'm3',
    market: '0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512',
    kind: 'peer',
    state,
    seller: SELLER,
    buyer: BUYER,
    quantity: '100000',
    unitPrice: '35000000000000000',
    escrow: '3500000000000000000000',
    deliveryStart: 1_795_643_481,
    deliveryEnd: 1_795_657_881,
    delivered: { buyer: null, seller: null, payable: '0' },
    settlement: null,
  };
}

/** A settlement of agreement `n` (gateway/api/views.ts settlementJson). */
export function settlementView(n: number) {
  return {
    agreementId: agreementView(n).id,
    utility: 'biogas',
    seller: SELLER,
    buyer: BUYER,
    quantity: '100000',
    escrow: '3500000000000000000000',
    delivered: '60000',
    paidToSeller: '2100000000000000000000',
    refundedToBuyer: '1400000000000000000000',
  };
}
