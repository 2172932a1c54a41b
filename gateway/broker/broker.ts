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
import { createServer, type Server } from 'node:net';
import { Aedes, type Client } from 'aedes';
import { EipError } from '../../core/errors.js';
import { type Logger, silentLogger } from '../../core/logger.js';
import { describePrincipal, mayPublish, mayRead, maySubscribe, type Principal } from './acl.js';
import type { Credentials } from './credentials.js';

export interface ParkBrokerOptions {
  readonly credentials: Credentials;
  /** MQTT over TCP; port 0 picks a free one. */
  readonly tcp: { readonly host: string; readonly port: number };
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
  readonly url: string;
  readonly port: number;
  readonly counters: BrokerCounters;
  close(): Promise<void>;
}

/** CONNACK return code 4 (MQTT 3.1.1): bad user name or password. */
const BAD_CREDENTIALS = 4;

export async function startParkBroker(options: ParkBrokerOptions): Promise<ParkBroker> {
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
      options.credentials.check(username, password).then(
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
        (error: Error) => done(Object.assign(error, { returnCode: BAD_CREDENTIALS }), false),
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
  const server: Server = createServer({ noDelay: true }, aedes.handle);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error) =>
      reject(
        new EipError(
          'IO_ERROR',
          `MQTT cannot listen on ${options.tcp.host}:${options.tcp.port}: ${error.message}`,
          { cause: error },
        ),
      ),
    );
    server.listen(options.tcp.port, options.tcp.host, resolve);
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.tcp.port;
  const host = options.tcp.host.includes(':') ? `[${options.tcp.host}]` : options.tcp.host;
  return {
    aedes,
    url: `mqtt://${host}:${port}`,
    port,
    counters,
    async close() {
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
