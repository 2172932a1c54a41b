/**
 * The JSON routes: each a path, the schemas of its path and query parameters, and a handler that
 * reads the indexer's model as the caller may see it (scope.ts: the server hands each handler the
 * caller's view, so a handler cannot read past it). Handlers are pure reads; the server does the
 * HTTP.
 */
import { z } from 'zod';
import { id, NEGOTIATION_OUTCOMES } from '../../core/messages/schemas.js';
import type { IndexerStatus } from '../indexer/indexer.js';
import {
  account,
  agreementState,
  blockNumber,
  cursor,
  hash,
  limit,
  NONE,
  parseParameters,
  utility,
} from './params.js';
import type { ModelView, NegotiationView } from './scope.js';
import {
  accountJson,
  agreementJson,
  blockJson,
  deliveryJson,
  type NameOf,
  negotiationJson,
  pageJson,
  settlementJson,
  statusJson,
  txJson,
  utilityJson,
} from './views.js';

/** What the routes read: the model as the caller may see it, the indexer's progress, names. */
export interface IndexerView {
  readonly model: ModelView;
  /** Null where the gateway keeps no negotiation log. */
  readonly negotiations: NegotiationView | null;
  status(): IndexerStatus;
  readonly nameOf: NameOf;
}

export type Reply =
  | { readonly status: 200; readonly body: unknown }
  | { readonly status: 404; readonly message: string }
  | { readonly status: 503; readonly message: string };

export interface Route {
  readonly path: string;
  handle(
    params: Readonly<Record<string, string>>,
    query: Readonly<Record<string, string>>,
    indexer: IndexerView,
  ): Reply;
}

function route<P extends z.ZodType, Q extends z.ZodType>(
  path: string,
  schemas: { readonly params: P; readonly query: Q },
  handle: (input: { params: z.output<P>; query: z.output<Q> }, indexer: IndexerView) => Reply,
): Route {
  return {
    path,
    handle: (params, query, indexer) =>
      handle(
        {
          params: parseParameters(schemas.params, params),
          query: parseParameters(schemas.query, query),
        },
        indexer,
      ),
  };
}

const ok = (body: unknown): Reply => ({ status: 200, body });

/** `view` of what was found, or 404 saying `what` `missing` (chain records "have not been indexed"). */
function found<T>(
  value: T | undefined,
  view: (value: T) => unknown,
  what: string,
  missing = 'has not been indexed',
): Reply {
  return value === undefined ? { status: 404, message: `${what} ${missing}` } : ok(view(value));
}

const page = { limit, before: cursor.optional() };

/** The negotiation routes' answer when the gateway keeps no negotiation log. */
function withNegotiations(
  view: NegotiationView | null,
  read: (negotiations: NegotiationView) => Reply,
): Reply {
  return view === null
    ? { status: 503, message: 'this gateway keeps no negotiation outcomes' }
    : read(view);
}

