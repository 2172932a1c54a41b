/**
 * Who may publish and read what on the park's broker, derived from the topic catalogue
 * (core/messages/topics.ts) rather than written twice. Pure: the aedes hooks (broker.ts) ask
 * these functions, and the authorization matrix test asks them and the running broker alike.
 *
 * - The operator (the gateway's own client, the park's tools) publishes and reads everything
 *   under the topic root, and reads `$SYS`.
 * - A prosumer's agent publishes only the edge's topics, and only with its own id in the sender
 *   level; it subscribes only to topics edges read, with its own id in the audience level, so it
 *   reads only what is addressed to it (and what is public, such as requests and presence).
 * - A meter publishes only its own readings and delivery reports, and reads nothing.
 * - Each plant has a private subtree, `eip/v1/plants/PROSUMER/...`, outside the catalogue: its
 *   devices (MQTT meters such as a tank level sensor, with the prosumer's or a meter's login)
 *   publish there and its agent reads there; no other plant can do either.
 * - Nobody publishes into `$SYS` or anything else outside the catalogue.
 */
import { matchTopic, TOPIC_NAMES, TOPIC_ROOT, TOPICS } from '../../core/messages/topics.js';

const PLANTS = `${TOPIC_ROOT}/plants/`;

/** The plant whose private subtree `topic` (or a filter) lies in, if any. */
function plantOf(topic: string): string | undefined {
  if (!topic.startsWith(PLANTS)) return undefined;
  const [plant, ...rest] = topic.slice(PLANTS.length).split('/');
  return rest.length > 0 && plant ? plant : undefined;
}

export type Principal =
  | { readonly role: 'operator'; readonly name: string }
  | { readonly role: 'prosumer'; readonly prosumer: string }
  | { readonly role: 'meter'; readonly prosumer: string; readonly meter: string };

/** Why a principal may not do something; null when it may. */
export type Verdict = string | null;

export function describePrincipal(principal: Principal): string {
  if (principal.role === 'operator') return `operator "${principal.name}"`;
  if (principal.role === 'prosumer') return `prosumer "${principal.prosumer}"`;
  return `meter "${principal.meter}" of "${principal.prosumer}"`;
}

export function mayPublish(principal: Principal, topic: string): Verdict {
  if (topic.startsWith('$')) return `nobody publishes into ${topic.split('/')[0]}`;
  const plant = plantOf(topic);
  if (plant !== undefined) {
    if (principal.role === 'operator' || principal.prosumer === plant) return null;
    return `${topic} is in plant "${plant}"'s own subtree`;
  }
  const matched = matchTopic(topic);
  if (!matched) return `${topic} is not a topic of the park`;
  if (principal.role === 'operator') return null;
  const definition = TOPICS[matched.name];
  if (principal.role === 'meter') {
    const own =
      (matched.name === 'meterReading' || matched.name === 'deliveryReport') &&
      matched.params.prosumer === principal.prosumer &&
      matched.params.meter === principal.meter;
    return own ? null : `a meter publishes only its own readings and delivery reports`;
  }
  if (!(definition.publishers as readonly string[]).includes('edge') || !definition.sender)
    return `${matched.name} is published by the gateway only`;
  if (matched.params[definition.sender] !== principal.prosumer)
    return `${matched.name} must name the sender "${principal.prosumer}" in its ${definition.sender} level`;
  return null;
}

/** Whether a concrete topic may be delivered to the principal: live, retained or a will. */
export function mayRead(principal: Principal, topic: string): boolean {
  if (principal.role === 'operator') return true;
  if (principal.role === 'meter' || topic.startsWith('$')) return false;
  const plant = plantOf(topic);
  if (plant !== undefined) return plant === principal.prosumer;
  const matched = matchTopic(topic);
  if (!matched) return false;
  const definition = TOPICS[matched.name];
  if (!(definition.subscribers as readonly string[]).includes('edge')) return false;
  return definition.audience === null || matched.params[definition.audience] === principal.prosumer;
}

const compiled = TOPIC_NAMES.map((name) => ({
  name,
  definition: TOPICS[name],
  levels: TOPICS[name].pattern.split('/'),
}));

/**
 * A subscription filter fits the principal when it lies within one topic edges read: the
 * same levels, literal levels as written, and the audience level (if any) its own id. A '#' or a
 * '+' in the audience level could reach others' messages, so a prosumer may not use them there.
 */
export function maySubscribe(principal: Principal, filter: string): Verdict {
  if (principal.role === 'operator') return null;
  if (principal.role === 'meter') return 'a meter reads nothing';
  if (filter.startsWith('$')) return `only the operator reads ${filter.split('/')[0]}`;
  // Anything under its own plant's subtree, '#' included.
  if (plantOf(filter) === principal.prosumer) return null;
  const levels = filter.split('/');
  if (levels.includes('#')) return `"#" reaches beyond what a prosumer may read`;
  const fits = compiled.some(({ definition, levels: pattern }) => {
    if (!(definition.subscribers as readonly string[]).includes('edge')) return false;
    if (pattern.length !== levels.length) return false;
    return pattern.every((level, i) => {
      const asked = levels[i] ?? '';
      if (!level.startsWith('{')) return asked === level;
      const param = level.slice(1, -1);
      if (param === definition.audience) return asked === principal.prosumer;
      return asked === '+' || !asked.includes('+');
    });
  });
  return fits ? null : `${filter} is not addressed to prosumer "${principal.prosumer}"`;
}
