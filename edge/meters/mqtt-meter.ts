/**
 * Meters that publish over MQTT (many gateways and smart plugs do): a topic, and where in its
 * payload the value is. The payload is a plain number, or JSON with the value at a path such as
 * `ENERGY.Total` or `readings[0].value`. A payload that does not hold a number there is counted
 * and reported with the meter, the topic and why; it never stops the others.
 */
import { EipError } from '../../core/errors.js';

export interface MqttMeter {
  readonly id: string;
  readonly topic: string;
  /** Where the value is in a JSON payload; empty for a payload that is the number itself. */
  readonly path: string;
  readonly scale: number;
  readonly unit: string;
}

/** The part of an MQTT client this needs: MQTT.js's client fits. */
export interface MqttSubscriber {
  subscribe(topic: string | string[], callback?: (error: Error | null) => void): unknown;
  on(event: 'message', listener: (topic: string, payload: Buffer) => void): unknown;
}

export interface MqttValue {
  readonly value: number;
  readonly unit: string;
  readonly receivedAt: number;
}

const KEY = '[A-Za-z_$][\\w$-]*';
const PATH = new RegExp(`^${KEY}(?:\\.${KEY}|\\[\\d+\\])*$`);

/** `a.b[0].c` as ['a', 'b', 0, 'c']; refuses anything else with the path in the message. */
export function parsePath(path: string): (string | number)[] {
  if (path === '') return [];
  if (!PATH.test(path)) {
    throw new EipError('INVALID_ARGUMENT', `payload path "${path}" is not like "a.b[0].c"`);
  }
  return [...path.matchAll(new RegExp(`${KEY}|\\[(\\d+)\\]`, 'g'))].map((m) =>
    m[1] === undefined ? m[0] : Number(m[1]),
  );
}

export class MqttMeterSource {
  private readonly values = new Map<string, MqttValue>();
  private readonly byTopic = new Map<string, { meter: MqttMeter; path: (string | number)[] }[]>();
  readonly counters = { messages: 0, invalid: 0 };

  constructor(
    subscriber: MqttSubscriber,
    meters: readonly MqttMeter[],
    private readonly onInvalid: (error: EipError) => void = () => undefined,
    private readonly now: () => number = Date.now,
  ) {
    for (const meter of meters) {
      const entry = { meter, path: parsePath(meter.path) };
      this.byTopic.set(meter.topic, [...(this.byTopic.get(meter.topic) ?? []), entry]);
    }
    subscriber.on('message', (topic, payload) => this.receive(topic, payload));
    subscriber.subscribe([...this.byTopic.keys()]);
  }

  latest(id: string): MqttValue | undefined {
    return this.values.get(id);
  }

  private receive(topic: string, payload: Buffer): void {
    const entries = this.byTopic.get(topic);
    if (!entries) return;
    this.counters.messages++;
    const text = payload.toString('utf8');
    for (const { meter, path } of entries) {
      try {
        const value = extract(text, path, meter);
        this.values.set(meter.id, {
          value: value * meter.scale,
          unit: meter.unit,
          receivedAt: this.now(),
        });
      } catch (error) {
        this.counters.invalid++;
        this.onInvalid(error as EipError);
      }
    }
  }
}

function extract(text: string, path: (string | number)[], meter: MqttMeter): number {
  const where = `MQTT meter ${meter.id} on ${meter.topic}`;
  let node: unknown;
  if (path.length === 0) {
    node = Number(text.trim());
    if (text.trim() === '') node = Number.NaN;
  } else {
    try {
      node = JSON.parse(text);
    } catch {
      throw new EipError(
        'INVALID_MESSAGE',
        `${where}: payload is not JSON: ${JSON.stringify(text.slice(0, 60))}`,
      );
    }
    for (const key of path) {
      node =
        node !== null && typeof node === 'object'
          ? (node as Record<string | number, unknown>)[key]
          : undefined;
    }
  }
  if (typeof node !== 'number' || !Number.isFinite(node)) {
    throw new EipError(
      'INVALID_MESSAGE',
      `${where}: ${meter.path === '' ? 'payload' : `payload at "${meter.path}"`} is not a number (got ${JSON.stringify(node ?? null)})`,
    );
  }
  return node;
}