export const ROUTES: readonly Route[] = [
  route(
    '/api/agreements',
    {
      params: NONE,
      query: z.strictObject({
        state: agreementState,
        utility: utility.optional(),
        party: account.optional(),
        ...page,
      }),
    },
    ({ query }, { model, nameOf }) =>
      ok(pageJson(model.agreements(query, query), (a) => agreementJson(a, nameOf))),
  ),
  route(
    '/api/agreements/:id',
    { params: z.strictObject({ id: hash }), query: NONE },
    ({ params }, { model, nameOf }) =>
      found(model.agreement(params.id), (a) => agreementJson(a, nameOf), `agreement ${params.id}`),
  ),
  route(
    '/api/deliveries',
    { params: NONE, query: z.strictObject({ agreement: hash.optional(), ...page }) },
    ({ query }, { model }) => ok(pageJson(model.deliveries(query, query), deliveryJson)),
  ),
  route(
    '/api/settlements',
    {
      params: NONE,
      query: z.strictObject({ utility: utility.optional(), party: account.optional(), ...page }),
    },
    ({ query }, { model, nameOf }) =>
      ok(pageJson(model.settlements(query, query), (s) => settlementJson(s, nameOf))),
  ),
  route('/api/prosumers', { params: NONE, query: NONE }, (_, { model, nameOf }) =>
    ok({ items: model.accounts().map((a) => accountJson(a, nameOf)) }),
  ),
  route(
    '/api/prosumers/:address',
    { params: z.strictObject({ address: account }), query: NONE },
    ({ params }, { model, nameOf }) =>
      found(
        model.account(params.address),
        (a) => accountJson(a, nameOf),
        `account ${params.address}`,
      ),
  ),
  route(
    '/api/negotiations',
    {
      params: NONE,
      query: z.strictObject({
        utility: utility.optional(),
        party: id.optional(),
        outcome: z.enum(NEGOTIATION_OUTCOMES).optional(),
        limit,
        before: blockNumber.optional(),
      }),
    },
    ({ query }, { negotiations }) =>
      withNegotiations(negotiations, (view) => {
        const before =
          query.before === undefined ? undefined : { block: query.before, logIndex: 0 };
        const found = view.list(query, { limit: query.limit, before });
        return ok(pageJson(found, negotiationJson, (next) => String(next.block)));
      }),
  ),
  // Before /api/negotiations/:id, which "summary" would otherwise match (and fail as an id).
  route('/api/negotiations/summary', { params: NONE, query: NONE }, (_, { negotiations }) =>
    withNegotiations(negotiations, (view) =>
      ok({ items: view.summary(), retainDays: view.retainDays }),
    ),
  ),
  route(
    '/api/negotiations/:id',
    { params: z.strictObject({ id: hash }), query: NONE },
    ({ params }, { negotiations }) =>
      withNegotiations(negotiations, (view) =>
        found(
          view.get(params.id),
          negotiationJson,
          `negotiation ${params.id}`,
          'has not been reported by its parties',
        ),
      ),
  ),
  route('/api/utilities', { params: NONE, query: NONE }, (_, { model }) =>
    ok({ items: model.utilities().map(utilityJson) }),
  ),
  route(
    '/api/blocks',
    { params: NONE, query: z.strictObject({ limit, before: blockNumber.optional() }) },
    ({ query }, { model }) => {
      const before = query.before === undefined ? undefined : { block: query.before, logIndex: 0 };
      const blocks = model.blocks({ limit: query.limit, before });
      return ok(pageJson(blocks, blockJson, (next) => String(next.block)));
    },
  ),
  route(
    '/api/blocks/:number',
    { params: z.strictObject({ number: blockNumber }), query: NONE },
    ({ params }, { model }) => {
      const block = model.block(params.number);
      // The block page shows its park transactions in full, as eth_getBlockByNumber(n, true).
      const withTxs = (b: NonNullable<typeof block>) => ({
        ...blockJson(b),
        transactions: b.transactions.flatMap((h) => {
          const tx = model.transaction(h);
          return tx === undefined ? [] : [txJson(tx)];
        }),
      });
      return found(block, withTxs, `block ${params.number} with park events`);
    },
  ),
  route(
    '/api/tx/:hash',
    { params: z.strictObject({ hash }), query: NONE },
    ({ params }, { model }) =>
      found(model.transaction(params.hash), txJson, `transaction ${params.hash}`),
  ),
  route('/api/status', { params: NONE, query: NONE }, (_, indexer) =>
    ok(statusJson(indexer.status())),
  ),
];

/**
 * The route whose path matches, and its path parameters as given: their schemas take only hex
 * digits and numbers, which need no percent-decoding.
 */
export function matchPath<R extends { readonly path: string }>(
  routes: readonly R[],
  pathname: string,
): { route: R; params: Record<string, string> } | null {
  const segments = pathname.split('/');
  for (const candidate of routes) {
    const pattern = candidate.path.split('/');
    if (pattern.length !== segments.length) continue;
    const params: Record<string, string> = {};
    const matches = pattern.every((part, i) => {
      const segment = segments[i] as string;
      if (part.startsWith(':')) params[part.slice(1)] = segment;
      return part.startsWith(':') ? segment !== '' : part === segment;
    });
    if (matches) return { route: candidate, params };
  }
  return null;
}
