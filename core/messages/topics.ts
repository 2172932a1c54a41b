/**
 * The MQTT topic tree: one source of truth for every topic, its payload schema, who publishes it
 * and who reads it (zigbee2mqtt keeps its API the same way). Edge and gateway never talk except
 * through these definitions. `asyncapi.yaml` beside this file is generated from it.
 *
 * Topics that carry a prosumer's traffic name that prosumer in a fixed level, so the broker's ACL
 * can let a client publish only under its own id and read only what is addressed to it. Where a
 * payload names its sender too, `bind` makes the two agree. Signed payloads (offers, agreements,
 * delivery reports) name Ethereum addresses instead of ids: the receiver checks their signatures.
 */
import type { z } from 'zod';
import { EipError } from '../errors.js';
import * as s from './schemas.js';

export const TOPIC_ROOT = 'eip/v1';

export type Party = 'edge' | 'gateway';

interface TopicDefinition {
  readonly pattern: string;
  readonly schema: z.ZodType;
  readonly summary: string;
  readonly publishers: readonly Party[];
  readonly subscribers: readonly Party[];
  readonly retained: boolean;
  readonly qos: 0 | 1;
  /** Topic levels that must equal a payload field: a message cannot claim another sender. */
  readonly bind: Readonly<Record<string, string>>;
  /**
   * For the broker's ACL. `sender`: the level an edge publishing this must fill with its own
   * prosumer id (null when edges do not publish it). `audience`: the level an edge subscribing
   * must fill with its own id, so it reads only what is addressed to it; null when every edge
   * may read the topic (or none does: see `subscribers`).
   */
  readonly sender: string | null;
  readonly audience: string | null;
}

