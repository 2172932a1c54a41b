/**
 * The park broker's other doors: MQTT over WebSocket, and over TLS, where a client certificate
 * from the park's CA logs a device in without a password and one from anywhere else does not.
 * Certificates are made with Debian's openssl for the test.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ParkBroker, startParkBroker } from '../../gateway/broker/broker.js';
import { hashPassword, parseCredentials } from '../../gateway/broker/credentials.js';
import { until } from '../support/until.js';

const dir = mkdtempSync(join(tmpdir(), 'eip-broker-tls-'));
const file = (name: string) => join(dir, name);
const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });

/** A key and a certificate for `cn`, signed by the CA, or self-signed when `ca` is false. */
function certificate(name: string, cn: string, ca: boolean, extensions = '') {
  openssl('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${name}.key`);
  if (!ca) {
    openssl(
      'req',
      '-x509',
      '-new',
      '-key',
      `${name}.key`,
      '-subj',
      `/CN=${cn}`,
      '-days',
      '1',
      '-out',
      `${name}.crt`,
    );
    return;
  }
  openssl('req', '-new', '-key', `${name}.key`, '-subj', `/CN=${cn}`, '-out', `${name}.csr`);
  writeFileSync(file(`${name}.ext`), extensions);
  openssl(
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-days',
    '1',
    '-out',
    `${name}.crt`,
    '-extfile',
    `${name}.ext`,
  );
}

let broker: ParkBroker;
const clients: MqttClient[] = [];

beforeAll(async () => {
  openssl('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ca.key');
  openssl(
    'req',
    '-x509',
    '-new',
    '-key',
    'ca.key',
    '-subj',
    '/CN=park-ca',
    '-days',
    '1',
    '-out',
    'ca.crt',
  );
  certificate('server', '127.0.0.1', true, 'subjectAltName=IP:127.0.0.1\n');
  certificate('plant-c', 'plant-c', true);
  certificate('stranger', 'plant-c', false);
  const hash = await hashPassword('secret-a');
  broker = await startParkBroker({
    credentials: parseCredentials(
      `clients:\n  plant-a: { role: prosumer, password: "${hash}" }\n  plant-c: { role: prosumer, certificate: true }\n`,
      'credentials.yaml',
    ),
    ws: { host: '127.0.0.1', port: 0 },
    tls: {
      host: '127.0.0.1',
      port: 0,
      cert: file('server.crt'),
      key: file('server.key'),
      ca: file('ca.crt'),
    },
  });
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.endAsync(true)));
  await broker?.close();
  rmSync(dir, { recursive: true, force: true });
});

function connect(url: string | undefined, options: IClientOptions) {
  const client = mqtt.connect(url ?? '', { reconnectPeriod: 0, ...options });
  clients.push(client);
  return new Promise<MqttClient>((resolve, reject) => {
    client.once('connect', () => resolve(client));
    client.once('error', reject);
  });
}

const tls = (name?: string): IClientOptions => ({
  ca: readFileSync(file('ca.crt')),
  rejectUnauthorized: true,
  ...(name && { cert: readFileSync(file(`${name}.crt`)), key: readFileSync(file(`${name}.key`)) }),
});

describe('the park broker over WebSocket and TLS', () => {
  it('serves MQTT over WebSocket with the same logins and ACL', async () => {
    expect(broker.urls.ws).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/mqtt$/);
    const a = await connect(broker.urls.ws, { username: 'plant-a', password: 'secret-a' });
    await a.publishAsync('eip/v1/agents/plant-a/status', '{}', { qos: 1 });
    await expect(
      connect(broker.urls.ws, { username: 'plant-a', password: 'nope' }),
    ).rejects.toThrow(/Bad username or password/);
  });

  it('logs a device in by a certificate from the park CA, without a password', async () => {
    const c = await connect(broker.urls.tls, tls('plant-c'));
    const got: string[] = [];
    c.on('message', (t) => got.push(t));
    await c.subscribeAsync('eip/v1/negotiations/plant-c/+/offer', { qos: 1 });
    const a = await connect(broker.urls.tls, {
      ...tls(),
      username: 'plant-a',
      password: 'secret-a',
    });
    await a.publishAsync('eip/v1/negotiations/plant-c/plant-a/offer', '{}', { qos: 1 });
    await until('the offer over TLS', () => got.length === 1, 3000);
    // The certificate's name is its identity: it cannot publish as plant-a.
    const closed = new Promise<void>((resolve) => c.once('close', () => resolve()));
    c.publish('eip/v1/negotiations/plant-a/plant-a/offer', '{}', { qos: 1 });
    await closed;
  });

  it('does not take a certificate the park CA did not sign', async () => {
    await expect(connect(broker.urls.tls, tls('stranger'))).rejects.toThrow(
      /Bad username or password/,
    );
  });
});
