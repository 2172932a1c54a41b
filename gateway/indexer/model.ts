/**
 * The read model: what the park's contract events add up to, folded block by block. It is a pure
 * fold of the blocks given to `applyBlock` (no I/O), so the indexer can rebuild it from its kept
 * blocks after a reorganisation, and a catch-up from the first block ends in the same state as
 * following the chain live.
 *
 * Token balances are folded from the token's Transfer events rather than read with balanceOf:
 * the UtilityToken moves balances only by Transfer (mint and burn are transfers from and to the
 * zero address, no fees, no rebasing), so the fold is exact; it is the balance as of the indexed
 * block, consistent with the agreements beside it, where balanceOf would read the node's head; it
 * needs no call per change; and it rewinds with the rest of the model on a reorganisation.
 *
 * Amounts are bigint: quantities in milli-units of the utility, prices in token base units per
 * milli-unit, token amounts in base units (see core/units.ts).
 */
import { getAddress, ZeroAddress } from 'ethers';
import type { Logger } from '../../core/logger.js';
import type { Role } from '../../core/negotiation/issues.js';
import { UTILITY_IDS, type UtilityId } from '../../core/utilities.js';
import type { Manifest } from '../chain/manifest.js';
import type { ParkBlock } from './chain.js';
import type { AgreementTerms, DecodedEvent, Fact } from './decode.js';
import { type Cursor, newestFirst, type Page, type PageRequest } from './page.js';

/** The log an event came from. */
export interface EventPosition extends Cursor {
  readonly tx: string;
  /** The block's time, unix seconds. */
  readonly timestamp: number;
}

export interface DeliveryRecord {
  readonly agreementId: string;
  readonly utility: UtilityId;
  /** Whose meter measured it. */
  readonly side: Role;
  readonly meter: string;
  /** Cumulative milli-units that side's meter reported, capped at the quantity. */
  readonly delivered: bigint;
  /** When the meter measured it, unix seconds. */
  readonly measuredAt: number;
  readonly seq: bigint;
  /** The agreement's quantity, to show the figure against. */
  readonly quantity: bigint;
  /** What settlement would pay for after this report (see `payable`). */
  readonly payable: bigint;
  readonly at: EventPosition;
}

export interface SettlementRecord {
  readonly agreementId: string;
  readonly utility: UtilityId;
  readonly seller: string;
  readonly buyer: string;
  readonly quantity: bigint;
  readonly escrow: bigint;
  readonly delivered: bigint;
  readonly paidToSeller: bigint;
  readonly refundedToBuyer: bigint;
  readonly at: EventPosition;
}

/** The main provider's prices, token base units per milli-unit. */
export interface Tariffs {
  readonly providerSellsAt: bigint;
  readonly providerBuysAt: bigint;
}

/** Tariffs and the event that set them; null for those the manifest gave (set at deployment). */
export interface TariffPeriod extends Tariffs {
  readonly since: EventPosition | null;
}

export interface AgreementRecord {
  readonly id: string;
  readonly utility: UtilityId;
  readonly unit: string;
  readonly market: string;
  readonly terms: AgreementTerms;
  /** quantity * unitPrice, taken from the buyer when it opened. */
  readonly escrow: bigint;
  readonly opened: EventPosition;
  /** The tariffs in force when it opened: what the parties would have got from the provider. */
  readonly tariffs: Tariffs;
  /** Set for a trade with the main provider at its tariff; null for a peer agreement. */
  readonly providerTrade: { readonly prosumer: string; readonly prosumerRole: Role } | null;
  /** Each side's latest cumulative figure, null until its meter reported. */
  readonly delivered: { readonly buyer: bigint | null; readonly seller: bigint | null };
  readonly reports: number;
  readonly lastReport: DeliveryRecord | null;
  readonly settlement: SettlementRecord | null;
}

export interface BlockRecord {
  readonly number: number;
  readonly hash: string;
  readonly parentHash: string;
  readonly timestamp: number;
  /** Every transaction in the block. */
  readonly txCount: number;
  /** Hashes of the transactions that touched the park's contracts, in block order. */
  readonly transactions: readonly string[];
}

