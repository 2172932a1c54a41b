/**
 * Turns raw logs of the park's contracts into two things: a decoded event for the block explorer
 * (name and arguments, every contract event, shown as it is) and, for the events the read model
 * folds, a typed fact with bigint amounts. Decoding uses the typechain bindings' interfaces, so
 * an ABI change in contracts/ breaks this file at compile time rather than the dashboard at run
 * time.
 */
import { getAddress, type LogDescription, type ParamType } from 'ethers';
import type { TypedContractEvent, TypedLogDescription } from '../../contracts/types/common.js';
import { UtilityMarket__factory, UtilityToken__factory } from '../../contracts/types/index.js';
import type {
  AgreementOpenedEvent,
  AgreementSettledEvent,
  DeliveryReportedEvent,
  MeterRegisteredEvent,
  MeterRevokedEvent,
  ProsumerDeregisteredEvent,
  ProsumerRegisteredEvent,
  ProviderChangedEvent,
  ProviderTradeOpenedEvent,
  TariffsChangedEvent,
} from '../../contracts/types/UtilityMarket.js';
import type { TransferEvent } from '../../contracts/types/UtilityToken.js';
import { ROLES, type Role } from '../../core/negotiation/issues.js';
import { UTILITY_IDS, type UtilityId } from '../../core/utilities.js';
import type { Manifest } from '../chain/manifest.js';

/** The fields of eth_getLogs results the indexer reads (ethers' Log has them all). */
export interface ChainLog {
  readonly address: string;
  readonly topics: readonly string[];
  readonly data: string;
  readonly blockNumber: number;
  readonly blockHash: string;
  readonly transactionHash: string;
  readonly transactionIndex: number;
  /** Position of the log in its block. */
  readonly index: number;
}

export type JsonValue = string | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** One contract event as the explorer shows it: uint values as decimal strings. */
export interface DecodedEvent {
  readonly logIndex: number;
  readonly address: string;
  readonly contract: 'UtilityToken' | 'UtilityMarket';
  /** The market's utility; null for the token. */
  readonly utility: UtilityId | null;
  /** The event's name, or null for a log no ABI of ours describes. */
  readonly name: string | null;
  readonly args: { readonly [key: string]: JsonValue };
}

/** Terms of an agreement as AgreementOpened carries them. */
export interface AgreementTerms {
  readonly negotiationId: string;
  readonly seller: string;
  readonly buyer: string;
  /** Milli-units of the utility. */
  readonly quantity: bigint;
  /** Token base units per milli-unit. */
  readonly unitPrice: bigint;
  /** Provision window, unix seconds. */
  readonly deliveryStart: number;
  readonly deliveryEnd: number;
  readonly transcriptHash: string;
}

/** The events the read model folds, per market (`utility`) or for the token. */
export type Fact =
  | { readonly kind: 'opened'; readonly agreementId: string; readonly terms: AgreementTerms }
  | {
      readonly kind: 'providerTrade';
      readonly agreementId: string;
      readonly prosumer: string;
      readonly prosumerRole: Role;
    }
  | {
      readonly kind: 'delivery';
      readonly agreementId: string;
      readonly meter: string;
      readonly side: Role;
      readonly delivered: bigint;
      readonly measuredAt: number;
      readonly seq: bigint;
    }
  | {
      readonly kind: 'settled';
      readonly agreementId: string;
      readonly delivered: bigint;
      readonly paidToSeller: bigint;
      readonly refundedToBuyer: bigint;
    }
  | { readonly kind: 'prosumer'; readonly account: string; readonly registered: boolean }
  | {
      readonly kind: 'meter';
      readonly meter: string;
      readonly prosumer: string;
      readonly registered: boolean;
    }
  | { readonly kind: 'provider'; readonly provider: string }
  | { readonly kind: 'tariffs'; readonly sellsAt: bigint; readonly buysAt: bigint }
  | {
      readonly kind: 'transfer';
      readonly from: string;
      readonly to: string;
      readonly value: bigint;
    };

export interface DecodedLog {
  readonly event: DecodedEvent;
  readonly fact: Fact | null;
}

const MARKET = UtilityMarket__factory.createInterface();
const TOKEN = UtilityToken__factory.createInterface();

/**
 * The typechain types of an event's arguments. ethers decodes into an untyped Result; the
 * bindings generated from the same ABI name its fields, so this cast is the one place trusting it.
 */
function argsOf<E extends TypedContractEvent>(log: LogDescription): TypedLogDescription<E>['args'] {
  return log.args as unknown as TypedLogDescription<E>['args'];
}

/** Solidity's `enum Role { Seller, Buyer }`, in core's names. */
function role(value: bigint): Role {
  const name = ROLES[Number(value)];
  if (name === undefined) throw new RangeError(`no Role ${value}`);
  return name;
}

