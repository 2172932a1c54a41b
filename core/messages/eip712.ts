/**
 * EIP-712 typed data shared by edge, gateway and the market contracts: an offer, an agreement and
 * a metered delivery report. The Solidity contracts hash exactly these field lists (their
 * TYPEHASHes are keccak256 of `encodeType` of these), so this file and the contracts change
 * together.
 *
 * Field names follow Solidity (camelCase) because they are the signed struct. Quantities are in
 * milli-units of the utility and unit prices in token base units per milli-unit, so
 * escrow = quantity * unitPrice needs no division on chain (see core/units.ts).
 */
// Subpaths, not 'ethers': the root loads providers and contracts the edge never uses (13 MB).
import { AbiCoder } from 'ethers/abi';
import { getAddress } from 'ethers/address';
import { ZeroHash } from 'ethers/constants';
import { keccak256 } from 'ethers/crypto';
import { TypedDataEncoder, type TypedDataField } from 'ethers/hash';
import { concat } from 'ethers/utils';
import { EipError } from '../errors.js';
import { type Milli, quantityBaseUnits, unitPriceBaseUnits } from '../units.js';
import { recoverDigestAddress } from './ecdsa.js';

export const EIP712_NAME = 'EIP Utility Market';
export const EIP712_VERSION = '1';

/** The domain binds a signature to one chain and one market contract (one per utility). */
export interface MarketDomain {
  readonly name: string;
  readonly version: string;
  readonly chainId: bigint;
  readonly verifyingContract: string;
}

export function marketDomain(chainId: bigint | number, verifyingContract: string): MarketDomain {
  return {
    name: EIP712_NAME,
    version: EIP712_VERSION,
    chainId: BigInt(chainId),
    verifyingContract: getAddress(verifyingContract),
  };
}

type Types = Record<string, TypedDataField[]>;

export const OFFER_TYPES = {
  Offer: [
    { name: 'negotiationId', type: 'bytes32' },
    { name: 'seller', type: 'address' },
    { name: 'buyer', type: 'address' },
    /** Who makes this offer: the seller or the buyer. */
    { name: 'proposer', type: 'address' },
    { name: 'round', type: 'uint32' },
    { name: 'quantity', type: 'uint256' },
    { name: 'unitPrice', type: 'uint256' },
    /** Hash of the previous offer in this negotiation (zero for the first): a hash chain. */
    { name: 'previous', type: 'bytes32' },
  ],
} as const satisfies Types;

export const AGREEMENT_TYPES = {
  Agreement: [
    { name: 'negotiationId', type: 'bytes32' },
    { name: 'seller', type: 'address' },
    { name: 'buyer', type: 'address' },
    { name: 'quantity', type: 'uint256' },
    { name: 'unitPrice', type: 'uint256' },
    /** Provision window, unix seconds. */
    { name: 'deliveryStart', type: 'uint64' },
    { name: 'deliveryEnd', type: 'uint64' },
    /** Hash of the last offer of the transcript, which commits to every offer before it. */
    { name: 'transcriptHash', type: 'bytes32' },
    /** Per-signer replay protection: a nonce each party uses once, and a signature expiry. */
    { name: 'sellerNonce', type: 'uint256' },
    { name: 'sellerDeadline', type: 'uint64' },
    { name: 'buyerNonce', type: 'uint256' },
    { name: 'buyerDeadline', type: 'uint64' },
  ],
} as const satisfies Types;

export const DELIVERY_REPORT_TYPES = {
  DeliveryReport: [
    /** The agreement's id: the EIP-712 struct hash of its Agreement. */
    { name: 'agreementId', type: 'bytes32' },
    /** Cumulative delivered quantity since the window opened, milli-units. */
    { name: 'delivered', type: 'uint256' },
    /** When the meter measured it, unix seconds. */
    { name: 'measuredAt', type: 'uint64' },
    /**
     * The meter's own count of its reports, for ordering and audit. Replay protection does not rest
     * on it: the contract refuses any figure not above the one it recorded for the meter's side.
     */
    { name: 'seq', type: 'uint64' },
  ],
} as const satisfies Types;

export const PROVIDER_ORDER_TYPES = {
  ProviderOrder: [
    { name: 'prosumer', type: 'address' },
    /** The contract's Role: 0 to sell to the provider, 1 to buy from it. */
    { name: 'role', type: 'uint8' },
    { name: 'quantity', type: 'uint256' },
    { name: 'deliveryStart', type: 'uint64' },
    { name: 'deliveryEnd', type: 'uint64' },
    /** Highest tariff accepted when buying, lowest when selling, base units per milli-unit. */
    { name: 'limitPrice', type: 'uint256' },
    /** From the same space as the prosumer's agreement nonces: spent once. */
    { name: 'nonce', type: 'uint256' },
    { name: 'deadline', type: 'uint64' },
  ],
} as const satisfies Types;

