/**
 * The park on an external Mosquitto: the acl_file and mosquitto.conf that mosquitto.ts generates,
 * on a real mosquitto with passwords from mosquitto_passwd, checked against acl.ts as the oracle
 * for every catalogue topic and every role; then the gateway service relaying an agreement
 * through it. Mosquitto drops a refused publish without a word (MQTT 3.1.1 has no negative
 * PUBACK), so a publish counts as refused when it is absent at a subscriber that reads
 * everything once a later sentinel from the same client has arrived there.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { structHash } from '../../core/messages/eip712.js';
import {
  decodeMessage,
  encodePayload,
  type Payload,
  subscription,
  TOPIC_NAMES,
  TOPICS,
  type TopicName,
  topic,
} from '../../core/messages/topics.js';
import { mayPublish, mayRead, maySubscribe, type Principal } from '../../gateway/broker/acl.js';
import { hashPassword } from '../../gateway/broker/credentials.js';
import { mosquittoAcl, mosquittoClients, mosquittoConf } from '../../gateway/broker/mosquitto.js';
import type { GatewayService } from '../../gateway/service.js';
import { type MarketPark, startMarketPark } from '../support/market-park.js';
import {
  type Mosquitto,
  RUN_MOSQUITTO_SUITES,
  startMosquitto,
  writePasswordFile,
} from '../support/mosquitto.js';
import { until } from '../support/until.js';

const PRINCIPALS = {
  gateway: { role: 'operator', name: 'gateway' },
  'plant-a': { role: 'prosumer', prosumer: 'plant-a' },
  'plant-b': { role: 'prosumer', prosumer: 'plant-b' },
  'plant-a-m1': { role: 'meter', prosumer: 'plant-a', meter: 'm1' },
} as const satisfies Record<string, Principal>;
type User = keyof typeof PRINCIPALS;
const USERS = Object.keys(PRINCIPALS) as User[];
const password = (user: User) => `${user}-secret`;

/** A concrete topic of `name` from one plant to another, every other level filled in. */
function between(name: TopicName, from: string, to: string): string {
  return TOPICS[name].pattern.replace(/\{(\w+)\}/g, (_, level: string) =>
    level === 'to' ? to : level === 'utility' ? 'biogas' : level === 'meter' ? 'm1' : from,
  );
}

/** A request whose utility level is no id: acl.ts knows no such topic, Mosquitto's '+' does. */
const MALFORMED = 'eip/v1/market/BIOGAS/requests/plant-a';

const PROBES = [
  ...TOPIC_NAMES.flatMap((name) => [
    between(name, 'plant-a', 'plant-b'),
    between(name, 'plant-b', 'plant-a'),
    // The meter's user name where a prosumer id goes: the patterns would grant it, its denials not.
    between(name, 'plant-a-m1', 'plant-a'),
  ]),
  'eip/v1/plants/plant-a/tank/level',
  'eip/v1/plants/plant-b/tank/level',
  'eip/v1/plants/plant-a-m1/tank/level',
  'eip/v1/plants/plant-a', // the plant level itself is no subtree
  'eip/v1/unknown/plant-a',
  MALFORMED,
  '$SYS/forged',
];

/**
 * Mosquitto's answers where they differ from acl.ts on purpose (mosquitto.ts, point 3): a '+'
 * in an ACL line matches any level, so MALFORMED passes for its sender and the operator, and
 * reaches every prosumer that reads requests. The gateway's decodeMessage refuses it.
 */
function mosquittoMayPublish(principal: Principal, concrete: string): boolean {
  if (concrete === MALFORMED)
    return (
      principal.role === 'operator' ||
      (principal.role === 'prosumer' && principal.prosumer === 'plant-a')
    );
  return mayPublish(principal, concrete) === null;
}

function mosquittoMayRead(principal: Principal, concrete: string): boolean {
  if (concrete === MALFORMED) return principal.role !== 'meter';
  return mayRead(principal, concrete);
}

