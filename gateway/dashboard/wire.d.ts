/**
 * The JSON the dashboard reads, as the page relies on it: the API's (gateway/api/README.md), the
 * forecast's (gateway/forecast/history.ts) and the sign-in's. The browser modules import these
 * types in JSDoc; test/dashboard/wire.check.ts has tsc prove that what the API's views and the
 * forecast produce fits them, so a change there that the page would misread fails the type check.
 *
 * Amounts are decimal strings: quantities in milli-units, prices in token base units per
 * milli-unit, token amounts in base units. Times are unix seconds.
 */

/** Where an event sits on the chain. */
export interface Position {
  readonly tx: string;
  readonly block: number;
  readonly logIndex: number;
  readonly timestamp: number;
}

export interface Delivery extends Position {
  readonly agreementId: string;
  readonly utility: string;
  readonly side: 'buyer' | 'seller';
  readonly meter: string;
  readonly delivered: string;
  readonly measuredAt: number;
  readonly quantity: string;
  readonly payable: string;
}

/** The main provider's prices, token base units per milli-unit. */
export interface Tariffs {
  readonly providerSellsAt: string;
  readonly providerBuysAt: string;
}

export interface Settlement extends Position {
  readonly agreementId: string;
  readonly utility: string;
  readonly seller: string;
  /** The park's name for the account (a plant id, "provider"), or null. */
  readonly sellerName: string | null;
  readonly buyer: string;
  readonly buyerName: string | null;
  readonly quantity: string;
  readonly escrow: string;
  readonly delivered: string;
  readonly paidToSeller: string;
  readonly refundedToBuyer: string;
}

export interface Agreement {
  readonly id: string;
  readonly utility: string;
  readonly unit: string;
  readonly market: string;
  /** 'peer', or 'provider' for a trade with the main provider at its tariff (typed string by the API). */
  readonly kind: string;
  /** 'active' or 'settled' (typed string by the API). */
  readonly state: string;
  readonly seller: string;
  readonly sellerName: string | null;
  readonly buyer: string;
  readonly buyerName: string | null;
  readonly quantity: string;
  readonly unitPrice: string;
  readonly escrow: string;
  /** The provider's tariffs when it opened. */
  readonly tariffs: Tariffs;
  readonly deliveryStart: number;
  readonly deliveryEnd: number;
  readonly negotiationId: string;
  readonly transcriptHash: string;
  readonly opened: Position;
  readonly delivered: {
    readonly buyer: string | null;
    readonly seller: string | null;
    readonly payable: string;
  };
  readonly reports: number;
  readonly lastReport: Delivery | null;
  readonly settlement: Settlement | null;
}

export interface Page<T> {
  readonly items: readonly T[];
  /** The `before` of the next (older) page; null on the last. */
  readonly next: string | null;
}

export interface List<T> {
  readonly items: readonly T[];
}

export interface Volume {
  readonly bought: {
    readonly contracted: string;
    readonly delivered: string;
    readonly paid: string;
  };
  readonly sold: {
    readonly contracted: string;
    readonly delivered: string;
    readonly received: string;
  };
}

export interface Account {
  readonly address: string;
  readonly name: string | null;
  readonly balance: string;
  readonly prosumerOf: readonly string[];
  readonly providerOf: readonly string[];
  readonly volumes: { readonly [utility: string]: Volume };
}

export interface Utility {
  readonly utility: string;
  readonly name: string;
  readonly unit: string;
  readonly provider: string;
  readonly tariffs: Tariffs;
  /** Every change, oldest first; `since` null for the tariffs set at deployment. */
  readonly tariffHistory: readonly (Tariffs & { readonly since: Position | null })[];
  readonly agreements: { readonly active: number; readonly settled: number };
  readonly contracted: string;
  readonly delivered: string;
  readonly paidToSellers: string;
  readonly refundedToBuyers: string;
  readonly escrowed: string;
}

/** One utility's negotiations as their parties reported them. */
export interface NegotiationCounts {
  readonly requests: number;
  readonly unanswered: number;
  readonly agreed: number;
  readonly failed: number;
  readonly pending: number;
  /** agreed / (agreed + failed); null before any ended either way. */
  readonly agreementRate: number | null;
  readonly meanRoundsToAgreement: number | null;
  readonly reasons: { readonly [reason: string]: number | undefined };
}

/** GET /api/negotiations/summary: per utility, and the days it reaches back. */
export interface NegotiationSummaries {
  readonly items: readonly NegotiationSummary[];
  readonly retainDays: number;
}

/** Per utility: the park's, and the signed-in plant's own. */
export interface NegotiationSummary {
  readonly utility: string;
  readonly park: NegotiationCounts;
  readonly own: NegotiationCounts | null;
}

export interface Block {
  readonly number: number;
  readonly hash: string;
  readonly parentHash: string;
  readonly timestamp: number;
  readonly txCount: number;
  readonly transactions: readonly string[];
}

export interface ContractEvent {
  readonly logIndex: number;
  readonly address: string;
  readonly contract: string;
  readonly utility: string | null;
  /** Null for a log no ABI of the park's describes. */
  readonly name: string | null;
  readonly args: { readonly [name: string]: unknown };
}

export interface Transaction {
  readonly hash: string;
  readonly block: number;
  readonly timestamp: number;
  readonly index: number;
  readonly from: string;
  readonly to: string | null;
  readonly events: readonly ContractEvent[];
}

export interface BlockWithTransactions extends Omit<Block, 'transactions'> {
  readonly transactions: readonly Transaction[];
}

export interface Status {
  readonly chainId: number;
  readonly indexedBlock: number;
  readonly headBlock: number | null;
  readonly lag: number | null;
  readonly nodeReachable: boolean;
  readonly lastError: string | null;
}

export interface SeriesForecast {
  /** Per hour from the start of the current one, in the utility's unit per hour. */
  readonly hourly: readonly { readonly at_ms: number; readonly value: number }[];
  /** Mean absolute error per hour in the backtest; null without enough history to test. */
  readonly error: { readonly holt_winters: number; readonly seasonal_naive: number } | null;
}

/** GET /api/forecast?utility=… */
export interface Forecast {
  readonly utility: string;
  readonly history_hours: number;
  readonly demand: SeriesForecast;
  readonly balance: SeriesForecast;
}

/**
 * GET /auth/me; 401 when no one is signed in. `who`, a name to show, when the sign-in knows one.
 */
export type Session = { readonly who?: string } & (
  | { readonly role: 'operator' }
  | { readonly role: 'plant'; readonly plant: string; readonly address: string }
);

/** The body of every error answer of the API. */
export interface ErrorBody {
  readonly error: { readonly code: string; readonly message: string };
}

/** The named events of GET /api/events and their data. */
export interface StreamEvents {
  readonly agreement: Agreement;
  readonly delivery: Delivery;
  readonly settlement: Settlement;
  readonly block: Block;
  readonly reset: { readonly reason: 'missed' | 'unknown' | 'reorg' };
}
