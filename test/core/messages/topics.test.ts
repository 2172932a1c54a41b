import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { asyncApiDocument } from '../../../core/messages/asyncapi.js';
import {
  createPublisher,
  decodeMessage,
  encodePayload,
  matchTopic,
  subscription,
  TOPIC_NAMES,
  TOPICS,
  type TopicName,
  topic,
} from '../../../core/messages/topics.js';
import pkg from '../../../package.json' with { type: 'json' };
import { FIXTURES } from './fixtures.js';

function roundTrip<N extends TopicName>(name: N) {
  const { params, payload } = FIXTURES[name];
  const concrete = topic(name, params);
  const decoded = decodeMessage(concrete, encodePayload(name, payload));
  return { concrete, decoded, payload, params };
}

describe('topic map', () => {
  it.each(TOPIC_NAMES)(
    '%s: builds, matches and round-trips its payload (bigint included)',
    (name) => {
      const { concrete, decoded, payload, params } = roundTrip(name);
      expect(concrete.startsWith('eip/v1/')).toBe(true);
      expect(matchTopic(concrete)).toEqual({ name, params });
      expect(decoded).toEqual({ name, params, payload });
    },
  );

  it('patterns are unambiguous: no two can match the same concrete topic', () => {
    const levels = TOPIC_NAMES.map((name) => [name, TOPICS[name].pattern.split('/')] as const);
    for (const [a, la] of levels) {
      for (const [b, lb] of levels) {
        if (a === b || la.length !== lb.length) continue;
        // Two patterns overlap unless some level holds two different literals.
        const apart = la.some((level, i) => {
          const other = lb[i] ?? '';
          return !level.startsWith('{') && !other.startsWith('{') && level !== other;
        });
        expect(apart, `${a} and ${b} can match the same topic`).toBe(true);
      }
    }
  });

  it('subscriptions fill unknown levels with + and validate the given ones', () => {
    expect(subscription('offer', { to: 'p0' })).toBe('eip/v1/negotiations/p0/+/offer');
    expect(subscription('meterReading')).toBe('eip/v1/meters/+/+/reading');
    expect(() => subscription('balance', { prosumer: 'a/#' })).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
  });

  it.each(['', 'P0', 'a/b', '+', '#', 'a b', 'x'.repeat(64)])(
    'refuses %j as a topic level',
    (bad) => {
      expect(() => topic('balance', { prosumer: bad, utility: 'biogas' })).toThrow(
        expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
      );
      expect(matchTopic(`eip/v1/balances/${bad}/biogas`)).toBeNull();
    },
  );

  it('uint256 travels as a decimal string', () => {
    const wire = JSON.parse(encodePayload('offer', FIXTURES.offer.payload));
    expect(wire.offer.unitPrice).toBe('35000000000000000');
  });
});

