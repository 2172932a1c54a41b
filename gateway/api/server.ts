/**
 * The gateway's read-only HTTP API over the indexer: JSON routes (routes.ts) and the live event
 * stream (stream.ts) on node:http. Routes and their parameters: README.md beside this file.
 *
 * With sign-in (gateway/auth, whose routes this server also serves), every /api route needs a
 * session and answers within the caller's scope (scope.ts); without it (`auth: null`, a choice
 * the caller must make explicitly) the API is open to whoever reaches it, as to the operator,
 * and says so loudly at start.
 *
 * No CORS headers: the dashboard is served from this same origin, and a browser page from
 * elsewhere has no business reading the park's trades unless a deployment decides so here.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import { isEipError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { UtilityId } from '../../core/utilities.js';
import type { AuthGate } from '../auth/auth.js';
import { OPERATOR } from '../auth/principal.js';
import type { UtilityForecast } from '../forecast/history.js';
import type { Indexer } from '../indexer/indexer.js';
import { sendError, sendJson, sendUnauthorized } from './http.js';
import { NONE, parseParameters, utility } from './params.js';
import { matchPath, ROUTES } from './routes.js';
import { type NegotiationReader, scopeOf } from './scope.js';
import { EventStream, type IndexerFeed } from './stream.js';
import type { NameOf } from './views.js';

export interface ApiServerOptions {
  /** An `Indexer`. */
  readonly indexer: Pick<Indexer, 'model' | 'status'> & IndexerFeed;
  /**
   * Sign-in (`startAuth` of gateway/auth): its routes are served here, and every /api route
   * needs its session. null: no sign-in, everything open to anyone who reaches the port, which
   * is logged as a warning at start; for a gateway on loopback only.
   */
  readonly auth: AuthGate | null;
  /** Port 0 picks a free one. */
  readonly listen: { readonly host: string; readonly port: number };
  readonly logger: Logger;
  /** Time between the event stream's keep-alive comments. */
  readonly heartbeatMs?: number;
  /** Events kept for clients that reconnect with Last-Event-ID. */
  readonly replayEvents?: number;
  /**
   * Tomorrow's demand and balance of a utility from the time series; absent without InfluxDB,
   * and then `/api/forecast` answers 503 saying so.
   */
  readonly forecast?: (utility: UtilityId) => Promise<UtilityForecast>;
  /**
   * Every negotiation the agents reported (the gateway service's log); without it the
   * /api/negotiations routes answer 503, saying so.
   */
  readonly negotiations?: NegotiationReader;
  /** Names of the park's accounts in agreements, settlements and accounts; none if omitted. */
  readonly nameOf?: NameOf;
  /** The dashboard's pages, served on the same origin (gateway/dashboard/serve.ts). */
  readonly dashboard?: (request: IncomingMessage, response: ServerResponse) => boolean;
}

export interface ApiServer {
  /** e.g. http://127.0.0.1:8080 */
  readonly url: string;
  /** Ends every event stream and stops listening. */
  close(): Promise<void>;
}

const EVENTS_PATH = '/api/events';
const FORECAST_PATH = '/api/forecast';
const FORECAST_QUERY = z.strictObject({ utility });

/** Whether the caller of `request` is (still) signed in. */
function signedIn(auth: AuthGate | null, request: IncomingMessage): boolean {
  try {
    auth?.principalOf(request);
    return true;
  } catch {
    return false;
  }
}

export async function startApiServer(options: ApiServerOptions): Promise<ApiServer> {
  const { indexer, logger } = options;
  // `auth` is required by type; a caller run unchecked (a test runner's transpiler) that leaves
  // it out gets the open API, warned below, rather than a crash at the first request.
  const auth = options.auth ?? null;
  const nameOf = options.nameOf ?? (() => null);
  const stream = new EventStream({
    feed: indexer,
    nameOf,
    logger,
    heartbeatMs: options.heartbeatMs ?? 15_000,
    replayEvents: options.replayEvents ?? 1000,
  });

  const answer = (request: IncomingMessage, response: ServerResponse): void => {
    if (auth?.handle(request, response)) return;
    if (options.dashboard?.(request, response)) return;
    const url = new URL(request.url ?? '/', 'http://api');
    const match = matchPath(ROUTES, url.pathname);
    const isStream = url.pathname === EVENTS_PATH;
    const isForecast = url.pathname === FORECAST_PATH;
    if (match === null && !isStream && !isForecast) {
      sendError(response, 404, { code: 'NOT_FOUND', message: `no route ${url.pathname}` });
      return;
    }
    // Authorization here and only here: the caller's scope is all the routes and the stream get
    // to read. Without a session this throws UNAUTHORIZED (401, below).
    const principal = auth === null ? OPERATOR : auth.principalOf(request);
    const scope = scopeOf(principal, () => indexer.model, options.negotiations ?? null);
    if (request.method !== 'GET') {
      const message = `${request.method} is not allowed on ${url.pathname}; use GET`;
      sendError(response, 405, { code: 'METHOD_NOT_ALLOWED', message }, { allow: 'GET' });
      return;
    }
    const query = Object.fromEntries(url.searchParams);
    if (isForecast) {
      // Park-wide aggregates, like /api/utilities: any signed-in caller may read them.
      void sendForecast(response, parseParameters(FORECAST_QUERY, query).utility);
      return;
    }
    if (match === null) {
      parseParameters(NONE, query);
      // A stream outlives the request that opened it, but not the session behind it.
      stream.attach(request, response, scope, () => signedIn(auth, request));
      return;
    }
    const reply = match.route.handle(match.params, query, {
      model: scope.model,
      negotiations: scope.negotiations,
      status: () => indexer.status(),
      nameOf,
    });
    if (reply.status === 404) {
      sendError(response, 404, { code: 'NOT_FOUND', message: reply.message });
    } else if (reply.status === 503) {
      sendError(response, 503, { code: 'NOT_CONFIGURED', message: reply.message });
    } else {
      sendJson(response, 200, reply.body);
    }
  };

  const sendForecast = async (response: ServerResponse, id: UtilityId): Promise<void> => {
    if (!options.forecast) {
      sendError(response, 503, {
        code: 'NOT_CONFIGURED',
        message: 'no forecast: the gateway has no InfluxDB configured (influx: in its config)',
      });
      return;
    }
    try {
      sendJson(response, 200, await options.forecast(id));
    } catch (error) {
      if (isEipError(error, 'INVALID_ARGUMENT')) {
        // Not enough history yet: a state of the park, not a bad request.
        sendError(response, 409, { code: 'NOT_ENOUGH_HISTORY', message: error.message });
        return;
      }
      logger.warn({ err: (error as Error).message, utility: id }, 'forecast failed');
      sendError(response, 502, {
        code: 'IO_ERROR',
        message: `no forecast: InfluxDB could not be read (${(error as Error).message})`,
      });
    }
  };

  const server = createServer((request, response) => {
    try {
      answer(request, response);
    } catch (error) {
      if (isEipError(error, 'UNAUTHORIZED')) {
        sendUnauthorized(response, error.message);
        return;
      }
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
  logger.info({ url, signIn: auth !== null }, 'API listening');
  if (auth === null) {
    logger.warn(
      { url },
      "API OPEN: no sign-in configured, so anyone who reaches this address reads every plant's " +
        'agreements, balances and meters; configure auth: (gateway/auth/README.md) unless it ' +
        'listens on loopback only',
    );
  }

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
