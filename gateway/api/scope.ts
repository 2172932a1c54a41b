/**
 * What a caller may see of the read model: the one place the API's access control lives. The
 * server turns each request's principal into a Scope; the routes read only `scope.model` and the
 * event stream sends only what `scope.change` lets through, so no route or event can forget it.
 *
 * The operator sees everything. A plant's staff see, of the plant with trading address A:
 * - agreements where A is seller or buyer (peer trades and trades with the main provider alike),
 *   their delivery reports and settlements;
 * - A's own account (balance, volumes, meters): `GET /api/prosumers` lists A alone;
 * - in the explorer, blocks and transactions that carry an event concerning A, with only those
 *   events: an event concerns A when one of its arguments is A or the id of one of A's
 *   agreements. The other events of a shared block or transaction would tell other plants'
 *   trades, transfers and meter keys;
 * - the negotiations it requested or was the chosen counterpart in (`GET /api/negotiations`),
 *   and its own counts beside the park's;
 * - park-wide per-utility totals and tariffs (`GET /api/utilities`) and the indexer's status: no
 *   plant's figure on its own. In a park of two plants the totals minus one's own are the
 *   other's, which is a deployment's call; the totals are what the market's contracts show
 *   anyone who can read the chain.
 * What lies outside the scope reads as absent (404, an empty list), never as forbidden, so an id
 * cannot be confirmed by asking for it.
 */

import { UTILITY_IDS, type UtilityId } from '../../core/utilities.js';
import type { Principal } from '../auth/principal.js';
import type { JsonValue } from '../indexer/decode.js';
import type {
  AgreementRecord,
  BlockRecord,
  DeliveryRecord,
  ReadModel,
  SettlementRecord,
  TxRecord,
} from '../indexer/model.js';
import type { Cursor, Page, PageRequest } from '../indexer/page.js';
import type {
  NegotiationCounts,
  NegotiationFilter,
  NegotiationLog,
  NegotiationRecord,
} from '../negotiations/log.js';
import { MAX_LIMIT } from './params.js';

/** What the routes read of the model. */
export type ModelView = Pick<
  ReadModel,
  | 'agreements'
  | 'agreement'
  | 'deliveries'
  | 'settlements'
  | 'accounts'
  | 'account'
  | 'utilities'
  | 'blocks'
  | 'block'
  | 'transaction'
>;

/** What the scope reads of the negotiation log. */
export type NegotiationReader = Pick<NegotiationLog, 'list' | 'get' | 'counts' | 'retainDays'>;

/** One utility's negotiation counts: the park's, and the caller's plant's own. */
export interface NegotiationSummary {
  readonly utility: UtilityId;
  readonly park: NegotiationCounts;
  /** Null for the operator, who has no plant. */
  readonly own: NegotiationCounts | null;
}

/** What the routes read of the negotiations. */
export interface NegotiationView {
  list(filter: NegotiationFilter, request: PageRequest): Page<NegotiationRecord>;
  get(id: string): NegotiationRecord | undefined;
  summary(): readonly NegotiationSummary[];
  /** The days the summary and the list reach back. */
  readonly retainDays: number;
}

/** One of the indexer's change events, as the event stream forwards it. */
export type Change =
  | { readonly event: 'agreement'; readonly record: AgreementRecord }
  | { readonly event: 'delivery'; readonly record: DeliveryRecord }
  | { readonly event: 'settlement'; readonly record: SettlementRecord }
  | { readonly event: 'block'; readonly record: BlockRecord };

export interface Scope {
  /** The read model as this caller may see it. */
  readonly model: ModelView;
  /** The negotiations as this caller may see them; null where the gateway keeps none. */
  readonly negotiations: NegotiationView | null;
  /** A change as this caller may see it: itself, narrowed (a block's transactions), or null. */
  change(change: Change): Change | null;
}

/**
 * `current` returns the indexer's model at the time of the call: it is replaced after a
 * reorganisation, and a stream's scope lives as long as its connection.
 */
export function scopeOf(
  principal: Principal,
  current: () => ModelView,
  log: NegotiationReader | null,
): Scope {
  if (principal.role === 'operator') {
    return {
      get model() {
        return current();
      },
      negotiations: log && {
        list: (filter, request) => log.list(filter, request),
        get: (id) => log.get(id),
        summary: () => summarise(log, null),
        retainDays: log.retainDays,
      },
      change: (change) => change,
    };
  }
  return plantScope(principal.plant, principal.address, current, log);
}

const EMPTY: Page<never> = { items: [], next: null };

function summarise(log: NegotiationReader, plant: string | null): NegotiationSummary[] {
  const park = log.counts({});
  const own = plant === null ? null : log.counts({ party: plant });
  return UTILITY_IDS.map((utility) => ({
    utility,
    park: park[utility],
    own: own === null ? null : own[utility],
  }));
}

/**
 * A plant's negotiations are those it requested or answered as the chosen counterpart; the
 * park-wide counts are aggregates, like /api/utilities.
 */