export interface TxRecord {
  readonly hash: string;
  readonly block: number;
  readonly blockHash: string;
  readonly timestamp: number;
  readonly index: number;
  readonly from: string;
  readonly to: string | null;
  readonly events: readonly DecodedEvent[];
}

/** One account's trade in one utility. Delivered and paid count settled agreements. */
export interface Volume {
  boughtContracted: bigint;
  boughtDelivered: bigint;
  paid: bigint;
  soldContracted: bigint;
  soldDelivered: bigint;
  received: bigint;
}

/** A wallet that is a prosumer or provider, a party to an agreement, or holds tokens. */
export interface AccountRecord {
  readonly address: string;
  readonly balance: bigint;
  readonly prosumerOf: ReadonlySet<UtilityId>;
  readonly providerOf: ReadonlySet<UtilityId>;
  /** Registered, unrevoked meter keys. */
  readonly meters: readonly { readonly utility: UtilityId; readonly meter: string }[];
  readonly volumes: Readonly<Record<UtilityId, Readonly<Volume>>>;
}

export interface UtilityRecord {
  readonly utility: UtilityId;
  readonly unit: string;
  readonly market: string;
  readonly provider: string;
  /** Current tariffs. */
  readonly tariffs: Tariffs;
  /** Every change of the tariffs, oldest first; the last is `tariffs`. */
  readonly tariffHistory: readonly TariffPeriod[];
  readonly gracePeriod: number;
  readonly active: number;
  readonly settled: number;
  readonly contracted: bigint;
  /** Delivered, paid and refunded in settled agreements. */
  readonly delivered: bigint;
  readonly paidToSellers: bigint;
  readonly refundedToBuyers: bigint;
  /** Tokens the market holds: escrow of its open agreements. */
  readonly escrowed: bigint;
}

/** What one block changed, for the indexer's change events. */
export interface BlockChanges {
  readonly block: BlockRecord;
  /** Each agreement opened, reported on or settled in the block, once, in its final state. */
  readonly agreements: readonly AgreementRecord[];
  readonly deliveries: readonly DeliveryRecord[];
  readonly settlements: readonly SettlementRecord[];
}

export type AgreementState = 'active' | 'settled' | 'all';

export interface AgreementFilter {
  readonly state?: AgreementState | undefined;
  readonly utility?: UtilityId | undefined;
  /** Seller or buyer, checksummed. */
  readonly party?: string | undefined;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };
type MutableAccount = Mutable<Omit<AccountRecord, 'prosumerOf' | 'providerOf' | 'volumes'>> & {
  readonly prosumerOf: Set<UtilityId>;
  readonly providerOf: Set<UtilityId>;
  readonly volumes: Record<UtilityId, Volume>;
};

/**
 * What settlement pays for, as the contract's _payableDelivered: the lower figure where both
 * meters reported, else the one side's that did, else nothing.
 */
export function payable(delivered: AgreementRecord['delivered']): bigint {
  const { buyer, seller } = delivered;
  if (buyer === null) return seller ?? 0n;
  if (seller === null) return buyer;
  if (buyer < seller) return buyer; // bigints: Math.min takes numbers only
  return seller;
}

function emptyVolumes(): Record<UtilityId, Volume> {
  return Object.fromEntries(
    UTILITY_IDS.map((id) => [
      id,
      {
        boughtContracted: 0n,
        boughtDelivered: 0n,
        paid: 0n,
        soldContracted: 0n,
        soldDelivered: 0n,
        received: 0n,
      },
    ]),
  ) as Record<UtilityId, Volume>;
}

function isParty(party: string | undefined, seller: string, buyer: string): boolean {
  return party === undefined || party === seller || party === buyer;
}

/** Positions of items that are blocks: a block sorts before its own logs' cursors. */
const blockPosition = (block: BlockRecord): Cursor => ({ block: block.number, logIndex: 0 });

