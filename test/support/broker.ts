/** An in-process aedes broker on a loopback port and MQTT.js clients for it, as tests use them. */
import { createServer, type Server } from 'node:net';
import { Aedes } from 'aedes';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';

export interface TestBroker {
  readonly aedes: Aedes;
  readonly url: string;
  connect(options?: IClientOptions): Promise<MqttClient>;
  close(): Promise<void>;
}

export async function startBroker(): Promise<TestBroker> {
  const aedes = await Aedes.createBroker();
  // Nagle's algorithm with delayed ACKs holds small MQTT packets up to 40 ms on loopback.
  const server: Server = createServer({ noDelay: true }, aedes.handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('broker has no port');
  const url = `mqtt://127.0.0.1:${address.port}`;
  const clients: MqttClient[] = [];
  return {
    aedes,
    url,
    async connect(options = {}) {
      const client = mqtt.connect(url, { reconnectPeriod: 0, ...options });
      clients.push(client);
      await new Promise<void>((resolve, reject) => {
        client.once('connect', () => resolve());
        client.once('error', reject);
      });
      return client;
    },
    async close() {
      await Promise.all(clients.map((client) => client.endAsync(true)));
      await new Promise((resolve) => server.close(resolve));
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
    },
  };
}