function plantNegotiations(id: string, log: NegotiationReader): NegotiationView {
  const own = (record: NegotiationRecord | undefined) =>
    record !== undefined && (record.requester === id || record.responder === id)
      ? record
      : undefined;
  return {
    list: (filter, request) =>
      filter.party === undefined || filter.party === id
        ? log.list({ ...filter, party: id }, request)
        : EMPTY,
    get: (negotiation) => own(log.get(negotiation)),
    summary: () => summarise(log, id),
    retainDays: log.retainDays,
  };
}

function plantScope(
  id: string,
  plant: string,
  current: () => ModelView,
  log: NegotiationReader | null,
): Scope {
  const isParty = (seller: string, buyer: string) => seller === plant || buyer === plant;
  const ownAgreement = (id: string): AgreementRecord | undefined => {
    const agreement = current().agreement(id);
    return agreement && isParty(agreement.terms.seller, agreement.terms.buyer)
      ? agreement
      : undefined;
  };
  // Decoded arguments are checksummed addresses, lowercase ids, decimal strings, and structs of
  // them (AgreementOpened's terms): a walk finds the plant wherever an event names it.
  const concerns = (value: JsonValue): boolean => {
    if (typeof value === 'string') return value === plant || ownAgreement(value) !== undefined;
    if (Array.isArray(value)) return value.some(concerns);
    if (value !== null && typeof value === 'object') return Object.values(value).some(concerns);
    return false;
  };
  const transaction = (tx: TxRecord | undefined): TxRecord | undefined => {
    const events = tx?.events.filter((event) => concerns(event.args)) ?? [];
    return tx === undefined || events.length === 0 ? undefined : { ...tx, events };
  };
  const block = (b: BlockRecord | undefined): BlockRecord | undefined => {
    const transactions =
      b?.transactions.filter((hash) => transaction(current().transaction(hash)) !== undefined) ??
      [];
    return b === undefined || transactions.length === 0 ? undefined : { ...b, transactions };
  };
  // Asking for another party's list gets an empty one, as for a party with no trades.
  const ownParty = (party: string | undefined) => party === undefined || party === plant;

  const model: ModelView = {
    agreements: (filter, request) =>
      ownParty(filter.party) ? current().agreements({ ...filter, party: plant }, request) : EMPTY,
    agreement: ownAgreement,
    deliveries: (filter, request) => {
      if (filter.agreement !== undefined) {
        return ownAgreement(filter.agreement) ? current().deliveries(filter, request) : EMPTY;
      }
      return narrowedPage(
        (chunk) => current().deliveries({}, chunk),
        (delivery) => (ownAgreement(delivery.agreementId) ? delivery : undefined),
        (delivery) => delivery.at,
        request,
      );
    },
    settlements: (filter, request) =>
      ownParty(filter.party) ? current().settlements({ ...filter, party: plant }, request) : EMPTY,
    accounts: () => {
      const own = current().account(plant);
      return own === undefined ? [] : [own];
    },
    account: (address) => (address === plant ? current().account(address) : undefined),
    utilities: () => current().utilities(),
    blocks: (request) =>
      narrowedPage(
        (chunk) => current().blocks(chunk),
        block,
        (b) => ({ block: b.number, logIndex: 0 }),
        request,
      ),
    block: (number) => block(current().block(number)),
    transaction: (hash) => transaction(current().transaction(hash)),
  };

  return {
    model,
    negotiations: log && plantNegotiations(id, log),
    change(change) {
      switch (change.event) {
        case 'agreement':
          return isParty(change.record.terms.seller, change.record.terms.buyer) ? change : null;
        case 'delivery':
          return ownAgreement(change.record.agreementId) ? change : null;
        case 'settlement':
          return isParty(change.record.seller, change.record.buyer) ? change : null;
        case 'block': {
          const record = block(change.record);
          return record === undefined ? null : { event: 'block', record };
        }
      }
    },
  };
}

/**
 * A page of the items `narrow` keeps (and maybe narrows), read from an unfiltered list in chunks,
 * with the same cursor semantics as the model's own pages. It reads as far back as it must to
 * fill the page, which for a park's history is a few chunks.
 */
function narrowedPage<T, U>(
  read: (request: PageRequest) => Page<T>,
  narrow: (item: T) => U | undefined,
  positionOf: (item: T) => Cursor,
  request: PageRequest,
): Page<U> {
  const items: U[] = [];
  /** Position of the last item on the page. */
  let lastAt: Cursor | null = null;
  let before = request.before;
  for (;;) {
    const chunk = read({ limit: MAX_LIMIT, before });
    for (const item of chunk.items) {
      const kept = narrow(item);
      if (kept === undefined) continue;
      // One match beyond the page proves there is a next page, as in newestFirst.
      if (items.length === request.limit) return { items, next: lastAt };
      items.push(kept);
      lastAt = positionOf(item);
    }
    if (chunk.next === null) return { items, next: null };
    before = chunk.next;
  }
}
