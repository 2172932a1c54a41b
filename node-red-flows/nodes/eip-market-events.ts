/**
 * eip-market-events: the gateway API's live stream (/api/events): agreements opened, reported on
 * or settled, delivery reports and settlements on the chain, blocks, and `reset` (refetch what
 * you show). Each event's data is checked for the fields flows rely on; other fields pass through
 * unchecked, so a newer gateway that adds some breaks nothing.
 *
 * With "catch up" on, the node also sends the current agreements (the newest 500) each time the
 * stream opens and after every `reset`, as the API asks clients to: connect, then fetch. A flow
 * that keeps agreements by id then shows the park as it is, not only what happened since deploy.
 */
import { z } from 'zod';
import { EipError } from '../../core/errors.js';
import { address, bytes32, utility } from '../../core/messages/schemas.js';
import { parseConfig, setUp } from './config.js';
import { gatewayOf } from './eip-gateway.js';
import type { Gateway } from './gateway.js';
import { defineNode, type Node } from './red.js';
import { openEventSource, type StreamEvent } from './sse.js';
import { clock, failing, waiting, working } from './status.js';

const amount = z.string().regex(/^\d+$/, 'must be a decimal integer string');
const agreement = z.looseObject({
  id: bytes32,
  utility,
  state: z.enum(['active', 'settled']),
  seller: address,
  buyer: address,
  quantity: amount,
  unitPrice: amount,
});

/** The events of gateway/api/README.md and what each must carry. */
const EVENTS = {
  agreement,
  delivery: z.looseObject({ agreementId: bytes32, utility, delivered: amount, quantity: amount }),
  settlement: z.looseObject({
    agreementId: bytes32,
    utility,
    paidToSeller: amount,
    refundedToBuyer: amount,
  }),
  block: z.looseObject({ number: z.number().int().nonnegative(), hash: bytes32 }),
  reset: z.looseObject({ reason: z.enum(['missed', 'unknown', 'reorg']) }),
} as const;
type EventName = keyof typeof EVENTS;

const settingsSchema = z.object({
  agreement: z.boolean(),
  delivery: z.boolean(),
  settlement: z.boolean(),
  block: z.boolean(),
  catchUp: z.boolean(),
});

const agreementPage = z.object({ items: z.array(agreement) });
const CATCH_UP_LIMIT = 500;

function checked<S extends z.ZodType>(schema: S, text: string, where: string): z.output<S> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new EipError('INVALID_MESSAGE', `${where}: not JSON`, { cause: error });
  }
  const result = schema.safeParse(json);
  if (result.success) return result.data;
  const problems = result.error.issues.map((i) => `${i.path.join('.') || '(data)'}: ${i.message}`);
  throw new EipError('INVALID_MESSAGE', `${where}: ${problems.join('; ')}`, {
    details: { problems },
  });
}

function isEventName(name: string): name is EventName {
  return Object.hasOwn(EVENTS, name);
}

function marketEventsNode(node: Node, gateway: Gateway, settings: z.output<typeof settingsSchema>) {
  const { apiUrl } = gateway.settings;
  // A base with a trailing slash, so a gateway behind a path prefix keeps it.
  const base = new URL(apiUrl.endsWith('/') ? apiUrl : `${apiUrl}/`);
  const catchUp = settings.catchUp && settings.agreement;
  // A failure reported since the stream last opened: retries fail alike every few seconds.
  let reported = false;

  const fetchAgreements = async () => {
    const url = new URL(`api/agreements?limit=${CATCH_UP_LIMIT}`, base);
    try {
      const response = await fetch(url, {
        headers: gateway.apiHeaders(),
        signal: AbortSignal.timeout(10_000),
      });
      if (!response.ok) {
        throw (
          gateway.apiRefusal(response.status, url) ??
          new EipError('IO_ERROR', `${url.href}: answered HTTP ${response.status}`, {
            retryable: true,
          })
        );
      }
      // Newest first from the API; oldest first here, so that a flow keeping the latest wins.
      const { items } = checked(agreementPage, await response.text(), url.href);
      for (const item of items.reverse()) node.send({ topic: 'agreement', payload: item });
    } catch (error) {
      node.error(error as Error, { topic: 'agreement', url: url.href });
    }
  };

  const deliver = ({ event, data, id }: StreamEvent) => {
    if (!isEventName(event) || (event !== 'reset' && !settings[event])) return;
    let payload: unknown;
    try {
      payload = checked(EVENTS[event], data, `event ${event} ${id}`);
    } catch (error) {
      node.error(error as Error, { topic: event, payload: data, eventId: id });
      return;
    }
    node.status(working(`${event} at ${clock()}`));
    node.send({ topic: event, payload, eventId: id });
    if (event === 'reset' && catchUp) void catchUpThenRelease();
  };

  // Events that come while the agreements are fetched may be newer than the list: they wait, and
  // follow it, so that a flow keeping the latest state of each agreement ends with theirs.
  let held: StreamEvent[] | undefined;
  let fetching = 0;
  const catchUpThenRelease = async () => {
    held ??= [];
    fetching++;
    await fetchAgreements();
    // A reconnection or reset started another catch-up meanwhile: the last one releases.
    if (--fetching > 0) return;
    const waited = held ?? [];
    held = undefined;
    for (const event of waited) deliver(event);
  };

  const events = new URL('api/events', base);
  const stream = openEventSource(
    events,
    {
      open() {
        reported = false;
        node.status(working('connected'));
        if (catchUp) void catchUpThenRelease();
      },
      event(event) {
        if (held) held.push(event);
        else deliver(event);
      },
      drop(error) {
        node.status(error ? failing(error) : waiting('reconnecting'));
        if (error && !reported) {
          reported = true;
          node.error(error, { topic: 'error', url: base.href });
        }
      },
    },
    {
      retryMs: 2000,
      idleMs: 45_000,
      headers: gateway.apiHeaders(),
      refusal: (status) => gateway.apiRefusal(status, events),
    },
  );
  node.status(waiting('connecting'));
  node.on('close', (_removed, done) => {
    stream.close();
    done();
  });
}

export default defineNode('eip-market-events', (RED, node, def) => {
  const settings = setUp(node, () => ({
    events: parseConfig(settingsSchema, def),
    gateway: gatewayOf(RED, def.gateway),
  }));
  if (settings) marketEventsNode(node, settings.gateway, settings.events);
});