export class ReadModel {
  private readonly agreementList: Mutable<AgreementRecord>[] = [];
  private readonly agreementsById = new Map<string, Mutable<AgreementRecord>>();
  private readonly deliveryList: DeliveryRecord[] = [];
  private readonly settlementList: SettlementRecord[] = [];
  private readonly blockList: BlockRecord[] = [];
  private readonly blocksByNumber = new Map<number, BlockRecord>();
  private readonly txsByHash = new Map<string, TxRecord>();
  private readonly accountsByAddress = new Map<string, MutableAccount>();
  private readonly utilitiesById: Record<UtilityId, Mutable<UtilityRecord>>;
  /** Which utility a market address is, to tell escrow transfers from accounts'. */
  private readonly marketUtility = new Map<string, UtilityId>();
  private readonly token: string;

  constructor(
    manifest: Manifest,
    private readonly logger: Logger,
  ) {
    this.token = getAddress(manifest.token);
    this.utilitiesById = Object.fromEntries(
      UTILITY_IDS.map((utility) => {
        const market = manifest.markets[utility];
        this.marketUtility.set(getAddress(market.address), utility);
        const record: Mutable<UtilityRecord> = {
          utility,
          unit: market.unit,
          market: getAddress(market.address),
          provider: getAddress(market.provider),
          tariffs: {
            providerSellsAt: market.providerSellsAt,
            providerBuysAt: market.providerBuysAt,
          },
          tariffHistory: [
            {
              providerSellsAt: market.providerSellsAt,
              providerBuysAt: market.providerBuysAt,
              since: null,
            },
          ],
          gracePeriod: market.gracePeriod,
          active: 0,
          settled: 0,
          contracted: 0n,
          delivered: 0n,
          paidToSellers: 0n,
          refundedToBuyers: 0n,
          escrowed: 0n,
        };
        return [utility, record];
      }),
    ) as Record<UtilityId, Mutable<UtilityRecord>>;
  }

  /** Folds one block; blocks must come in chain order. */
  applyBlock(parkBlock: ParkBlock): BlockChanges {
    const block: BlockRecord = {
      number: parkBlock.number,
      hash: parkBlock.hash,
      parentHash: parkBlock.parentHash,
      timestamp: parkBlock.timestamp,
      txCount: parkBlock.txCount,
      transactions: parkBlock.transactions.map((tx) => tx.hash),
    };
    this.blockList.push(block);
    this.blocksByNumber.set(block.number, block);
    const agreements = new Map<string, AgreementRecord>();
    const deliveries: DeliveryRecord[] = [];
    const settlements: SettlementRecord[] = [];
    for (const tx of parkBlock.transactions) {
      this.txsByHash.set(tx.hash, {
        hash: tx.hash,
        block: block.number,
        blockHash: block.hash,
        timestamp: block.timestamp,
        index: tx.index,
        from: tx.from,
        to: tx.to,
        events: tx.logs.map((log) => log.event),
      });
      for (const { event, fact } of tx.logs) {
        if (fact === null) continue;
        const at: EventPosition = {
          tx: tx.hash,
          block: block.number,
          logIndex: event.logIndex,
          timestamp: block.timestamp,
        };
        const changed = this.applyFact(fact, event.utility, at);
        if (changed === null) continue;
        agreements.set(changed.agreement.id, changed.agreement);
        if (changed.delivery) deliveries.push(changed.delivery);
        if (changed.settlement) settlements.push(changed.settlement);
      }
    }
    return { block, agreements: [...agreements.values()], deliveries, settlements };
  }

