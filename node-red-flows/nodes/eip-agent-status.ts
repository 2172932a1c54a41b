/**
 * eip-agent-status: the presence of the park's edge agents, from their retained status topic
 * (online on connect, offline as their last will). One message per change: a prosumer seen for
 * the first time, or going online or offline; repeats of the same state are dropped.
 */
import { z } from 'zod';
import { id } from '../../core/messages/schemas.js';
import { subscription } from '../../core/messages/topics.js';
import { blank, parseConfig, setUp } from './config.js';
import { gatewayOf } from './eip-gateway.js';
import { followTopic } from './follow.js';
import { defineNode } from './red.js';
import { stale, working } from './status.js';

const settingsSchema = z.object({ plant: z.union([blank, id]) });

export default defineNode('eip-agent-status', (RED, node, def) => {
  const settings = setUp(node, () => {
    const { plant } = parseConfig(settingsSchema, def);
    return {
      filter: subscription('agentStatus', plant === undefined ? {} : { prosumer: plant }),
      gateway: gatewayOf(RED, def.gateway),
    };
  });
  if (settings === undefined) return;
  const states = new Map<string, 'online' | 'offline'>();
  followTopic(node, settings.gateway, settings.filter, (message) => {
    if (message.name !== 'agentStatus') return;
    const { payload } = message;
    if (states.get(payload.prosumer) === payload.state) return;
    states.set(payload.prosumer, payload.state);
    const online = [...states.values()].filter((state) => state === 'online').length;
    const text = `${online} online, ${states.size - online} offline`;
    node.status(online === states.size ? working(text) : stale(text));
    node.send({ topic: payload.prosumer, payload });
  });
});
