/**
 * eip-delivery: a plant's delivery confirmations, as the gateway sends them when an agreement is
 * settled (eip/v1/agents/PLANT/deliveries): checked against core's schema, passed on in their wire
 * form (token amounts as decimal strings, which JSON and the debug sidebar carry whole), with
 * the plant's side of the trade and the shortfall worked out for switch nodes.
 */
import { z } from 'zod';
import { deliveryConfirmation, id } from '../../core/messages/schemas.js';
import { topic } from '../../core/messages/topics.js';
import { parseConfig, setUp } from './config.js';
import { gatewayOf } from './eip-gateway.js';
import { followTopic } from './follow.js';
import { defineNode } from './red.js';
import { clock, stale, working } from './status.js';

const settingsSchema = z.object({ plant: id });

export default defineNode('eip-delivery', (RED, node, def) => {
  const settings = setUp(node, () => ({
    plant: parseConfig(settingsSchema, def).plant,
    gateway: gatewayOf(RED, def.gateway),
  }));
  if (settings === undefined) return;
  const { plant } = settings;
  followTopic(node, settings.gateway, topic('deliveryConfirmation', { prosumer: plant }), (m) => {
    if (m.name !== 'deliveryConfirmation') return;
    const { payload } = m;
    const shortfall = Math.max(0, payload.contracted_milli - payload.delivered_milli);
    const text = `${payload.delivered_milli / 1000} of ${payload.contracted_milli / 1000} delivered, ${clock()}`;
    node.status(shortfall === 0 ? working(text) : stale(text));
    node.send({
      topic: payload.agreement_id,
      payload: deliveryConfirmation.encode(payload),
      plant,
      role: payload.seller === plant ? 'seller' : 'buyer',
      shortfall_milli: shortfall,
      complete: shortfall === 0,
    });
  });
});
