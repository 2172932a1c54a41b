/**
 * The forwarder's publish seam over an MQTT.js v5 client: QoS 1, resolved on PUBACK.
 *
 * The outbox is the only queue. MQTT.js keeps two of its own that would send behind the
 * forwarder's back, so this adapter keeps messages out of both:
 * - Published while disconnected, a message is queued (QoS 0, unless `queueQoSZero: false`) or
 *   put in the outgoing store (QoS 1 and 2, whatever `queueQoSZero` says) and sent on reconnect.
 *   So we refuse at once when not connected: the forwarder backs off and resends from disk.
 * - A QoS 1 message in flight when the connection drops stays in the outgoing store, and MQTT.js
 *   resends it on reconnect, before it emits `connect`; its callback does not fire on `close`
 *   (only QoS 0 callbacks are failed then). On `close` we take our in-flight messages out with
 *   `removeOutgoingMessage` (a documented API): their callbacks fail at once with "Message
 *   removed", MQTT.js forgets them, and the forwarder resends them itself, from the oldest.
 * We publish only between `connect` and `close`: MQTT.js sets `connected` before it has resent
 * its store, and a publish in that gap is queued where it cannot be taken back by id.
 *
 * A resend would not break anything (the receiver dedupes by seq, and a stale copy arrives before
 * or after the same record's first arrival, never in place of a missing one), but it would hold
 * the reconnect up: MQTT.js resends its store one message per round trip.
 */
import type { MqttClient } from 'mqtt';
import { EipError } from '../../core/errors.js';
import type { Publish } from './forwarder.js';

/**
 * MQTT 5 PUBACK reason codes that say this message can never be accepted, so sending it again
 * cannot help (MQTT 5.0, 3.4.2.1). Others (quota exceeded, not authorized while an ACL is
 * being updated, unspecified error) may pass later and stay retryable.
 */
const REFUSED_FOR_GOOD = new Map([
  [0x90, 'topic name invalid'],
  [0x95, 'packet too large'],
  [0x99, 'payload format invalid'],
]);

export class MqttPublisher {
  /** Between MQTT.js's `connect` and `close`. */
  private ready: boolean;
  private readonly inFlight = new Set<number>();

  constructor(private readonly client: MqttClient) {
    this.ready = client.connected;
    client.on('connect', () => {
      this.ready = true;
    });
    client.on('close', () => {
      this.ready = false;
      for (const messageId of [...this.inFlight]) client.removeOutgoingMessage(messageId);
    });
  }

  readonly publish: Publish = (topic, payload) =>
    new Promise((resolve, reject) => {
      if (!this.ready || !this.client.connected) {
        reject(
          new EipError('IO_ERROR', `MQTT client is not connected; not sent: ${topic}`, {
            retryable: true,
            details: { topic },
          }),
        );
        return;
      }
      let messageId: number | undefined;
      const done = (error?: Error) => {
        if (messageId !== undefined) this.inFlight.delete(messageId);
        if (error) reject(publishFailure(topic, error));
        else resolve();
      };
      this.client.publish(topic, payload, { qos: 1 }, done);
      // Ours only if MQTT.js sent it at once; otherwise it is not in `outgoing` under this id.
      const last = this.client.getLastMessageId();
      if (this.client.outgoing[last]?.cb === done) {
        messageId = last;
        this.inFlight.add(last);
      }
    });
}

export function publishFailure(topic: string, error: Error): EipError {
  const reasonCode = (error as { code?: unknown }).code;
  const refused = typeof reasonCode === 'number' ? REFUSED_FOR_GOOD.get(reasonCode) : undefined;
  return new EipError(
    'IO_ERROR',
    refused === undefined
      ? `MQTT publish to ${topic} not acknowledged: ${error.message}`
      : `the broker refused the publish to ${topic}: ${refused}`,
    { retryable: refused === undefined, cause: error, details: { topic, reasonCode } },
  );
}