export interface Offer {
  readonly negotiationId: string;
  readonly seller: string;
  readonly buyer: string;
  readonly proposer: string;
  readonly round: number;
  readonly quantity: bigint;
  readonly unitPrice: bigint;
  readonly previous: string;
}

export interface Agreement {
  readonly negotiationId: string;
  readonly seller: string;
  readonly buyer: string;
  readonly quantity: bigint;
  readonly unitPrice: bigint;
  readonly deliveryStart: bigint;
  readonly deliveryEnd: bigint;
  readonly transcriptHash: string;
  readonly sellerNonce: bigint;
  readonly sellerDeadline: bigint;
  readonly buyerNonce: bigint;
  readonly buyerDeadline: bigint;
}

export interface ProviderOrder {
  readonly prosumer: string;
  readonly role: number;
  readonly quantity: bigint;
  readonly deliveryStart: bigint;
  readonly deliveryEnd: bigint;
  readonly limitPrice: bigint;
  readonly nonce: bigint;
  readonly deadline: bigint;
}

export interface DeliveryReport {
  readonly agreementId: string;
  readonly delivered: bigint;
  readonly measuredAt: bigint;
  readonly seq: bigint;
}

/** The three signed kinds, each with its types, primary type and value shape. */
export const SIGNED = {
  Offer: OFFER_TYPES,
  Agreement: AGREEMENT_TYPES,
  DeliveryReport: DELIVERY_REPORT_TYPES,
  ProviderOrder: PROVIDER_ORDER_TYPES,
} as const;
export type SignedKind = keyof typeof SIGNED;
export interface SignedValue {
  Offer: Offer;
  Agreement: Agreement;
  DeliveryReport: DeliveryReport;
  ProviderOrder: ProviderOrder;
}

function types(kind: SignedKind): Types {
  return SIGNED[kind] as unknown as Types;
}

/*
 * Hashing is on the hot path of a negotiation: both sides hash every offer. Our three structs
 * have only static fields (bytes32, address, uintN), so hashStruct is keccak256 of the type hash
 * and one 32-byte word per field. Written out here it takes a fraction of ethers' general
 * encoder's time; a property test holds it to ethers' result. Checksums of addresses are the
 * message schemas' job at the boundary (schemas.ts): here an address is its 20 bytes.
 */
interface Layout {
  readonly typeHash: Buffer;
  readonly fields: readonly { readonly name: string; readonly type: string }[];
}
const layouts = new Map<SignedKind, Layout>();
function layout(kind: SignedKind): Layout {
  let found = layouts.get(kind);
  if (!found) {
    const encodeType = TypedDataEncoder.from(types(kind)).encodeType(kind);
    found = {
      typeHash: Buffer.from(keccak256(Buffer.from(encodeType)).slice(2), 'hex'),
      fields: types(kind)[kind] ?? [],
    };
    layouts.set(kind, found);
  }
  return found;
}

const HEX_WORD = /^0x[0-9a-fA-F]{64}$/;
const HEX_ADDRESS = /^0x[0-9a-fA-F]{40}$/;

/** Writes one static field's 32-byte word at `at`, or throws naming the field. */
function writeWord(out: Buffer, at: number, type: string, value: unknown, where: string): void {
  const bad = (expected: string) =>
    new EipError('INVALID_MESSAGE', `${where} must be ${expected}`, { details: { field: where } });
  if (type === 'bytes32') {
    if (typeof value !== 'string' || !HEX_WORD.test(value)) throw bad('32 bytes of 0x-hex');
    out.write(value.slice(2), at, 'hex');
  } else if (type === 'address') {
    if (typeof value !== 'string' || !HEX_ADDRESS.test(value)) throw bad('a 0x-hex address');
    out.write(value.slice(2), at + 12, 'hex');
  } else {
    const bits = Number(type.slice(4)); // uintN
    const n =
      typeof value === 'bigint'
        ? value
        : Number.isSafeInteger(value)
          ? BigInt(value as number)
          : -1n;
    if (n < 0n || n >= 1n << BigInt(bits)) throw bad(`a whole number from 0 to 2^${bits} - 1`);
    out.write(n.toString(16).padStart(64, '0'), at, 'hex');
  }
}

/** Keyed by every domain field; a process talks to a handful of markets, so this stays small. */
const separators = new Map<string, string>();
function domainSeparator(domain: MarketDomain): string {
  const key = `${domain.name}\n${domain.version}\n${domain.chainId}\n${domain.verifyingContract}`;
  let found = separators.get(key);
  if (!found) {
    found = TypedDataEncoder.hashDomain(domain);
    separators.set(key, found);
  }
  return found;
}