  /** Applies one fact; returns the agreement it changed, if any. */
  private applyFact(
    fact: Fact,
    utility: UtilityId | null,
    at: EventPosition,
  ): {
    agreement: AgreementRecord;
    delivery?: DeliveryRecord;
    settlement?: SettlementRecord;
  } | null {
    if (fact.kind === 'transfer') {
      this.credit(fact.from, -fact.value);
      this.credit(fact.to, fact.value);
      return null;
    }
    if (utility === null) return null;
    switch (fact.kind) {
      case 'opened':
        return { agreement: this.open(fact.agreementId, fact.terms, utility, at) };
      case 'providerTrade': {
        const agreement = this.known(fact.agreementId, at);
        if (agreement === undefined) return null;
        agreement.providerTrade = { prosumer: fact.prosumer, prosumerRole: fact.prosumerRole };
        return { agreement };
      }
      case 'delivery': {
        const agreement = this.known(fact.agreementId, at);
        if (agreement === undefined) return null;
        agreement.delivered = { ...agreement.delivered, [fact.side]: fact.delivered };
        const delivery: DeliveryRecord = {
          agreementId: fact.agreementId,
          utility,
          side: fact.side,
          meter: fact.meter,
          delivered: fact.delivered,
          measuredAt: fact.measuredAt,
          seq: fact.seq,
          quantity: agreement.terms.quantity,
          payable: payable(agreement.delivered),
          at,
        };
        agreement.reports++;
        agreement.lastReport = delivery;
        this.deliveryList.push(delivery);
        return { agreement, delivery };
      }
      case 'settled':
        return this.settle(fact, at);
      case 'prosumer': {
        const { prosumerOf } = this.ensureAccount(fact.account);
        if (fact.registered) prosumerOf.add(utility);
        else prosumerOf.delete(utility);
        return null;
      }
      case 'meter': {
        const account = this.ensureAccount(fact.prosumer);
        account.meters = account.meters.filter(
          (m) => !(m.utility === utility && m.meter === fact.meter),
        );
        if (fact.registered) account.meters = [...account.meters, { utility, meter: fact.meter }];
        return null;
      }
      case 'provider': {
        const record = this.utilitiesById[utility];
        this.accountsByAddress.get(record.provider)?.providerOf.delete(utility);
        record.provider = fact.provider;
        this.ensureAccount(fact.provider).providerOf.add(utility);
        return null;
      }
      case 'tariffs': {
        const record = this.utilitiesById[utility];
        const { providerSellsAt, providerBuysAt } = record.tariffs;
        // The constructor's event repeats the manifest's tariffs: no change, no new period.
        if (fact.sellsAt === providerSellsAt && fact.buysAt === providerBuysAt) return null;
        record.tariffs = { providerSellsAt: fact.sellsAt, providerBuysAt: fact.buysAt };
        record.tariffHistory = [...record.tariffHistory, { ...record.tariffs, since: at }];
        return null;
      }
    }
  }

  private open(
    id: string,
    terms: AgreementTerms,
    utility: UtilityId,
    at: EventPosition,
  ): AgreementRecord {
    const record = this.utilitiesById[utility];
    const agreement: Mutable<AgreementRecord> = {
      id,
      utility,
      unit: record.unit,
      market: record.market,
      terms,
      escrow: terms.quantity * terms.unitPrice,
      opened: at,
      tariffs: record.tariffs,
      providerTrade: null,
      delivered: { buyer: null, seller: null },
      reports: 0,
      lastReport: null,
      settlement: null,
    };
    this.agreementList.push(agreement);
    this.agreementsById.set(id, agreement);
    record.active++;
    record.contracted += terms.quantity;
    this.volume(terms.seller, utility).soldContracted += terms.quantity;
    this.volume(terms.buyer, utility).boughtContracted += terms.quantity;
    return agreement;
  }