/** A topic each principal may publish and the operator read: it closes a run of publishes. */
const sentinelOf = (principal: Principal) =>
  `eip/v1/plants/${principal.role === 'operator' ? 'plant-a' : principal.prosumer}/sentinel`;

describe('the Mosquitto files from the catalogue', () => {
  it('take names and roles from a credentials file, and refuse what would mean something else', async () => {
    const hash = await hashPassword('x');
    const clients = mosquittoClients(
      `clients:
  plant-a: { role: prosumer, password: "${hash}" }
  plant-a-m1: { role: meter, prosumer: plant-a, meter: m1, certificate: true }
  gateway: { role: operator, password: "${hash}" }
`,
      'credentials.yaml',
    );
    expect(clients).toEqual([
      { username: 'plant-a', principal: PRINCIPALS['plant-a'] },
      { username: 'plant-a-m1', principal: PRINCIPALS['plant-a-m1'] },
      { username: 'gateway', principal: PRINCIPALS.gateway },
    ]);
    expect(() =>
      mosquittoClients('clients:\n  plant-a: { role: prosumer, password: secret }\n', 'c.yaml'),
    ).toThrow(/c\.yaml: 1 problem\(s\):\n {2}clients\.plant-a\.password: must be an scrypt hash/);
    // Its denials of the prosumer rights its name gets from the patterns would take its own.
    expect(() =>
      mosquittoAcl([
        { username: 'plant-a', principal: { role: 'meter', prosumer: 'plant-a', meter: 'm1' } },
      ]),
    ).toThrow(/meter user "plant-a".*would deny its own eip\/v1\/meters\/plant-a\/m1\/reading/);
    expect(() => mosquittoAcl([{ username: 'plant-x', principal: PRINCIPALS['plant-a'] }])).toThrow(
      /prosumer "plant-a" must log in as "plant-a"/,
    );
    expect(() => mosquittoAcl([{ username: 'a/#', principal: PRINCIPALS.gateway }])).toThrow(
      /user name "a\/#" is not an id/,
    );
    const conf = { passwordFile: 'p', aclFile: 'a', persistenceDir: '/d' };
    expect(() =>
      mosquittoConf({ ...conf, listeners: [{ host: '127.0.0.1\nallow_anonymous true', port: 1 }] }),
    ).toThrow(/is not a value/);
    expect(() => mosquittoConf({ ...conf, listeners: [{ host: 'h', port: 0 }] })).toThrow(
      /port 0 is not 1-65535/,
    );
  });

  it('list the intended differences only where acl.ts answers otherwise', () => {
    const a = PRINCIPALS['plant-a'];
    expect(mayPublish(a, MALFORMED)).toMatch(/not a topic of the park/);
    expect(mayRead(PRINCIPALS['plant-b'], MALFORMED)).toBe(false);
    // A subscription Mosquitto grants and acl.ts refuses: the reader gets what mayRead allows.
    for (const filter of ['#', 'eip/v1/negotiations/+/+/offer', '$SYS/broker/version'])
      expect(maySubscribe(a, filter)).not.toBeNull();
  });
});

