/**
 * The park's MQTT broker: aedes inside the gateway, with every device logging in (credentials.ts)
 * and every publish, subscription and delivery checked against the ACL (acl.ts).
 *
 * - A publish the ACL refuses ends the client's connection (MQTT 3.1.1 has no negative PUBACK),
 *   is logged with the reason and counted. Wills go through the same check when they fire, so a
 *   client cannot leave a last will on another's topic (aedes asks authorizePublish for wills).
 * - A subscription the ACL refuses is answered with a failure code (0x80) in the SUBACK; the
 *   connection stays.
 * - Every delivery, live or retained, passes authorizeForward: defence in depth should a
 *   subscription ever reach further than the ACL meant.
 */
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { Aedes, type Client } from 'aedes';
import { createWebSocketStream, WebSocketServer } from 'ws';
import { EipError } from '../../core/errors.js';
import { type Logger, silentLogger } from '../../core/logger.js';
import { describePrincipal, mayPublish, mayRead, maySubscribe, type Principal } from './acl.js';
import type { Credentials } from './credentials.js';

export interface Listen {
  readonly host: string;
  /** 0 picks a free port. */
  readonly port: number;
}

export interface TlsListen extends Listen {
  /** PEM files: the broker's certificate and key. */
  readonly cert: string;
  readonly key: string;
  /**
   * A CA whose certificates log clients in without a password: the certificate's common name is
   * the user name, which the credentials file must list with `certificate: true`.
   */
  readonly ca?: string;
}

export interface ParkBrokerOptions {
  readonly credentials: Credentials;
  /** MQTT over TCP. */
  readonly tcp?: Listen;
  /** MQTT over WebSocket (path /mqtt), for browsers and firewalls that pass HTTP only. */
  readonly ws?: Listen;
  /** MQTT over TLS. */
  readonly tls?: TlsListen;
  readonly logger?: Logger;
}

export interface BrokerCounters {
  refusedLogins: number;
  refusedPublishes: number;
  refusedSubscriptions: number;
  /** Deliveries held back by authorizeForward. */
  withheld: number;
}

export interface ParkBroker {
  readonly aedes: Aedes;
  /** The address of each listener that was asked for, e.g. mqtt://127.0.0.1:1883. */
  readonly urls: { readonly tcp?: string; readonly ws?: string; readonly tls?: string };
  readonly counters: BrokerCounters;
  close(): Promise<void>;
}

/** CONNACK return code 4 (MQTT 3.1.1): bad user name or password. */
const BAD_CREDENTIALS = 4;

