/**
 * The gateway's read-only HTTP API over the indexer: JSON routes (routes.ts) and the live event
 * stream (stream.ts) on node:http. Routes and their parameters: README.md beside this file.
 *
 * No CORS headers: the dashboard is served from this same origin, and a browser page from
 * elsewhere has no business reading the park's trades unless a deployment decides so here.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isEipError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import { NONE, parseParameters } from './params.js';
import { type IndexerView, matchPath, ROUTES } from './routes.js';
import { EventStream, type IndexerFeed } from './stream.js';

export interface ApiServerOptions {
  /** An `Indexer`. */
  readonly indexer: IndexerView & IndexerFeed;
  /** Port 0 picks a free one. */
  readonly listen: { readonly host: string; readonly port: number };
  readonly logger: Logger;
  /** Time between the event stream's keep-alive comments. */
  readonly heartbeatMs?: number;
  /** Events kept for clients that reconnect with Last-Event-ID. */
  readonly replayEvents?: number;
}

export interface ApiServer {
  /** e.g. http://127.0.0.1:8080 */
  readonly url: string;
  /** Ends every event stream and stops listening. */
  close(): Promise<void>;
}

const EVENTS_PATH = '/api/events';

interface ErrorBody {
  readonly code: string;
  readonly message: string;
  readonly parameter?: string;
}

function sendJson(
  response: ServerResponse,
  status: number,
  body: unknown,
  headers: Readonly<Record<string, string>> = {},
): void {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    // The model changes with every block: a cached answer would be stale.
    'cache-control': 'no-store',
    ...headers,
  });
  response.end(text);
}

function sendError(
  response: ServerResponse,
  status: number,
  error: ErrorBody,
  headers?: Readonly<Record<string, string>>,
): void {
  sendJson(response, status, { error }, headers);
}

export async function startApiServer(options: ApiServerOptions): Promise<ApiServer> {
  const { indexer, logger } = options;
  const stream = new EventStream({
    feed: indexer,
    logger,
    heartbeatMs: options.heartbeatMs ?? 15_000,
    replayEvents: options.replayEvents ?? 1000,
  });

  const answer = (request: IncomingMessage, response: ServerResponse): void => {
    const url = new URL(request.url ?? '/', 'http://api');
    const match = matchPath(ROUTES, url.pathname);
    const isStream = url.pathname === EVENTS_PATH;
    if (match === null && !isStream) {
      sendError(response, 404, { code: 'NOT_FOUND', message: `no route ${url.pathname}` });
      return;
    }
    if (request.method !== 'GET') {
      const message = `${request.method} is not allowed on ${url.pathname}; use GET`;
      sendError(response, 405, { code: 'METHOD_NOT_ALLOWED', message }, { allow: 'GET' });
      return;
    }
    // Authorization, when it comes (next issue), goes here and only here: resolve the caller to
    // the set of prosumer addresses it may see and pass that set on with the request; the list
    // routes then narrow their `party` filter to it, the single-item routes answer 404 for what
    // lies outside it, and the event stream drops events whose parties are all outside it.
    const query = Object.fromEntries(url.searchParams);
    if (match === null) {
      parseParameters(NONE, query);
      stream.attach(request, response);
      return;
    }
    const reply = match.route.handle(match.params, query, indexer);
    if (reply.status === 404) {
      sendError(response, 404, { code: 'NOT_FOUND', message: reply.message });
    } else {
      sendJson(response, 200, reply.body);
    }
  };

  const server = createServer((request, response) => {
    try {
      answer(request, response);
    } catch (error) {
      if (isEipError(error, 'INVALID_ARGUMENT')) {
        const { parameter } = error.details as { parameter?: string };
        sendError(response, 400, {
          code: error.code,
          message: error.message,
          ...(parameter === undefined ? {} : { parameter }),
        });
        return;
      }
      logger.error({ err: error, url: request.url }, 'API request failed');
      sendError(response, 500, {
        code: 'INTERNAL',
        message: 'internal error; see the gateway log',
      });
    }
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.listen.port, options.listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { address, port } = server.address() as AddressInfo;
  const host = address.includes(':') ? `[${address}]` : address;
  const url = `http://${host}:${port}`;
  logger.info({ url }, 'API listening');

  return {
    url,
    close: () =>
      new Promise<void>((resolve, reject) => {
        stream.close();
        server.close((error) => (error ? reject(error) : resolve()));
        // Idle keep-alive connections would otherwise hold close() open until they time out.
        server.closeAllConnections();
      }),
  };
}
