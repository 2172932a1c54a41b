/**
 * The connection to the park's gateway that an eip-gateway config node holds for the nodes using
 * it: one MQTT client for all their subscriptions (opened with the first, so a gateway node that
 * nothing uses connects to nothing), and the URL of the gateway's HTTP API with the API token its
 * requests carry.
 */
import { randomBytes } from 'node:crypto';
import mqtt, { type MqttClient } from 'mqtt';
import { EipError } from '../../core/errors.js';

export type LinkState = 'connecting' | 'connected' | 'disconnected';

export interface Subscriber {
  message(topic: string, payload: Buffer): void;
  /**
   * On every change of the connection, with why the last attempt failed while that holds
   * (reconnecting after a refused login is still failing, not just "connecting").
   */
  state(state: LinkState, reason?: EipError): void;
  /**
   * A problem not reported since the last good connection (MQTT.js retries every few seconds
   * and fails the same way each time: Catch nodes should hear of an outage once), or a refused
   * subscription.
   */
  problem(error: EipError): void;
}

export interface GatewaySettings {
  readonly brokerUrl: string;
  readonly apiUrl: string;
  readonly username?: string;
  readonly password?: string;
  /** The gateway's API token (eip-gateway token), for a gateway whose API needs sign-in. */
  readonly apiToken?: string;
}

/** MQTT 3.1.1 CONNACK codes (and their MQTT 5 equivalents) that mean "these credentials". */
const REFUSED_LOGIN = new Set([4, 5, 0x86, 0x87]);

export class Gateway {
  private client: MqttClient | undefined;
  private current: LinkState = 'connecting';
  private lastError: EipError | undefined;
  /** The message of the problem last reported since the last good connection. */
  private reported: string | undefined;
  private readonly subscribers = new Map<Subscriber, string>();

  constructor(readonly settings: GatewaySettings) {}

  /** What every request to the gateway's HTTP API carries: the API token, when there is one. */
  apiHeaders(): Readonly<Record<string, string>> {
    const { apiToken } = this.settings;
    return apiToken === undefined ? {} : { authorization: `Bearer ${apiToken}` };
  }

  /**
   * What an API answer of HTTP `status` means for a flow, when the number alone does not say:
   * a 401 is the gateway node's API token, missing or not (or no longer) known to the gateway.
   */
  apiRefusal(status: number, url: URL): EipError | undefined {
    if (status !== 401) return undefined;
    const why =
      this.settings.apiToken === undefined
        ? 'the API requires one'
        : 'the gateway refused this one (unknown or expired)';
    return new EipError(
      'UNAUTHORIZED',
      `set the gateway node's API token: ${why}; eip-gateway token makes one (${url.href} answered HTTP 401)`,
    );
  }

  /** Delivers the messages of `filter` (MQTT wildcards allowed) until the returned call. */
  subscribe(filter: string, subscriber: Subscriber): () => void {
    this.subscribers.set(subscriber, filter);
    subscriber.state(this.current, this.lastError);
    const client = this.connect();
    if (client.connected) this.request(client, [filter]);
    return () => {
      this.subscribers.delete(subscriber);
      if (![...this.subscribers.values()].includes(filter) && client.connected) {
        client.unsubscribe(filter);
      }
    };
  }

  async close(): Promise<void> {
    this.subscribers.clear();
    await this.client?.endAsync(true);
  }

  private connect(): MqttClient {
    if (this.client) return this.client;
    const { brokerUrl, username, password } = this.settings;
    const client = mqtt.connect(brokerUrl, {
      // Unique per deploy: two Node-RED instances (or a redeploy racing the old client) must not
      // take each other's session over.
      clientId: `eip-node-red-${randomBytes(4).toString('hex')}`,
      ...(username && { username }),
      ...(password && { password }),
      // A restarted gateway is found again without a redeploy.
      reconnectPeriod: 5000,
      connectTimeout: 10_000,
      // Subscriptions are made again on every connect below, with their refusals reported.
      resubscribe: false,
    });
    client.on('connect', () => {
      this.lastError = undefined;
      this.reported = undefined;
      this.setState('connected');
      this.request(client, [...new Set(this.subscribers.values())]);
    });
    client.on('reconnect', () => this.setState('connecting', this.lastError));
    client.on('error', (error) => {
      this.lastError = connectionError(brokerUrl, error);
    });
    client.on('close', () => {
      const error = this.lastError;
      this.setState('disconnected', error);
      if (error === undefined || error.message === this.reported) return;
      this.reported = error.message;
      for (const subscriber of this.subscribers.keys()) subscriber.problem(error);
    });
    client.on('message', (topic, payload) => {
      for (const [subscriber, filter] of this.subscribers) {
        if (filterMatches(filter, topic)) subscriber.message(topic, payload);
      }
    });
    this.client = client;
    return client;
  }

  private request(client: MqttClient, filters: readonly string[]): void {
    if (filters.length === 0) return;
    client.subscribe([...filters], { qos: 1 }, (error, granted) => {
      for (const grant of granted ?? []) {
        // SUBACK 0x80 (MQTT 5: any code >= 0x80): the broker's ACL refused this filter.
        if (grant.qos < 0x80) continue;
        this.tell(
          grant.topic,
          new EipError('UNAUTHORIZED', `the broker refused the subscription to ${grant.topic}`, {
            details: { filter: grant.topic },
          }),
        );
      }
      if (error) for (const filter of filters) this.tell(filter, connectionError(filter, error));
    });
  }

  private tell(filter: string, error: EipError): void {
    for (const [subscriber, wanted] of this.subscribers) {
      if (wanted === filter) subscriber.problem(error);
    }
  }

  private setState(state: LinkState, reason?: EipError): void {
    if (state === this.current && reason === undefined) return;
    this.current = state;
    for (const subscriber of this.subscribers.keys()) subscriber.state(state, reason);
  }
}

function connectionError(where: string, error: Error): EipError {
  const code = (error as { code?: unknown }).code;
  const refused = typeof code === 'number' && REFUSED_LOGIN.has(code);
  return new EipError(
    refused ? 'UNAUTHORIZED' : 'IO_ERROR',
    refused
      ? `${where}: the broker refused the login (check the gateway node's user and password)`
      : `${where}: ${error.message}`,
    { cause: error, retryable: !refused },
  );
}

/** MQTT topic filter matching: `+` is one level, a trailing `#` any number of them. */
function filterMatches(filter: string, topic: string): boolean {
  const wanted = filter.split('/');
  const levels = topic.split('/');
  for (const [i, level] of wanted.entries()) {
    if (level === '#') return true;
    if (i >= levels.length || (level !== '+' && level !== levels[i])) return false;
  }
  return wanted.length === levels.length;
}
