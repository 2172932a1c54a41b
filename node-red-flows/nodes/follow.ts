/**
 * What the nodes reading the park's MQTT topics share: a subscription on their gateway whose
 * messages are checked against core's topic catalogue before the node sees them, a status dot
 * that follows the connection, and every problem (a refused login, a payload that breaks its
 * schema) sent to Catch nodes.
 */
import { type DecodedMessage, decodeMessage } from '../../core/messages/topics.js';
import type { Gateway, LinkState } from './gateway.js';
import type { Node, NodeStatus } from './red.js';
import { failing, waiting, working } from './status.js';

/** The dot of a node reading the broker: red with the reason while attempts fail. */
function linkStatus(state: LinkState, reason?: Error): NodeStatus {
  if (reason) return failing(reason);
  if (state === 'connected') return working('connected');
  return waiting(state === 'connecting' ? 'connecting' : 'disconnected, retrying');
}

export function followTopic(
  node: Node,
  gateway: Gateway,
  filter: string,
  onMessage: (message: DecodedMessage) => void,
): void {
  const unsubscribe = gateway.subscribe(filter, {
    message(topic, payload) {
      // An empty retained message is how a retained topic is cleared: nothing was said.
      if (payload.length === 0) return;
      let message: DecodedMessage;
      try {
        message = decodeMessage(topic, payload);
      } catch (error) {
        node.error(error as Error, { topic, payload: payload.toString('utf8') });
        return;
      }
      onMessage(message);
    },
    state: (state, reason) => node.status(linkStatus(state, reason)),
    problem: (error) => node.error(error, { topic: filter }),
  });
  node.on('close', (_removed, done) => {
    unsubscribe();
    done();
  });
}