function marketFact(log: LogDescription): Fact | null {
  switch (log.name) {
    case 'AgreementOpened': {
      const { agreementId, terms } = argsOf<AgreementOpenedEvent.Event>(log);
      return {
        kind: 'opened',
        agreementId,
        terms: {
          negotiationId: terms.negotiationId,
          seller: terms.seller,
          buyer: terms.buyer,
          quantity: terms.quantity,
          unitPrice: terms.unitPrice,
          deliveryStart: Number(terms.deliveryStart),
          deliveryEnd: Number(terms.deliveryEnd),
          transcriptHash: terms.transcriptHash,
        },
      };
    }
    case 'ProviderTradeOpened': {
      const { agreementId, prosumer, prosumerRole } = argsOf<ProviderTradeOpenedEvent.Event>(log);
      return { kind: 'providerTrade', agreementId, prosumer, prosumerRole: role(prosumerRole) };
    }
    case 'DeliveryReported': {
      const { agreementId, meter, side, delivered, measuredAt, seq } =
        argsOf<DeliveryReportedEvent.Event>(log);
      const when = Number(measuredAt);
      return {
        kind: 'delivery',
        agreementId,
        meter,
        side: role(side),
        delivered,
        measuredAt: when,
        seq,
      };
    }
    case 'AgreementSettled': {
      const { agreementId, delivered, paidToSeller, refundedToBuyer } =
        argsOf<AgreementSettledEvent.Event>(log);
      return { kind: 'settled', agreementId, delivered, paidToSeller, refundedToBuyer };
    }
    case 'ProsumerRegistered':
      return {
        kind: 'prosumer',
        account: argsOf<ProsumerRegisteredEvent.Event>(log).account,
        registered: true,
      };
    case 'ProsumerDeregistered':
      return {
        kind: 'prosumer',
        account: argsOf<ProsumerDeregisteredEvent.Event>(log).account,
        registered: false,
      };
    case 'MeterRegistered': {
      const { meter, prosumer } = argsOf<MeterRegisteredEvent.Event>(log);
      return { kind: 'meter', meter, prosumer, registered: true };
    }
    case 'MeterRevoked': {
      const { meter, prosumer } = argsOf<MeterRevokedEvent.Event>(log);
      return { kind: 'meter', meter, prosumer, registered: false };
    }
    case 'ProviderChanged':
      return { kind: 'provider', provider: argsOf<ProviderChangedEvent.Event>(log).provider };
    case 'TariffsChanged': {
      const { providerSellsAt, providerBuysAt } = argsOf<TariffsChangedEvent.Event>(log);
      return { kind: 'tariffs', sellsAt: providerSellsAt, buysAt: providerBuysAt };
    }
    default:
      return null; // negotiation, role and pause events: shown in the explorer, not folded
  }
}

function tokenFact(log: LogDescription): Fact | null {
  if (log.name !== 'Transfer') return null;
  const { from, to, value } = argsOf<TransferEvent.Event>(log);
  return { kind: 'transfer', from, to, value };
}

/** An ABI value as JSON: uints as decimal strings, structs as objects, arrays as arrays. */
function jsonValue(type: ParamType, value: unknown): JsonValue {
  if (type.isTuple()) {
    const fields = value as readonly unknown[];
    return Object.fromEntries(
      type.components.map((component, i) => [component.name, jsonValue(component, fields[i])]),
    );
  }
  if (type.isArray()) {
    return (value as readonly unknown[]).map((item) => jsonValue(type.arrayChildren, item));
  }
  if (typeof value === 'bigint') return value.toString();
  return value as string | boolean;
}

function jsonArgs(log: LogDescription): { [key: string]: JsonValue } {
  return Object.fromEntries(
    log.fragment.inputs.map((input, i) => [input.name || String(i), jsonValue(input, log.args[i])]),
  );
}

interface Contract {
  readonly contract: DecodedEvent['contract'];
  readonly utility: UtilityId | null;
}

/** Decodes the logs of the manifest's token and markets. */
export class LogDecoder {
  /** Checksummed addresses to ask eth_getLogs for: the token and every market. */
  readonly addresses: readonly string[];
  private readonly contracts = new Map<string, Contract>();

  constructor(manifest: Manifest) {
    this.contracts.set(getAddress(manifest.token), { contract: 'UtilityToken', utility: null });
    for (const utility of UTILITY_IDS) {
      this.contracts.set(getAddress(manifest.markets[utility].address), {
        contract: 'UtilityMarket',
        utility,
      });
    }
    this.addresses = [...this.contracts.keys()];
  }

  decode(log: ChainLog): DecodedLog {
    const address = getAddress(log.address);
    const contract = this.contracts.get(address);
    if (contract === undefined) throw new RangeError(`log of ${address}, which is not indexed`);
    const isToken = contract.contract === 'UtilityToken';
    let parsed: LogDescription | null = null;
    try {
      parsed = (isToken ? TOKEN : MARKET).parseLog({ topics: [...log.topics], data: log.data });
    } catch {
      parsed = null; // a log our ABI cannot decode is still listed, without a name
    }
    const event: DecodedEvent = {
      logIndex: log.index,
      address,
      ...contract,
      name: parsed?.name ?? null,
      args: parsed ? jsonArgs(parsed) : {},
    };
    if (parsed === null) return { event, fact: null };
    return { event, fact: isToken ? tokenFact(parsed) : marketFact(parsed) };
  }
}