export const TOPICS = {
  agentStatus: {
    pattern: `${TOPIC_ROOT}/agents/{prosumer}/status`,
    schema: s.agentStatus,
    summary: 'Presence of an edge agent: online on connect, offline as its last will. Retained.',
    publishers: ['edge'],
    subscribers: ['edge', 'gateway'],
    retained: true,
    qos: 1,
    bind: { prosumer: 'prosumer' },
    sender: 'prosumer',
    audience: null,
  },
  refusal: {
    pattern: `${TOPIC_ROOT}/agents/{prosumer}/errors`,
    schema: s.refusal,
    summary: 'Why the gateway refused something this agent sent (bad payload, bad signature, ...).',
    publishers: ['gateway'],
    subscribers: ['edge'],
    retained: false,
    qos: 1,
    bind: {},
    sender: null,
    audience: 'prosumer',
  },
  agreementStatus: {
    pattern: `${TOPIC_ROOT}/agents/{prosumer}/agreements`,
    schema: s.agreementStatus,
    summary:
      'Life of an agreement the agent is party to: submitted, confirmed, delivering, settled or failed.',
    publishers: ['gateway'],
    subscribers: ['edge'],
    retained: false,
    qos: 1,
    bind: {},
    sender: null,
    audience: 'prosumer',
  },
  negotiationOutcome: {
    pattern: `${TOPIC_ROOT}/agents/{prosumer}/negotiations`,
    schema: s.negotiationOutcome,
    summary:
      "How a negotiation ended for this agent (agreed, no agreement and why, or no counterpart), for the park's agreement rate.",
    publishers: ['edge'],
    subscribers: ['gateway'],
    retained: false,
    qos: 1,
    bind: { prosumer: 'prosumer' },
    sender: 'prosumer',
    audience: null,
  },
  deliveryConfirmation: {
    pattern: `${TOPIC_ROOT}/agents/{prosumer}/deliveries`,
    schema: s.deliveryConfirmation,
    summary:
      'Settled delivery: metered quantity, tokens paid to the seller and refunded to the buyer.',
    publishers: ['gateway'],
    subscribers: ['edge'],
    retained: false,
    qos: 1,
    bind: {},
    sender: null,
    audience: 'prosumer',
  },
  meterReading: {
    pattern: `${TOPIC_ROOT}/meters/{prosumer}/{meter}/reading`,
    schema: s.meterReading,
    summary: 'One polled meter value with its original timestamp and sequence number.',
    publishers: ['edge'],
    subscribers: ['gateway'],
    retained: false,
    qos: 1,
    bind: { prosumer: 'prosumer', meter: 'meter' },
    sender: 'prosumer',
    audience: null,
  },
  deliveryReport: {
    pattern: `${TOPIC_ROOT}/meters/{prosumer}/{meter}/delivery`,
    schema: s.deliveryReportMessage,
    summary: 'Cumulative delivery for an agreement, EIP-712 signed by the registered meter key.',
    publishers: ['edge'],
    subscribers: ['gateway'],
    retained: false,
    qos: 1,
    bind: { meter: 'meter' },
    sender: 'prosumer',
    audience: null,
  },
  balance: {
    pattern: `${TOPIC_ROOT}/balances/{prosumer}/{utility}`,
    schema: s.balance,
    summary: 'Production, consumption, storage and net surplus (+) or deficit (-) per time step.',
    publishers: ['edge'],
    subscribers: ['gateway'],
    retained: false,
    qos: 0,
    bind: { prosumer: 'prosumer', utility: 'utility' },
    sender: 'prosumer',
    audience: null,
  },
  negotiationRequest: {
    pattern: `${TOPIC_ROOT}/market/{utility}/requests/{prosumer}`,
    schema: s.negotiationRequest,
    summary:
      'Request to negotiate (seed 4.3): a prosumer offers its surplus or asks to cover its deficit.',
    publishers: ['edge'],
    subscribers: ['edge', 'gateway'],
    retained: false,
    qos: 1,
    bind: { utility: 'utility', prosumer: 'prosumer' },
    sender: 'prosumer',
    audience: null,
  },
  providerTrade: {
    pattern: `${TOPIC_ROOT}/market/{utility}/provider/{prosumer}`,
    schema: s.providerTrade,
    summary:
      "A prosumer's order to buy from or sell to the main provider at its tariff (seed 4.2), for the gateway to place on the market contract.",
    publishers: ['edge'],
    subscribers: ['gateway'],
    retained: false,
    qos: 1,
    bind: { utility: 'utility', prosumer: 'prosumer' },
    sender: 'prosumer',
    audience: null,
  },
  willToNegotiate: {
    pattern: `${TOPIC_ROOT}/negotiations/{to}/{from}/will`,
    schema: s.willToNegotiate,
    summary: "A second party's will to negotiate, sent to the requester.",
    publishers: ['edge'],
    subscribers: ['edge'],
    retained: false,
    qos: 1,
    bind: { from: 'prosumer' },
    sender: 'from',
    audience: 'to',
  },
  offer: {
    pattern: `${TOPIC_ROOT}/negotiations/{to}/{from}/offer`,
    schema: s.signedOffer,
    summary: 'An offer or counter-offer on price and quantity, EIP-712 signed by its proposer.',
    publishers: ['edge'],
    subscribers: ['edge'],
    retained: false,
    qos: 1,
    bind: {},
    sender: 'from',
    audience: 'to',
  },
  agreementProposal: {
    pattern: `${TOPIC_ROOT}/negotiations/{to}/{from}/agreement`,
    schema: s.agreementProposal,
    summary: 'The agreement, signed by the party that accepted, for the other to countersign.',
    publishers: ['edge'],
    subscribers: ['edge'],
    retained: false,
    qos: 1,
    bind: {},
    sender: 'from',
    audience: 'to',
  },
  countersigned: {
    pattern: `${TOPIC_ROOT}/negotiations/{to}/{from}/countersigned`,
    schema: s.signedAgreement,
    summary:
      'The agreement with both signatures, back to the party that proposed it: it now knows the negotiation closed, not just that it proposed.',
    publishers: ['edge'],
    subscribers: ['edge'],
    retained: false,
    qos: 1,
    bind: {},
    sender: 'from',
    audience: 'to',
  },
  breakOff: {
    pattern: `${TOPIC_ROOT}/negotiations/{to}/{from}/break-off`,
    schema: s.breakOff,
    summary: 'The sender ends the negotiation without agreement, and why.',
    publishers: ['edge'],
    subscribers: ['edge'],
    retained: false,
    qos: 1,
    bind: { from: 'prosumer' },
    sender: 'from',
    audience: 'to',
  },
  agreement: {
    pattern: `${TOPIC_ROOT}/agreements/{prosumer}`,
    schema: s.signedAgreement,
    summary: 'A fully signed agreement for the gateway to open on the utility market contract.',
    publishers: ['edge'],
    subscribers: ['gateway'],
    retained: false,
    qos: 1,
    bind: {},
    sender: 'prosumer',
    audience: null,
  },
} as const satisfies Record<string, TopicDefinition>;

export type TopicName = keyof typeof TOPICS;

type ParamsOf<P extends string> = P extends `${string}{${infer K}}${infer Rest}`
  ? K | ParamsOf<Rest>
  : never;
export type TopicParams<N extends TopicName> = Readonly<
  Record<ParamsOf<(typeof TOPICS)[N]['pattern']>, string>
>;
/** The payload as code sees it (uint256 as bigint). */
export type Payload<N extends TopicName> = z.output<(typeof TOPICS)[N]['schema']>;
/** The payload as it travels (uint256 as decimal strings). */
export type WirePayload<N extends TopicName> = z.input<(typeof TOPICS)[N]['schema']>;

export const TOPIC_NAMES = Object.keys(TOPICS) as TopicName[];

const compiled = TOPIC_NAMES.map((name) => ({ name, levels: TOPICS[name].pattern.split('/') }));

function paramName(level: string): string | null {
  return level.startsWith('{') ? level.slice(1, -1) : null;
}

