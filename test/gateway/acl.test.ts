/**
 * The broker's ACL against every topic of the catalogue and every role: what each may publish,
 * subscribe to and be delivered; every cell that must be denied is denied.
 */
import { describe, expect, it } from 'vitest';
import { TOPIC_NAMES, TOPICS, type TopicName, topic } from '../../core/messages/topics.js';
import { mayPublish, mayRead, maySubscribe, type Principal } from '../../gateway/broker/acl.js';

const operator: Principal = { role: 'operator', name: 'gateway' };
const a: Principal = { role: 'prosumer', prosumer: 'plant-a' };
const b: Principal = { role: 'prosumer', prosumer: 'plant-b' };
const meterOfA: Principal = { role: 'meter', prosumer: 'plant-a', meter: 'm1' };

/** A concrete topic of `name` sent by plant-a to plant-b (every other level filled in). */
function fromAToB(name: TopicName): string {
  const levels = TOPICS[name].pattern.match(/\{(\w+)\}/g)?.map((l) => l.slice(1, -1)) ?? [];
  const params = Object.fromEntries(
    levels.map((level) => [
      level,
      level === 'to'
        ? 'plant-b'
        : level === 'utility'
          ? 'biogas'
          : level === 'meter'
            ? 'm1'
            : 'plant-a',
    ]),
  );
  return topic(name, params as never);
}

const byEdge = (name: TopicName, side: 'publishers' | 'subscribers') =>
  (TOPICS[name][side] as readonly string[]).includes('edge');

describe('the ACL over the whole topic catalogue', () => {
  it.each(TOPIC_NAMES)('%s: who publishes', (name) => {
    const concrete = fromAToB(name);
    expect(mayPublish(operator, concrete)).toBeNull();
    expect(mayPublish(a, concrete) === null).toBe(byEdge(name, 'publishers'));
    // plant-b cannot send as plant-a, whatever the topic.
    expect(mayPublish(b, concrete)).not.toBeNull();
    const meterTopic = name === 'meterReading' || name === 'deliveryReport';
    expect(mayPublish(meterOfA, concrete) === null).toBe(meterTopic);
  });

  it.each(TOPIC_NAMES)('%s: who is delivered it', (name) => {
    const concrete = fromAToB(name);
    const { audience } = TOPICS[name];
    expect(mayRead(operator, concrete)).toBe(true);
    expect(mayRead(meterOfA, concrete)).toBe(false);
    const edgeReads = byEdge(name, 'subscribers');
    // Addressed to plant-b (the `to` level) or to plant-a (a `prosumer` audience), or public.
    const addressee = audience === null ? null : audience === 'to' ? 'plant-b' : 'plant-a';
    expect(mayRead(a, concrete)).toBe(edgeReads && (addressee === null || addressee === 'plant-a'));
    expect(mayRead(b, concrete)).toBe(edgeReads && (addressee === null || addressee === 'plant-b'));
  });

  it('every topic edges publish names its sender, every one they read its audience or none', () => {
    for (const name of TOPIC_NAMES) {
      const { sender, audience, pattern } = TOPICS[name];
      if (byEdge(name, 'publishers')) expect(pattern, name).toContain(`{${sender}}`);
      else expect(sender, name).toBeNull();
      if (audience !== null) expect(pattern, name).toContain(`{${audience}}`);
    }
  });
});

describe('subscriptions', () => {
  it.each<[Principal, string, RegExp | null]>([
    [a, 'eip/v1/negotiations/plant-a/+/offer', null],
    [a, 'eip/v1/negotiations/plant-a/plant-b/break-off', null],
    [a, 'eip/v1/market/biogas/requests/+', null],
    [a, 'eip/v1/market/+/requests/+', null],
    [a, 'eip/v1/agents/+/status', null],
    [a, 'eip/v1/agents/plant-a/agreements', null],
    [a, 'eip/v1/negotiations/+/+/offer', /not addressed to prosumer "plant-a"/],
    [a, 'eip/v1/negotiations/plant-b/+/offer', /not addressed/],
    [a, 'eip/v1/agents/plant-b/agreements', /not addressed/],
    [a, 'eip/v1/agents/+/agreements', /not addressed/],
    [a, 'eip/v1/meters/plant-a/+/reading', /not addressed/],
    [a, 'eip/v1/#', /"#" reaches beyond/],
    [a, '#', /"#" reaches beyond/],
    [a, '$SYS/#', /only the operator reads \$SYS/],
    [meterOfA, 'eip/v1/agents/plant-a/agreements', /a meter reads nothing/],
    [operator, '#', null],
    [operator, '$SYS/#', null],
  ])('%j subscribing to %s', (principal, filter, refusal) => {
    const verdict = maySubscribe(principal, filter);
    if (refusal === null) expect(verdict).toBeNull();
    else expect(verdict).toMatch(refusal);
  });
});

describe('publishing outside the catalogue', () => {
  it.each([operator, a, meterOfA])('%j never publishes into $SYS or unknown topics', (who) => {
    expect(mayPublish(who, '$SYS/broker/uptime')).toMatch(/nobody publishes into \$SYS/);
    expect(mayPublish(who, 'eip/v1/unknown/plant-a')).toMatch(/not a topic of the park/);
    expect(mayPublish(who, 'eip/v1/agents/plant a/status')).toMatch(/not a topic of the park/);
  });

  it('a prosumer is told which level must name it', () => {
    expect(mayPublish(b, 'eip/v1/negotiations/plant-b/plant-a/offer')).toBe(
      'offer must name the sender "plant-b" in its from level',
    );
    expect(mayPublish(a, 'eip/v1/agents/plant-a/agreements')).toBe(
      'agreementStatus is published by the gateway only',
    );
  });
});

describe("a plant's own subtree", () => {
  it('is written and read by that plant (and its meters) only', () => {
    const tank = 'eip/v1/plants/plant-a/tank/level';
    expect(mayPublish(a, tank)).toBeNull();
    expect(mayPublish(meterOfA, tank)).toBeNull();
    expect(mayPublish(operator, tank)).toBeNull();
    expect(mayPublish(b, tank)).toBe(`${tank} is in plant "plant-a"'s own subtree`);
    expect(mayRead(a, tank)).toBe(true);
    expect(mayRead(b, tank)).toBe(false);
    expect(mayRead(meterOfA, tank)).toBe(false);
    expect(maySubscribe(a, 'eip/v1/plants/plant-a/#')).toBeNull();
    expect(maySubscribe(b, 'eip/v1/plants/plant-a/#')).not.toBeNull();
    expect(maySubscribe(b, 'eip/v1/plants/+/tank/level')).not.toBeNull();
    expect(maySubscribe(b, 'eip/v1/plants/#')).not.toBeNull();
    expect(mayPublish(a, 'eip/v1/plants/plant-a')).toMatch(/not a topic of the park/);
  });
});
