/**
 * The gateway's one MQTT connection to the park broker (its own embedded one or an external
 * Mosquitto: the same code either way). Every message is decoded against the topic catalogue and
 * handed to its handler; a message is acknowledged (PUBACK) only after its handler finished, so
 * an agreement or delivery report is on the gateway's disk before the broker forgets it.
 *
 * A message that cannot be used (malformed, forged, unknown party) is refused: counted by code,
 * logged, and answered on the sender's error topic, and the connection goes on. A handler that
 * throws something other than an EipError is a bug: it is logged as one and the message refused
 * the same way, so no input can stop the gateway.
 */
import type { IPublishPacket, MqttClient } from 'mqtt';
import { EipError, isEipError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import {
  createPublisher,
  type DecodedMessage,
  decodeMessage,
  matchTopic,
  subscription,
  TOPICS,
  type TopicName,
} from '../core/messages/topics.js';

type Held = { readonly packet: IPublishPacket; readonly done: () => void };
const held = new WeakMap<MqttClient, Held[]>();

/**
 * Holds every message that arrives before the link starts, unacknowledged, for the link to
 * handle first. Call it right after `mqtt.connect`: a persistent session's queued messages come
 * as soon as the connection is up, and MQTT.js acknowledges whatever no handler takes, so they
 * would be lost (found by killing the gateway mid-relay).
 */
export function holdMessages(client: MqttClient): void {
  const queue: Held[] = [];
  held.set(client, queue);
  client.handleMessage = (packet, done) => {
    queue.push({ packet, done: () => done() });
  };
}

type Handlers = {
  [N in TopicName]?: (message: Extract<DecodedMessage, { name: N }>) => void | Promise<void>;
};

export interface LinkCounters {
  received: number;
  refused: Record<string, number>;
}

export class GatewayLink {
  readonly counters: LinkCounters = { received: 0, refused: {} };
  readonly publish: ReturnType<typeof createPublisher<void>>;
  private inFlight: Promise<void> = Promise.resolve();

  constructor(
    private readonly client: MqttClient,
    private readonly handlers: Handlers,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {
    this.publish = createPublisher((topic, payload, options) => {
      client.publish(topic, payload, options);
    });
  }

  /** Subscribes to every topic a handler is given for; resolves on the SUBACK. */
  async start(): Promise<void> {
    const handle = (packet: IPublishPacket, done: () => void) => {
      this.inFlight = this.handle(packet.topic, packet.payload as Buffer).then(done, done);
    };
    this.client.handleMessage = (packet, done) => handle(packet, () => done());
    for (const { packet, done } of held.get(this.client) ?? []) handle(packet, done);
    held.delete(this.client);
    const filters = (Object.keys(this.handlers) as TopicName[]).map((name) => subscription(name));
    const granted = await this.client.subscribeAsync(filters, { qos: 1 });
    const refused = granted.filter((g) => g.qos === 128).map((g) => g.topic);
    if (refused.length) {
      throw new EipError(
        'UNAUTHORIZED',
        `the broker refused the gateway's subscriptions to ${refused.join(', ')}: log it in as an operator`,
      );
    }
  }

  /**
   * Stops taking messages: later ones are held unacknowledged (the broker keeps them for the
   * gateway's persistent session), and the one being handled is finished, so the stores can
   * close under it without a message acknowledged but not stored.
   */
  async stop(): Promise<void> {
    holdMessages(this.client);
    await this.inFlight;
  }

  private async handle(topic: string, payload: Buffer): Promise<void> {
    this.counters.received++;
    try {
      const message = decodeMessage(topic, payload);
      const handler = this.handlers[message.name] as
        | ((m: DecodedMessage) => void | Promise<void>)
        | undefined;
      await handler?.(message);
    } catch (error) {
      this.refuse(topic, error);
    }
  }

  private refuse(topic: string, error: unknown): void {
    const known = isEipError(error);
    const code = known ? error.code : 'INTERNAL';
    this.counters.refused[code] = (this.counters.refused[code] ?? 0) + 1;
    const message = error instanceof Error ? error.message : String(error);
    if (known) this.logger.warn({ topic, code }, `refused: ${message}`);
    else this.logger.error({ topic, err: error }, 'handler failed on a message (a bug)');
    const sender = senderOf(topic);
    if (sender === undefined) return;
    this.publish(
      'refusal',
      { prosumer: sender },
      {
        topic: topic.slice(0, 256),
        code,
        message: (known ? message : 'the gateway could not process this message').slice(0, 500),
        at_ms: this.now(),
      },
    );
  }
}

/** The plant a topic says sent it, when the topic is in the catalogue. */
function senderOf(topic: string): string | undefined {
  const matched = matchTopic(topic);
  if (!matched) return undefined;
  const level = TOPICS[matched.name].sender as string | null;
  return level === null ? undefined : matched.params[level];
}