/** Fills the pattern's levels from params; a missing level becomes `wildcard`, or is an error. */
function fill(
  name: TopicName,
  params: Readonly<Record<string, string | undefined>>,
  wildcard: '+' | null,
): string {
  return TOPICS[name].pattern.replace(/\{(\w+)\}/g, (_, key: string) => {
    const value = params[key];
    if (value === undefined && wildcard !== null) return wildcard;
    if (value === undefined || !s.ID_PATTERN.test(value)) {
      throw new EipError(
        'INVALID_ARGUMENT',
        `topic ${name}: ${key} must be an id of a-z, 0-9, "-", "_" (got "${value}")`,
        { details: { topic: name, param: key } },
      );
    }
    return value;
  });
}

/** The concrete topic, e.g. `topic('balance', { prosumer: 'p0', utility: 'biogas' })`. */
export function topic<N extends TopicName>(name: N, params: TopicParams<N>): string {
  return fill(name, params, null);
}

/** A subscription filter: given levels fixed (and validated), the rest '+'. */
export function subscription<N extends TopicName>(
  name: N,
  params: Partial<TopicParams<N>> = {},
): string {
  return fill(name, params, '+');
}

export interface MatchedTopic {
  readonly name: TopicName;
  readonly params: Readonly<Record<string, string>>;
}

export function matchTopic(concrete: string): MatchedTopic | null {
  const levels = concrete.split('/');
  for (const candidate of compiled) {
    if (candidate.levels.length !== levels.length) continue;
    const params: Record<string, string> = {};
    const matches = candidate.levels.every((level, i) => {
      const value = levels[i] ?? '';
      const key = paramName(level);
      if (key === null) return level === value;
      params[key] = value;
      return s.ID_PATTERN.test(value);
    });
    if (matches) return { name: candidate.name, params };
  }
  return null;
}

/** Serializes a payload for `name`, validating it on the way out. */
export function encodePayload<N extends TopicName>(name: N, payload: Payload<N>): string {
  const schema = TOPICS[name].schema as z.ZodType;
  const result = schema.safeEncode(payload);
  if (!result.success) throw invalid(name, result.error);
  return JSON.stringify(result.data);
}

// fatal: invalid UTF-8 is refused, not silently replaced with U+FFFD.
const utf8 = new TextDecoder('utf-8', { fatal: true });

export type DecodedMessage = {
  [N in TopicName]: {
    readonly name: N;
    readonly params: Readonly<Record<string, string>>;
    readonly payload: Payload<N>;
  };
}[TopicName];

/**
 * The MQTT ingress check: topic in the catalogue, payload valid JSON of its schema, and the
 * sender named in the topic the same as in the payload. Every refusal is an EipError that says
 * what and where, so it can be counted and answered on the sender's error topic.
 */
export function decodeMessage(concrete: string, raw: string | Uint8Array): DecodedMessage {
  const matched = matchTopic(concrete);
  if (matched === null) {
    throw new EipError('UNKNOWN_TOPIC', `no message is defined for topic "${concrete}"`, {
      details: { topic: concrete },
    });
  }
  let json: unknown;
  try {
    json = JSON.parse(typeof raw === 'string' ? raw : utf8.decode(raw));
  } catch (error) {
    throw new EipError('INVALID_MESSAGE', `${concrete}: payload is not valid UTF-8 JSON`, {
      cause: error,
      details: { topic: concrete },
    });
  }
  const definition: TopicDefinition = TOPICS[matched.name];
  const result = definition.schema.safeParse(json);
  if (!result.success) throw invalid(concrete, result.error);
  const payload = result.data as Record<string, unknown>;
  for (const [level, field] of Object.entries(definition.bind)) {
    if (payload[field] !== matched.params[level]) {
      throw new EipError(
        'INVALID_MESSAGE',
        `${concrete}: payload ${field} "${String(payload[field])}" does not match topic level {${level}} "${matched.params[level]}"`,
        { details: { topic: concrete, field } },
      );
    }
  }
  return { name: matched.name, params: matched.params, payload } as DecodedMessage;
}

function invalid(where: string, error: z.ZodError): EipError {
  const problems = error.issues.map(
    (issue) => `${issue.path.length ? issue.path.join('.') : '(payload)'}: ${issue.message}`,
  );
  return new EipError('INVALID_MESSAGE', `${where}: ${problems.join('; ')}`, {
    details: { topic: where, problems },
  });
}

export interface PublishOptions {
  readonly qos: 0 | 1;
  readonly retain: boolean;
}

/** A typed publish over any raw MQTT client: `publish('balance', params, payload)`. */
export function createPublisher<R>(
  send: (topic: string, payload: string, options: PublishOptions) => R,
) {
  return <N extends TopicName>(name: N, params: TopicParams<N>, payload: Payload<N>): R => {
    const definition: TopicDefinition = TOPICS[name];
    return send(topic(name, params), encodePayload(name, payload), {
      qos: definition.qos,
      retain: definition.retained,
    });
  };
}