export async function startParkBroker(options: ParkBrokerOptions): Promise<ParkBroker> {
  if (!options.tcp && !options.ws && !options.tls)
    throw new EipError('INVALID_ARGUMENT', 'the broker needs at least one listener');
  const logger = options.logger ?? silentLogger;
  const counters: BrokerCounters = {
    refusedLogins: 0,
    refusedPublishes: 0,
    refusedSubscriptions: 0,
    withheld: 0,
  };
  const principals = new WeakMap<Client, Principal>();
  const aedes = await Aedes.createBroker({
    authenticate(client, username, password, done) {
      // A certificate the CA vouched for and the credentials list logs in; else the password.
      const name = certificateName(client);
      const byCertificate = name === undefined ? null : options.credentials.byCertificate(name);
      const check = byCertificate
        ? Promise.resolve(byCertificate)
        : options.credentials.check(username, password);
      check.then(
        (principal) => {
          if (!principal) {
            counters.refusedLogins++;
            logger.warn({ client: client.id, username }, 'MQTT login refused');
            done(
              Object.assign(new Error('bad user name or password'), {
                returnCode: BAD_CREDENTIALS,
              }),
              false,
            );
            return;
          }
          principals.set(client, principal);
          done(null, true);
        },
        (error: Error) => {
          counters.refusedLogins++;
          logger.error({ client: client.id, err: error }, 'MQTT login could not be checked');
          done(Object.assign(error, { returnCode: BAD_CREDENTIALS }), false);
        },
      );
    },
    authorizePublish(client, packet, callback) {
      if (!client) {
        callback(null); // the broker's own messages ($SYS)
        return;
      }
      const principal = principals.get(client);
      const verdict = principal ? mayPublish(principal, packet.topic) : 'not logged in';
      if (verdict === null) {
        callback(null);
        return;
      }
      counters.refusedPublishes++;
      logger.warn(
        { client: client.id, topic: packet.topic, who: principal && describePrincipal(principal) },
        `publish refused: ${verdict}`,
      );
      callback(new EipError('UNAUTHORIZED', verdict));
    },
    authorizeSubscribe(client, subscription, callback) {
      const principal = principals.get(client);
      const verdict = principal ? maySubscribe(principal, subscription.topic) : 'not logged in';
      if (verdict === null) {
        callback(null, subscription);
        return;
      }
      counters.refusedSubscriptions++;
      logger.warn(
        { client: client.id, filter: subscription.topic },
        `subscription refused: ${verdict}`,
      );
      callback(null, null); // a failure code in the SUBACK, not a dropped connection
    },
    authorizeForward(client, packet) {
      const principal = principals.get(client);
      if (principal && mayRead(principal, packet.topic)) return packet;
      counters.withheld++;
      return null;
    },
  });
  const servers: { close(callback: () => void): unknown }[] = [];
  const urls: { tcp?: string; ws?: string; tls?: string } = {};
  // aedes.close() drops every connection; each server's close() then stops accepting.
  const close = async () => {
    await new Promise<void>((resolve) => aedes.close(() => resolve()));
    await Promise.all(
      servers.map((server) => new Promise((resolve) => server.close(() => resolve(undefined)))),
    );
  };
  try {
    if (options.tcp) {
      const server = createServer({ noDelay: true }, aedes.handle);
      urls.tcp = `mqtt://${await listen(server, options.tcp, 'MQTT')}`;
      servers.push(server);
    }
    if (options.ws) {
      const http = createHttpServer((_, response) =>
        response
          .writeHead(426, { 'content-type': 'text/plain' })
          .end('MQTT over WebSocket: /mqtt\n'),
      );
      const wss = new WebSocketServer({ server: http, path: '/mqtt' });
      wss.on('connection', (socket, request) =>
        aedes.handle(createWebSocketStream(socket), request),
      );
      urls.ws = `ws://${await listen(http, options.ws, 'MQTT over WebSocket')}/mqtt`;
      servers.push({ close: (callback) => wss.close(() => http.close(callback)) });
    }
    if (options.tls) {
      const server = createTlsServer(
        {
          cert: readPem(options.tls.cert),
          key: readPem(options.tls.key),
          ...(options.tls.ca && { ca: readPem(options.tls.ca), requestCert: true }),
          // A client without a certificate still logs in with its password.
          rejectUnauthorized: false,
        },
        aedes.handle,
      );
      server.on('secureConnection', (socket) => socket.setNoDelay(true));
      urls.tls = `mqtts://${await listen(server, options.tls, 'MQTT over TLS')}`;
      servers.push(server);
    }
  } catch (error) {
    await close();
    throw error;
  }
  return {
    aedes,
    urls,
    counters,
    close,
  };
}

/** Listens, and returns HOST:PORT as clients dial it. */
async function listen(
  server: {
    listen(port: number, host: string, callback: () => void): unknown;
    once(event: 'error', listener: (error: Error) => void): unknown;
    address(): unknown;
  },
  at: Listen,
  what: string,
): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error) =>
      reject(
        new EipError(
          'IO_ERROR',
          `${what} cannot listen on ${at.host}:${at.port}: ${error.message}`,
          {
            cause: error,
          },
        ),
      ),
    );
    server.listen(at.port, at.host, resolve);
  });
  const address = server.address() as { port?: number } | null;
  const host = at.host.includes(':') ? `[${at.host}]` : at.host;
  return `${host}:${address?.port ?? at.port}`;
}

function readPem(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    throw new EipError('INVALID_ARGUMENT', `cannot read ${file}: ${(error as Error).message}`);
  }
}

/** The common name of a client certificate the CA vouched for, or undefined. */
function certificateName(client: Client): string | undefined {
  const socket = client.conn as Partial<TLSSocket>;
  if (!socket.authorized || typeof socket.getPeerCertificate !== 'function') return undefined;
  const subject = socket.getPeerCertificate().subject as { CN?: string | string[] } | undefined;
  const cn = subject?.CN;
  return typeof cn === 'string' ? cn : undefined;
}