/** The struct hash (EIP-712 hashStruct): an offer's link in the transcript, an agreement's id. */
export function structHash<K extends SignedKind>(kind: K, value: SignedValue[K]): string {
  const { typeHash, fields } = layout(kind);
  const out = Buffer.alloc(32 * (fields.length + 1));
  typeHash.copy(out);
  const record = value as unknown as Record<string, unknown>;
  fields.forEach(({ name, type }, i) => {
    writeWord(out, 32 * (i + 1), type, record[name], `${kind}.${name}`);
  });
  return keccak256(out);
}

/** The digest over an already computed struct hash: keccak256("\x19\x01" || separator || hash). */
export function digestOf(domain: MarketDomain, hash: string): string {
  return keccak256(concat(['0x1901', domainSeparator(domain), hash]));
}

/** The digest a signer signs: keccak256("\x19\x01" || domainSeparator || hashStruct). */
export function typedDataDigest<K extends SignedKind>(
  domain: MarketDomain,
  kind: K,
  value: SignedValue[K],
): string {
  return digestOf(domain, structHash(kind, value));
}

/** Arguments for ethers' `signer.signTypedData(domain, types, value)`. */
export function typedData<K extends SignedKind>(
  domain: MarketDomain,
  kind: K,
  value: SignedValue[K],
) {
  return { domain, types: types(kind), value: value as unknown as Record<string, unknown> };
}

/**
 * Recovers the signer of a typed value. Malformed and malleable signatures are refused as the
 * contracts refuse them (see ecdsa.ts).
 */
export function recoverSigner<K extends SignedKind>(
  domain: MarketDomain,
  kind: K,
  value: SignedValue[K],
  signature: string,
): string {
  return recoverDigestAddress(kind, typedDataDigest(domain, kind, value), signature);
}

/** Throws INVALID_SIGNATURE unless `signature` over `digest` recovers to `expected`. */
export function assertDigestSignedBy(
  kind: SignedKind,
  digest: string,
  signature: string,
  expected: string,
): void {
  const signer = recoverDigestAddress(kind, digest, signature);
  // Compared by their bytes: checksumming `expected` would cost a keccak on every offer.
  if (signer.toLowerCase() !== expected.toLowerCase()) {
    throw new EipError(
      'INVALID_SIGNATURE',
      `${kind} is signed by ${signer}, expected ${getAddress(expected)}`,
      { details: { kind, signer, expected } },
    );
  }
}

/** Throws INVALID_SIGNATURE unless `signature` over `value` recovers to `expected`. */
export function assertSignedBy<K extends SignedKind>(
  domain: MarketDomain,
  kind: K,
  value: SignedValue[K],
  signature: string,
  expected: string,
): void {
  assertDigestSignedBy(kind, typedDataDigest(domain, kind, value), signature, expected);
}

export interface OfferTerms {
  readonly negotiationId: string;
  readonly seller: string;
  readonly buyer: string;
  readonly proposer: string;
  readonly round: number;
  readonly quantity: Milli;
  readonly price: Milli;
  readonly previous: string;
}

/** An engine offer (exact milli values) as the struct that gets signed. */
export function offerStruct(terms: OfferTerms): Offer {
  return {
    negotiationId: terms.negotiationId,
    seller: getAddress(terms.seller),
    buyer: getAddress(terms.buyer),
    proposer: getAddress(terms.proposer),
    round: terms.round,
    quantity: quantityBaseUnits(terms.quantity),
    unitPrice: unitPriceBaseUnits(terms.price),
    previous: terms.previous,
  };
}

/**
 * The transcript hash an agreement carries: the struct hash of the last offer, after checking that
 * every offer names the one before it. Because each offer commits to its predecessor, this one hash
 * proves the whole sequence, and either party can present the offers to show how it came about.
 */
export function transcriptHash(offers: readonly Offer[]): string {
  let previous = ZeroHash;
  offers.forEach((offer, index) => {
    if (offer.negotiationId !== offers[0]?.negotiationId) {
      throw new EipError('INVALID_SIGNATURE', `transcript mixes negotiations at offer ${index}`, {
        details: { index },
      });
    }
    if (offer.previous !== previous) {
      throw new EipError(
        'INVALID_SIGNATURE',
        `transcript broken at offer ${index}: it does not follow offer ${index - 1}`,
        {
          details: { index },
        },
      );
    }
    previous = structHash('Offer', offer);
  });
  return previous;
}

/** A negotiation id both parties can derive: the hash of the request that opened it. */
export function negotiationId(requester: string, utility: string, nonce: bigint): string {
  return keccak256(
    AbiCoder.defaultAbiCoder().encode(
      ['address', 'string', 'uint256'],
      [getAddress(requester), utility, nonce],
    ),
  );
}
