/**
 * Builds the AsyncAPI 3.0 document of the topic tree from `TOPICS`, so the published description
 * is the code's own. `asyncapi.yaml` is this document; a test fails when they differ
 * (`npx vitest run -u test/core/messages` rewrites it).
 */
import { z } from 'zod';
import { TOPIC_NAMES, TOPIC_ROOT, TOPICS, type TopicName } from './topics.js';

const PARAMETERS: Readonly<Record<string, string>> = {
  prosumer: 'Id of the prosumer (plant) whose agent sends or receives the message.',
  meter: 'Id of the meter within the plant, as in the edge configuration.',
  utility: 'Traded utility: biogas, electricity or heat.',
  to: 'Id of the prosumer the negotiation message is addressed to.',
  from: 'Id of the prosumer that sends the negotiation message.',
};

const TREE = `Every topic lives under \`${TOPIC_ROOT}/\`. Ids are lowercase \`[a-z0-9_-]\`.

| topic | payload | from -> to | retained |
| --- | --- | --- | --- |
${TOPIC_NAMES.map((name) => {
  const t = TOPICS[name];
  return `| \`${t.pattern}\` | ${messageName(name)} | ${t.publishers.join(', ')} -> ${t.subscribers.join(', ')} | ${t.retained ? 'yes' : 'no'} |`;
}).join('\n')}

Conventions: payloads are JSON; amounts of a utility are integer thousandths of its unit
(\`*_milli\`: litres of m3, Wh of kWh); token amounts and EIP-712 uint256 fields are decimal
strings in the token's base unit (18 decimals); times are milliseconds since the Unix epoch
(\`*_ms\`) or, inside signed structs, Unix seconds. A topic level that names the sender must equal
the same field in the payload. Nested \`offer\`, \`agreement\` and \`report\` objects are the
EIP-712 structs exactly as signed (domain: name "EIP Utility Market", version "1", the chain id
and the utility's market contract).`;

function messageName(name: TopicName): string {
  return name.charAt(0).toUpperCase() + name.slice(1);
}

function channelParameters(pattern: string) {
  const keys = [...pattern.matchAll(/\{(\w+)\}/g)].map((m) => m[1] ?? '');
  return Object.fromEntries(keys.map((key) => [key, { description: PARAMETERS[key] ?? key }]));
}

export function asyncApiDocument(version: string) {
  const channels: Record<string, unknown> = {};
  const operations: Record<string, unknown> = {};
  const messages: Record<string, unknown> = {};
  for (const name of TOPIC_NAMES) {
    const t = TOPICS[name];
    const message = messageName(name);
    channels[name] = {
      address: t.pattern,
      parameters: channelParameters(t.pattern),
      messages: { [message]: { $ref: `#/components/messages/${message}` } },
    };
    for (const party of t.publishers) {
      operations[`${party}Sends${message}`] = {
        action: 'send',
        channel: { $ref: `#/channels/${name}` },
        summary: `${party} publishes (QoS ${t.qos}${t.retained ? ', retained' : ''})`,
      };
    }
    for (const party of t.subscribers) {
      operations[`${party}Receives${message}`] = {
        action: 'receive',
        channel: { $ref: `#/channels/${name}` },
      };
    }
    const { $schema: _ignored, ...payload } = z.toJSONSchema(t.schema, {
      io: 'input',
      unrepresentable: 'any',
    });
    messages[message] = {
      name: message,
      summary: t.summary,
      contentType: 'application/json',
      payload,
      bindings: { mqtt: { qos: t.qos, retain: t.retained } },
    };
  }
  return {
    asyncapi: '3.0.0',
    info: {
      title: 'Eco-industrial park utility market: MQTT topics',
      version,
      description: TREE,
    },
    defaultContentType: 'application/json',
    channels,
    operations,
    components: { messages },
  };
}