describe('ingress: every refusal says what and where', () => {
  const valid = (name: TopicName) =>
    JSON.parse(encodePayload(name, FIXTURES[name].payload as never));

  it('unknown topics', () => {
    expect(() => decodeMessage('eip/v1/nope', '{}')).toThrow(
      expect.objectContaining({ code: 'UNKNOWN_TOPIC' }),
    );
    expect(() => decodeMessage('eip/v2/agents/p0/status', '{}')).toThrow(
      expect.objectContaining({ code: 'UNKNOWN_TOPIC' }),
    );
  });

  it('payloads that are not JSON', () => {
    expect(() => decodeMessage('eip/v1/agents/p0/status', '{nope')).toThrow(
      expect.objectContaining({
        code: 'INVALID_MESSAGE',
        message: 'eip/v1/agents/p0/status: payload is not valid UTF-8 JSON',
      }),
    );
    expect(() => decodeMessage('eip/v1/agents/p0/status', new Uint8Array([0xff, 0xfe]))).toThrow(
      expect.objectContaining({ code: 'INVALID_MESSAGE' }),
    );
  });

  it.each([
    ['balance', (p: Record<string, unknown>) => ({ ...p, net_milli: 1.5 }), 'net_milli'],
    ['balance', (p: Record<string, unknown>) => ({ ...p, extra: 1 }), 'Unrecognized key'],
    [
      'offer',
      (p: Record<string, unknown>) => ({ ...p, offer: { ...(p.offer as object), unitPrice: 35 } }),
      'offer.unitPrice',
    ],
    [
      'offer',
      (p: Record<string, unknown>) => ({
        ...p,
        offer: { ...(p.offer as object), unitPrice: '-1' },
      }),
      'offer.unitPrice',
    ],
    [
      'offer',
      (p: Record<string, unknown>) => ({
        ...p,
        offer: { ...(p.offer as object), quantity: (2n ** 256n).toString() },
      }),
      'exceeds uint256',
    ],
    [
      'offer',
      (p: Record<string, unknown>) => ({
        ...p,
        offer: { ...(p.offer as object), seller: '0x19e7E376E7C213B7E7e7e46cc70A5dD086DAff2A' },
      }),
      'checksum',
    ],
    ['offer', (p: Record<string, unknown>) => ({ ...p, signature: '0x12' }), 'signature'],
    [
      'agreement',
      (p: Record<string, unknown>) => ({
        ...p,
        agreement: { ...(p.agreement as object), deliveryEnd: (2n ** 64n).toString() },
      }),
      'uint64',
    ],
    ['agreementStatus', (p: Record<string, unknown>) => ({ ...p, state: 'exploded' }), 'state'],
    ['meterReading', (p: Record<string, unknown>) => ({ ...p, value: null }), 'value'],
  ] as const)('%s with a bad field names its path (%s)', (name, mutate, where) => {
    const concrete = topic(name, FIXTURES[name].params as never);
    expect(() => decodeMessage(concrete, JSON.stringify(mutate(valid(name))))).toThrow(
      expect.objectContaining({ code: 'INVALID_MESSAGE', message: expect.stringContaining(where) }),
    );
  });

  it('a payload cannot claim another sender than its topic', () => {
    const payload = JSON.stringify({ ...valid('agentStatus'), prosumer: 'p9' });
    expect(() => decodeMessage('eip/v1/agents/p0/status', payload)).toThrow(
      'eip/v1/agents/p0/status: payload prosumer "p9" does not match topic level {prosumer} "p0"',
    );
    const will = JSON.stringify(valid('willToNegotiate'));
    expect(() => decodeMessage('eip/v1/negotiations/p0/p7/will', will)).toThrow(
      'does not match topic level {from}',
    );
  });

  it('refuses to encode what every receiver would refuse: beyond uint256 or uintN', () => {
    const status = { ...FIXTURES.agreementStatus.payload, paid: 2n ** 256n };
    expect(() => encodePayload('agreementStatus', status as never)).toThrow('exceeds uint256');
    const { agreement } = FIXTURES.agreement.payload;
    const late = {
      ...FIXTURES.agreement.payload,
      agreement: { ...agreement, deliveryEnd: 2n ** 64n },
    };
    expect(() => encodePayload('agreement', late)).toThrow('must fit in uint64');
    const negative = { ...FIXTURES.agreementStatus.payload, refunded: -1n };
    expect(() => encodePayload('agreementStatus', negative as never)).toThrow(
      'must not be negative',
    );
  });

  it('refuses to encode an invalid payload', () => {
    expect(() =>
      encodePayload('agentStatus', { ...FIXTURES.agentStatus.payload, prosumer: 'Bad Id' }),
    ).toThrow(expect.objectContaining({ code: 'INVALID_MESSAGE' }));
  });
});

describe('typed publish', () => {
  it('publishes the encoded payload with the topic QoS and retain flag', () => {
    const sent: unknown[] = [];
    const publish = createPublisher((t, payload, options) =>
      sent.push({ t, payload: JSON.parse(payload), options }),
    );
    publish('agentStatus', { prosumer: 'p0' }, FIXTURES.agentStatus.payload);
    publish('balance', FIXTURES.balance.params, FIXTURES.balance.payload);
    expect(sent).toEqual([
      {
        t: 'eip/v1/agents/p0/status',
        payload: FIXTURES.agentStatus.payload,
        options: { qos: 1, retain: true },
      },
      {
        t: 'eip/v1/balances/p0/biogas',
        payload: FIXTURES.balance.payload,
        options: { qos: 0, retain: false },
      },
    ]);
  });

  it('every binding names a level of its own topic', () => {
    for (const name of TOPIC_NAMES) {
      const levels = [...TOPICS[name].pattern.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
      for (const level of Object.keys(TOPICS[name].bind)) expect(levels).toContain(level);
    }
  });

  it('every topic names who publishes and who reads it', () => {
    for (const name of TOPIC_NAMES) {
      expect(TOPICS[name].publishers.length).toBeGreaterThan(0);
      expect(TOPICS[name].subscribers.length).toBeGreaterThan(0);
    }
  });
});

describe('the documented topic tree', () => {
  it('core/messages/asyncapi.yaml is generated from the catalogue (npx vitest run -u to refresh)', async () => {
    const yaml = stringify(asyncApiDocument(pkg.version), { lineWidth: 0, blockQuote: 'literal' });
    await expect(yaml).toMatchFileSnapshot('../../../core/messages/asyncapi.yaml');
  });
});
