/**
 * The gateway as the browser test sees it, on one origin: the dashboard's handler, the API server
 * behind a proxy, and a stand-in for the sign-in.
 *
 * The sign-in here is fixed (`session`), not the gateway's OpenID Connect one, which is written
 * separately (gateway/auth/): this test is about the page, which only reads GET /auth/me, links
 * to /auth/login and posts to /auth/logout.
 *
 * The proxy also lets the test act on the live stream as a network would: drop it, hold the
 * browser's reconnections, see what they send (Last-Event-ID) and what they get.
 */
import {
  type ClientRequest,
  createServer,
  type IncomingMessage,
  request,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { dashboardHandler } from '../../gateway/dashboard/serve.js';
import type { Session } from '../../gateway/dashboard/wire.js';

export interface Site {
  readonly url: string;
  /** What GET /auth/me answers; null: 401, no one signed in. */
  session: Session | null;
  /** Where /api/* goes; a test swaps it to restart the API. */
  apiUrl: string;
  /** The Last-Event-ID of each request for the stream, in order; null when it sent none. */
  readonly streamRequests: (string | null)[];
  /** Names and ids of the events the browser was sent, in order. */
  readonly streamEvents: { readonly event: string; readonly id: string }[];
  /** Ends every open stream, as a restarting gateway or a proxy's idle timeout does. */
  dropStreams(): void;
  /**
   * How requests for the stream are met: passed on; kept waiting (the gateway out of reach; they
   * go on when set back to 'open'); or answered 502, as a proxy does while the gateway is down.
   */
  setStreams(mode: 'open' | 'hold' | 'refuse'): void;
  close(): Promise<void>;
}

/** Records the events of a stream as it passes through, frame by frame. */
function eventTap(into: Site['streamEvents']): (chunk: Buffer) => void {
  let pending = '';
  return (chunk) => {
    pending += chunk.toString('utf8');
    let end = pending.indexOf('\n\n');
    while (end >= 0) {
      const frame = pending.slice(0, end);
      pending = pending.slice(end + 2);
      const id = /^id: (.*)$/m.exec(frame)?.[1];
      const event = /^event: (.*)$/m.exec(frame)?.[1];
      if (id !== undefined && event !== undefined) into.push({ event, id });
      end = pending.indexOf('\n\n');
    }
  };
}

export async function startSite(apiUrl: string): Promise<Site> {
  const dashboard = dashboardHandler();
  /** Open streams, each with its request to the API. */
  const open = new Map<ServerResponse, ClientRequest>();
  let mode: 'open' | 'hold' | 'refuse' = 'open';
  let held: (() => void)[] = [];

  const proxy = (req: IncomingMessage, res: ServerResponse, tap?: (chunk: Buffer) => void) => {
    const upstream: ClientRequest = request(
      new URL(req.url ?? '/', site.apiUrl),
      { method: req.method, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        if (tap) answer.on('data', tap);
        answer.pipe(res);
      },
    );
    upstream.once('error', () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    res.once('close', () => upstream.destroy());
    req.pipe(upstream);
    return upstream;
  };

  const stream = (req: IncomingMessage, res: ServerResponse) => {
    const lastId = req.headers['last-event-id'];
    site.streamRequests.push(typeof lastId === 'string' ? lastId : null);
    if (mode === 'refuse') {
      res.writeHead(502);
      res.end();
      return;
    }
    open.set(res, proxy(req, res, eventTap(site.streamEvents)));
    res.once('close', () => open.delete(res));
  };

  const server: Server = createServer((req, res) => {
    const { pathname } = new URL(req.url ?? '/', 'http://site');
    if (pathname === '/auth/me') {
      const body = JSON.stringify(site.session ?? { error: 'not signed in' });
      res.writeHead(site.session === null ? 401 : 200, { 'content-type': 'application/json' });
      res.end(body);
    } else if (pathname === '/auth/logout' && req.method === 'POST') {
      site.session = null;
      res.writeHead(303, { location: '/' });
      res.end();
    } else if (pathname === '/api/events') {
      if (mode === 'hold') held.push(() => stream(req, res));
      else stream(req, res);
    } else if (pathname.startsWith('/api/')) {
      proxy(req, res);
    } else if (!dashboard(req, res)) {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  const site: Site = {
    url: `http://127.0.0.1:${port}`,
    session: null,
    apiUrl,
    streamRequests: [],
    streamEvents: [],
    dropStreams: () => {
      for (const [res, upstream] of open) {
        upstream.destroy();
        res.end();
      }
    },
    setStreams: (next) => {
      mode = next;
      if (next === 'hold') return;
      const waiting = held;
      held = [];
      for (const go of waiting) go();
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
  return site;
}
