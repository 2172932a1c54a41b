/**
 * eip-gateway: the config node naming the park's gateway, its MQTT broker (with the user and
 * password) and its HTTP API (with an API token), the three kept as Node-RED credentials, never
 * in the exported flow. The nodes that use it share its one MQTT connection.
 */
import { z } from 'zod';
import { EipError } from '../../core/errors.js';
import { blank, parseConfig, setUp } from './config.js';
import { Gateway } from './gateway.js';
import { defineNode, type Node, type NodeAPI } from './red.js';

const settingsSchema = z.object({
  broker: z
    .string()
    .trim()
    .regex(/^(mqtts?|wss?):\/\/[^\s/]+/, 'must be a URL such as mqtt://gateway:1883'),
  api: z.url({ protocol: /^https?$/, error: 'must be a URL such as http://gateway:8080' }),
  // RFC 6750's b64token: what `eip-gateway token` prints. The hash or the config line pasted
  // instead is a mistake worth naming here rather than a 401 at every request.
  token: z
    .union([
      blank,
      z
        .string()
        .trim()
        .regex(
          /^[\w.~+/-]+=*$/,
          'must be the token eip-gateway token printed (eipt_...), not its hash nor the config entry',
        ),
    ])
    .optional(),
});

/** The gateway of a config node, for the nodes that use it; `id` is their `gateway` property. */
export function gatewayOf(RED: NodeAPI, id: unknown): Gateway {
  const node = typeof id === 'string' && id !== '' ? RED.nodes.getNode(id) : null;
  if (node === null) {
    throw new EipError('INVALID_ARGUMENT', 'no gateway chosen: pick or add an eip-gateway node');
  }
  const gateway = (node as { gateway?: unknown }).gateway;
  if (!(gateway instanceof Gateway)) {
    throw new EipError('INVALID_ARGUMENT', 'the eip-gateway node has invalid settings');
  }
  return gateway;
}

export default defineNode(
  'eip-gateway',
  (_RED, node, def) => {
    // A config node has no dot of its own: the nodes using it say "invalid settings".
    // The token is a credential, not a property, but parsed with them: a bad one names its field.
    const settings = setUp(node, () =>
      parseConfig(settingsSchema, { ...def, token: node.credentials?.token }),
    );
    if (settings === undefined) return;
    const gateway = new Gateway({
      brokerUrl: settings.broker,
      apiUrl: settings.api,
      ...(node.credentials?.user && { username: node.credentials.user }),
      ...(node.credentials?.password && { password: node.credentials.password }),
      ...(settings.token && { apiToken: settings.token }),
    });
    (node as Node & { gateway?: Gateway }).gateway = gateway;
    node.on('close', (_removed, done) => {
      gateway.close().then(done, done);
    });
  },
  { user: { type: 'text' }, password: { type: 'password' }, token: { type: 'password' } },
);