describe.runIf(RUN_MOSQUITTO_SUITES)('the park on Mosquitto', () => {
  let dir: string;
  let broker: Mosquitto;
  const clients: MqttClient[] = [];
  /** An operator that reads everything, $SYS/forged too: where every publish should arrive. */
  let watcher: Map<string, string[]>;

  async function login(user: User | undefined, options: IClientOptions = {}): Promise<MqttClient> {
    const client = mqtt.connect(broker.url, {
      reconnectPeriod: 0,
      ...(user !== undefined && { username: user, password: password(user) }),
      ...options,
    });
    clients.push(client);
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => resolve());
      client.once('error', reject);
    });
    return client;
  }

  /** Collects, per payload, the topics a client is delivered. */
  function inbox(client: MqttClient): Map<string, string[]> {
    const byPayload = new Map<string, string[]>();
    client.on('message', (t, payload) => {
      const key = payload.toString();
      byPayload.set(key, [...(byPayload.get(key) ?? []), t]);
    });
    return byPayload;
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'eip-mosquitto-'));
    const hashes = await Promise.all(USERS.map((user) => hashPassword(password(user))));
    const credentials = `clients:\n${USERS.map((user, i) => {
      const p: Principal = PRINCIPALS[user];
      const role =
        p.role === 'meter' ? `meter, prosumer: ${p.prosumer}, meter: ${p.meter}` : p.role;
      return `  ${user}: { role: ${role}, password: "${hashes[i]}" }`;
    }).join('\n')}\n`;
    const aclFile = join(dir, 'acl');
    const passwordFile = join(dir, 'passwd');
    writeFileSync(aclFile, mosquittoAcl(mosquittoClients(credentials, 'credentials.yaml')));
    writePasswordFile(passwordFile, Object.fromEntries(USERS.map((u) => [u, password(u)])));
    broker = await startMosquitto({
      dir,
      conf: (listener) =>
        mosquittoConf({ listeners: [listener], passwordFile, aclFile, persistenceDir: dir }),
    });
    const client = await login('gateway');
    watcher = inbox(client);
    await client.subscribeAsync(['#', '$SYS/forged'], { qos: 1 });
  });

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.endAsync(true)));
    await broker?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lets in only the users of the password file, with their passwords', async () => {
    await expect(login('plant-a')).resolves.toBeDefined();
    // Mosquitto 2.0 answers 5 (not authorized) where aedes answers 4 (bad user name or password).
    await expect(login(undefined)).rejects.toThrow(/Not authorized/);
    await expect(login(undefined, { username: 'plant-a', password: 'wrong' })).rejects.toThrow(
      /Not authorized/,
    );
  });

  it.each(USERS)('%s publishes what acl.ts lets it, and keeps its connection', async (user) => {
    const principal: Principal = PRINCIPALS[user];
    const publisher = await login(user);
    const tag = `publish by ${user}`;
    const sentinel = sentinelOf(principal);
    expect(mayPublish(principal, sentinel)).toBeNull();
    await Promise.all([...PROBES, sentinel].map((t) => publisher.publishAsync(t, tag, { qos: 1 })));
    await until(`the sentinel of ${user}`, () => watcher.get(tag)?.includes(sentinel) ?? false);
    const delivered = (watcher.get(tag) ?? []).filter((t) => t !== sentinel);
    expect(delivered).toEqual(PROBES.filter((t) => mosquittoMayPublish(principal, t)));
    // Refused publishes were dropped, the client not disconnected as aedes does.
    expect(publisher.connected).toBe(true);
  });

  it('delivers to each reader what acl.ts lets it read, whatever filter it subscribed', async () => {
    const readers = await Promise.all(USERS.map((user) => login(user)));
    const inboxes = readers.map(inbox);
    for (const reader of readers) {
      // Mosquitto never refuses a subscription (mosquitto.ts, point 1): '#' is granted even to a
      // meter; each message is checked for `read` as it is delivered.
      const granted = await reader.subscribeAsync(['#', '$SYS/broker/version'], { qos: 1 });
      expect(granted.map((g) => g.qos)).toEqual([1, 1]);
    }
    const operator = PRINCIPALS.gateway;
    const published = PROBES.filter((t) => mosquittoMayPublish(operator, t));
    const sentinels = ['plant-a', 'plant-b'].map((p) => `eip/v1/plants/${p}/sentinel`);
    const tag = 'read matrix';
    const publisher = await login('gateway');
    await Promise.all(
      [...published, ...sentinels].map((t) => publisher.publishAsync(t, tag, { qos: 1 })),
    );
    await until('the sentinels', () =>
      USERS.every((user, i) =>
        sentinels
          .filter((t) => mosquittoMayRead(PRINCIPALS[user], t))
          .every((t) => inboxes[i]?.get(tag)?.includes(t)),
      ),
    );
    // The meter reads nothing, so no sentinel can close its run: a bounded wait does.
    await new Promise((resolve) => setTimeout(resolve, 200));
    USERS.forEach((user, i) => {
      const principal: Principal = PRINCIPALS[user];
      const got = inboxes[i]?.get(tag) ?? [];
      const expected = [...published, ...sentinels].filter((t) => mosquittoMayRead(principal, t));
      expect(got, user).toEqual(expected);
      // $SYS/broker/version is retained: the operator reads it, nobody else.
      const sys = [...(inboxes[i]?.values() ?? [])].flat().filter((t) => t.startsWith('$SYS'));
      expect(sys, user).toEqual(principal.role === 'operator' ? ['$SYS/broker/version'] : []);
    });
  });

  it("never fires a will on another prosumer's topic", async () => {
    const watcherClient = await login('gateway');
    const seen: string[] = [];
    watcherClient.on('message', (t) => seen.push(t));
    await watcherClient.subscribeAsync(subscription('agentStatus'), { qos: 1 });
    const will = (prosumer: string) => ({
      topic: topic('agentStatus', { prosumer }),
      payload: Buffer.from(
        encodePayload('agentStatus', { prosumer, state: 'offline', at_ms: Date.now() }),
      ),
      qos: 1 as const,
      retain: false,
    });
    // plant-b leaves a will in plant-a's name; Mosquitto accepts it at CONNECT (aedes does too)
    // and checks it for `write` when it fires.
    const forger = await login('plant-b', { will: will('plant-a') });
    const honest = await login('plant-a', { will: will('plant-a') });
    // Both drop without a DISCONNECT: their wills fire, if they may.
    forger.stream.destroy();
    honest.stream.destroy();
    await until('the honest will', () => seen.length > 0);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(seen).toEqual(['eip/v1/agents/plant-a/status']);
  });

  describe('the gateway service on it', () => {
    // The chain side of the service's own suite; its embedded broker stays unused here.
    let park: MarketPark;
    let service: GatewayService;
    const statuses: { prosumer: string; status: Payload<'agreementStatus'> }[] = [];

    beforeAll(async () => {
      park = await startMarketPark();
      service = await park.startService({
        // As run.ts logs in to an external broker: an operator user, a persistent session.
        mqtt: await login('gateway', { clientId: 'eip-gateway', clean: false }),
      });
    }, 60_000);

    afterAll(async () => {
      await park?.close();
    });

    async function plant(user: 'plant-a' | 'plant-b'): Promise<MqttClient> {
      const client = await login(user);
      client.on('message', (t, payload) => {
        const message = decodeMessage(t, payload);
        if (message.name === 'agreementStatus')
          statuses.push({ prosumer: user, status: message.payload });
      });
      await client.subscribeAsync(subscription('agreementStatus', { prosumer: user }), { qos: 1 });
      return client;
    }

    it('relays an agreement and confirms it to both plants through Mosquitto', async () => {
      await plant('plant-a');
      const buyer = await plant('plant-b');
      const agreement = await park.terms(1_000n, 60n);
      const id = structHash('Agreement', agreement);
      await park.sendAgreement(buyer, park.buyer, park.signed(agreement));
      const confirmed = (prosumer: string) =>
        statuses.some(
          (s) =>
            s.prosumer === prosumer &&
            s.status.agreement_id === id &&
            s.status.state === 'confirmed',
        );
      await until('confirmed at both plants', () => confirmed('plant-a') && confirmed('plant-b'));
      expect(service.book.get(id)?.state).toBe('open');
      expect(service.link.counters.refused).toEqual({});
    }, 30_000);
  });
});
