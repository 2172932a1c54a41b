/**
 * The read model's records as the API's JSON, shared by the HTTP routes and the event stream so
 * a record reads the same in both. Amounts are decimal strings (JSON numbers lose precision past
 * 2^53): quantities in milli-units of the utility, prices in token base units per milli-unit,
 * token amounts in base units. Times are unix seconds, block numbers plain numbers.
 */
import { UTILITIES, UTILITY_IDS } from '../../core/utilities.js';
import type { IndexerStatus } from '../indexer/indexer.js';
import {
  type AccountRecord,
  type AgreementRecord,
  type BlockRecord,
  type DeliveryRecord,
  payable,
  type SettlementRecord,
  type Tariffs,
  type TxRecord,
  type UtilityRecord,
} from '../indexer/model.js';
import type { Cursor, Page } from '../indexer/page.js';
import { type NegotiationRecord, reportedBy } from '../negotiations/log.js';

/**
 * The name the park gives an account: the id of the plant that trades with it (the park
 * directory's, as its staff and its MQTT topics know it), `provider` for the main provider, or
 * null for an account the park does not name. The chain knows addresses only.
 */
export type NameOf = (address: string) => string | null;

const decimal = (value: bigint): string => value.toString();
const optionalDecimal = (value: bigint | null): string | null =>
  value === null ? null : decimal(value);

export function deliveryJson(d: DeliveryRecord) {
  return {
    agreementId: d.agreementId,
    utility: d.utility,
    side: d.side,
    meter: d.meter,
    delivered: decimal(d.delivered),
    measuredAt: d.measuredAt,
    seq: decimal(d.seq),
    quantity: decimal(d.quantity),
    payable: decimal(d.payable),
    ...d.at,
  };
}

const tariffsJson = (t: Tariffs) => ({
  providerSellsAt: decimal(t.providerSellsAt),
  providerBuysAt: decimal(t.providerBuysAt),
});

export function settlementJson(s: SettlementRecord, nameOf: NameOf) {
  return {
    agreementId: s.agreementId,
    utility: s.utility,
    seller: s.seller,
    sellerName: nameOf(s.seller),
    buyer: s.buyer,
    buyerName: nameOf(s.buyer),
    quantity: decimal(s.quantity),
    escrow: decimal(s.escrow),
    delivered: decimal(s.delivered),
    paidToSeller: decimal(s.paidToSeller),
    refundedToBuyer: decimal(s.refundedToBuyer),
    ...s.at,
  };
}

export function agreementJson(a: AgreementRecord, nameOf: NameOf) {
  const { terms } = a;
  return {
    id: a.id,
    utility: a.utility,
    unit: a.unit,
    market: a.market,
    kind: a.providerTrade === null ? 'peer' : 'provider',
    state: a.settlement === null ? 'active' : 'settled',
    seller: terms.seller,
    sellerName: nameOf(terms.seller),
    buyer: terms.buyer,
    buyerName: nameOf(terms.buyer),
    quantity: decimal(terms.quantity),
    unitPrice: decimal(terms.unitPrice),
    escrow: decimal(a.escrow),
    tariffs: tariffsJson(a.tariffs),
    deliveryStart: terms.deliveryStart,
    deliveryEnd: terms.deliveryEnd,
    negotiationId: terms.negotiationId,
    transcriptHash: terms.transcriptHash,
    providerTrade: a.providerTrade,
    opened: a.opened,
    delivered: {
      buyer: optionalDecimal(a.delivered.buyer),
      seller: optionalDecimal(a.delivered.seller),
      payable: decimal(payable(a.delivered)),
    },
    reports: a.reports,
    lastReport: a.lastReport === null ? null : deliveryJson(a.lastReport),
    settlement: a.settlement === null ? null : settlementJson(a.settlement, nameOf),
  };
}

export function negotiationJson(n: NegotiationRecord) {
  const { seq: _position, requesterSaid: _r, responderSaid: _s, ...record } = n;
  return { ...record, reported: reportedBy(n) };
}

export function blockJson(b: BlockRecord) {
  return { ...b, transactions: [...b.transactions] };
}

export function txJson(t: TxRecord) {
  return { ...t, events: [...t.events] };
}

export function accountJson(a: AccountRecord, nameOf: NameOf) {
  return {
    address: a.address,
    name: nameOf(a.address),
    balance: decimal(a.balance),
    prosumerOf: UTILITY_IDS.filter((id) => a.prosumerOf.has(id)),
    providerOf: UTILITY_IDS.filter((id) => a.providerOf.has(id)),
    meters: [...a.meters],
    volumes: Object.fromEntries(
      UTILITY_IDS.map((id) => {
        const v = a.volumes[id];
        const bought = {
          contracted: decimal(v.boughtContracted),
          delivered: decimal(v.boughtDelivered),
          paid: decimal(v.paid),
        };
        const sold = {
          contracted: decimal(v.soldContracted),
          delivered: decimal(v.soldDelivered),
          received: decimal(v.received),
        };
        return [id, { bought, sold }];
      }),
    ),
  };
}

export function utilityJson(u: UtilityRecord) {
  return {
    utility: u.utility,
    name: UTILITIES[u.utility].name,
    unit: u.unit,
    market: u.market,
    provider: u.provider,
    tariffs: tariffsJson(u.tariffs),
    tariffHistory: u.tariffHistory.map((period) => ({
      ...tariffsJson(period),
      since: period.since,
    })),
    gracePeriod: u.gracePeriod,
    agreements: { active: u.active, settled: u.settled },
    contracted: decimal(u.contracted),
    delivered: decimal(u.delivered),
    paidToSellers: decimal(u.paidToSellers),
    refundedToBuyers: decimal(u.refundedToBuyers),
    escrowed: decimal(u.escrowed),
  };
}

export function statusJson(s: IndexerStatus) {
  const lag = s.headBlock === null ? null : Math.max(0, s.headBlock - s.indexedBlock);
  return { ...s, lag };
}

/** "block:logIndex", the `before` of the next page. */
export function formatCursor(cursor: Cursor): string {
  return `${cursor.block}:${cursor.logIndex}`;
}

export function pageJson<T, J>(
  page: Page<T>,
  view: (item: T) => J,
  cursor: (next: Cursor) => string = formatCursor,
) {
  return { items: page.items.map(view), next: page.next === null ? null : cursor(page.next) };
}
