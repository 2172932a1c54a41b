/** An in-process aedes broker on a loopback port and MQTT.js clients for it, as tests use them. */
import { createServer, type Server } from 'node:net';
import { Aedes, type AedesOptions } from 'aedes';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';

export interface TestBroker {
  readonly aedes: Aedes;
  readonly url: string;
  readonly port: number;
  connect(options?: IClientOptions): Promise<MqttClient>;
  close(): Promise<void>;
}

export interface TestBrokerOptions {
  /** 0 picks a free port; a fixed one brings a broker back where clients reconnect. */
  readonly port?: number;
  readonly aedes?: AedesOptions;
  /**
   * Every client's publish, as the gateway (which embeds aedes) sees it. aedes emits `publish`
   * before it sends the PUBACK.
   */
  readonly onPublish?: (topic: string, payload: Buffer) => void;
}

export async function startBroker(options: TestBrokerOptions = {}): Promise<TestBroker> {
  const aedes = await Aedes.createBroker(options.aedes ?? {});
  const onPublish = options.onPublish;
  if (onPublish) {
    aedes.on('publish', (packet, client) => {
      if (client) onPublish(packet.topic, packet.payload as Buffer);
    });
  }
  // Nagle's algorithm with delayed ACKs holds small MQTT packets up to 40 ms on loopback.
  const server: Server = createServer({ noDelay: true }, aedes.handle);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', resolve);
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('broker has no port');
  const url = `mqtt://127.0.0.1:${address.port}`;
  const clients: MqttClient[] = [];
  return {
    aedes,
    url,
    port: address.port,
    async connect(clientOptions = {}) {
      const client = mqtt.connect(url, { reconnectPeriod: 0, ...clientOptions });
      clients.push(client);
      await new Promise<void>((resolve, reject) => {
        client.once('connect', () => resolve());
        client.once('error', reject);
      });
      return client;
    },
    async close() {
      await Promise.all(clients.map((client) => client.endAsync(true)));
      // aedes.close() drops every remaining connection; server.close() only stops accepting.
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