  private settle(fact: Extract<Fact, { kind: 'settled' }>, at: EventPosition) {
    const agreement = this.known(fact.agreementId, at);
    if (agreement === undefined) return null;
    const { utility, terms } = agreement;
    const settlement: SettlementRecord = {
      agreementId: agreement.id,
      utility,
      seller: terms.seller,
      buyer: terms.buyer,
      quantity: terms.quantity,
      escrow: agreement.escrow,
      delivered: fact.delivered,
      paidToSeller: fact.paidToSeller,
      refundedToBuyer: fact.refundedToBuyer,
      at,
    };
    agreement.settlement = settlement;
    this.settlementList.push(settlement);
    const record = this.utilitiesById[utility];
    record.active--;
    record.settled++;
    record.delivered += fact.delivered;
    record.paidToSellers += fact.paidToSeller;
    record.refundedToBuyers += fact.refundedToBuyer;
    const sold = this.volume(terms.seller, utility);
    sold.soldDelivered += fact.delivered;
    sold.received += fact.paidToSeller;
    const bought = this.volume(terms.buyer, utility);
    bought.boughtDelivered += fact.delivered;
    bought.paid += fact.paidToSeller;
    return { agreement, settlement };
  }

  /**
   * The agreement an event refers to. The contract emits nothing for an agreement it did not
   * open, so a miss means the manifest's first block is later than the agreement: said, skipped.
   */
  private known(id: string, at: EventPosition): Mutable<AgreementRecord> | undefined {
    const agreement = this.agreementsById.get(id);
    if (agreement === undefined) {
      this.logger.warn(
        { agreementId: id, block: at.block, tx: at.tx },
        'event of an agreement opened before the manifest block; skipped',
      );
    }
    return agreement;
  }

  /** Moves `delta` base units in or out of a wallet, or a market's escrow. */
  private credit(address: string, delta: bigint): void {
    if (address === ZeroAddress || address === this.token) return; // minted or burnt
    const market = this.marketUtility.get(address);
    if (market !== undefined) this.utilitiesById[market].escrowed += delta;
    else this.ensureAccount(address).balance += delta;
  }

  private ensureAccount(address: string): MutableAccount {
    let account = this.accountsByAddress.get(address);
    if (account === undefined) {
      account = {
        address,
        balance: 0n,
        prosumerOf: new Set(),
        providerOf: new Set(),
        meters: [],
        volumes: emptyVolumes(),
      };
      this.accountsByAddress.set(address, account);
    }
    return account;
  }

  private volume(address: string, utility: UtilityId): Volume {
    return this.ensureAccount(address).volumes[utility];
  }

  // ----------------------------------------------------------------------------- queries

  agreements(filter: AgreementFilter, request: PageRequest): Page<AgreementRecord> {
    const { state = 'all', utility, party } = filter;
    return newestFirst(
      this.agreementList,
      (a) => a.opened,
      (a) =>
        (state === 'all' || (state === 'settled') === (a.settlement !== null)) &&
        (utility === undefined || a.utility === utility) &&
        isParty(party, a.terms.seller, a.terms.buyer),
      request,
    );
  }

  agreement(id: string): AgreementRecord | undefined {
    return this.agreementsById.get(id);
  }

  deliveries(filter: { readonly agreement?: string | undefined }, request: PageRequest) {
    return newestFirst(
      this.deliveryList,
      (d) => d.at,
      (d) => filter.agreement === undefined || d.agreementId === filter.agreement,
      request,
    );
  }

  settlements(filter: Omit<AgreementFilter, 'state'>, request: PageRequest) {
    return newestFirst(
      this.settlementList,
      (s) => s.at,
      (s) =>
        (filter.utility === undefined || s.utility === filter.utility) &&
        isParty(filter.party, s.seller, s.buyer),
      request,
    );
  }

  blocks(request: PageRequest): Page<BlockRecord> {
    return newestFirst(this.blockList, blockPosition, () => true, request);
  }

  block(number: number): BlockRecord | undefined {
    return this.blocksByNumber.get(number);
  }

  transaction(hash: string): TxRecord | undefined {
    return this.txsByHash.get(hash);
  }

  /** Accounts in the order they first appeared. */
  accounts(): readonly AccountRecord[] {
    return [...this.accountsByAddress.values()];
  }

  account(address: string): AccountRecord | undefined {
    return this.accountsByAddress.get(address);
  }

  utilities(): readonly UtilityRecord[] {
    return UTILITY_IDS.map((id) => this.utilitiesById[id]);
  }
}
