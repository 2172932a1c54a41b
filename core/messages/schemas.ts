/**
 * Payload schemas of every MQTT message, version 1. Parsing is the decode direction (wire JSON ->
 * domain values, uint256 strings -> bigint); `z.encode` is the way back. Payload fields are
 * snake_case with units in their names; the EIP-712 structs nested in them keep their Solidity
 * field names because they are exactly what was signed.
 */
import { isAddress } from 'ethers/address';
import { z } from 'zod';
import { ROLES } from '../negotiation/issues.js';
import { UTILITY_IDS } from '../utilities.js';

const UINT256_MAX = 2n ** 256n - 1n;

/** A lowercase id that is safe as one MQTT topic level: no '/', '+', '#', no spaces. */
export const ID_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/;
export const id = z
  .string()
  .regex(ID_PATTERN, 'must be 1-63 of a-z, 0-9, "-", "_", starting with a letter or digit')
  .meta({ description: 'Lowercase id, one MQTT topic level' });
/** The regex shows the shape in the JSON Schema; isAddress also checks a mixed-case checksum. */
export const address = z
  .string()
  .regex(/^0x[0-9a-fA-F]{40}$/, 'must be a 0x-prefixed 20-byte address')
  .refine((v) => isAddress(v), 'has a wrong EIP-55 checksum')
  .meta({ description: 'Ethereum address' });
export const bytes32 = z
  .string()
  .regex(/^0x[0-9a-fA-F]{64}$/, 'must be a 0x-prefixed 32-byte hex string')
  .meta({ description: '32 bytes, hex' });
export const signature = z
  .string()
  .regex(/^0x[0-9a-fA-F]{130}$/, 'must be a 0x-prefixed 65-byte signature')
  .meta({ description: 'secp256k1 signature r || s || v, low s (EIP-2)' });
export const utility = z.enum(UTILITY_IDS);
export const role = z.enum(ROLES);
/** Milliseconds since the Unix epoch. */
export const timestampMs = z
  .number()
  .int()
  .nonnegative()
  .meta({ description: 'Milliseconds since the Unix epoch' });
/** An exact non-negative count of thousandths of the utility's unit. */
export const milliAmount = z
  .number()
  .int()
  .nonnegative()
  .max(Number.MAX_SAFE_INTEGER)
  .meta({ description: "Thousandths of the utility's unit (litres of m3, Wh of kWh)" });
/** uint256 on the wire as a decimal string (JSON numbers lose precision past 2^53). */
export const uint256 = z.codec(
  z
    .string()
    .regex(/^(0|[1-9]\d{0,77})$/, 'must be a decimal integer string')
    .meta({ description: 'uint256 as a decimal string' }),
  // Bounded on the bigint side, so both directions check it: nothing leaves that peers refuse.
  z.bigint().min(0n, 'must not be negative').max(UINT256_MAX, 'exceeds uint256'),
  { decode: (text) => BigInt(text), encode: (value) => value.toString() },
);
const uint = (bits: number) =>
  uint256.refine((v) => v < 2n ** BigInt(bits), `must fit in uint${bits}`);

export const offerStructSchema = z.strictObject({
  negotiationId: bytes32,
  seller: address,
  buyer: address,
  proposer: address,
  round: z
    .number()
    .int()
    .nonnegative()
    .max(2 ** 32 - 1),
  quantity: uint256,
  unitPrice: uint256,
  previous: bytes32,
});

export const agreementStructSchema = z.strictObject({
  negotiationId: bytes32,
  seller: address,
  buyer: address,
  quantity: uint256,
  unitPrice: uint256,
  deliveryStart: uint(64),
  deliveryEnd: uint(64),
  transcriptHash: bytes32,
  sellerNonce: uint256,
  sellerDeadline: uint(64),
  buyerNonce: uint256,
  buyerDeadline: uint(64),
});

export const providerOrderStructSchema = z.strictObject({
  prosumer: address,
  /** 0: sell to the provider; 1: buy from it (the contract's Role). */
  role: z.union([z.literal(0), z.literal(1)]),
  quantity: uint256,
  deliveryStart: uint(64),
  deliveryEnd: uint(64),
  limitPrice: uint256,
  nonce: uint256,
  deadline: uint(64),
});

export const deliveryReportStructSchema = z.strictObject({
  agreementId: bytes32,
  delivered: uint256,
  measuredAt: uint(64),
  seq: uint(64),
});

export const agentStatus = z.strictObject({
  prosumer: id,
  state: z.enum(['online', 'offline']),
  at_ms: timestampMs,
  software_version: z.string().max(64).optional(),
});

export const meterReading = z.strictObject({
  prosumer: id,
  meter: id,
  utility,
  /** What the register measures, as the meter profile names it (e.g. "import_energy"). */
  quantity: id,
  value: z.number().refine(Number.isFinite, 'must be finite'),
  unit: z.string().min(1).max(16),
  measured_at_ms: timestampMs,
  /** Per meter, strictly increasing; lets the receiver drop duplicates after a replay. */
  seq: z.number().int().nonnegative(),
  /** True when the last poll failed and `value` is the last good one. */
  stale: z.boolean(),
});

export const balance = z.strictObject({
  prosumer: id,
  utility,
  step: z.number().int().nonnegative(),
  at_ms: timestampMs,
  production_milli: milliAmount,
  consumption_milli: milliAmount,
  storage_level_milli: milliAmount,
  storage_capacity_milli: milliAmount,
  /** Positive: surplus to sell; negative: deficit to buy. */
  net_milli: z.number().int().min(-Number.MAX_SAFE_INTEGER).max(Number.MAX_SAFE_INTEGER),
});

export const negotiationRequest = z.strictObject({
  negotiation_id: bytes32,
  utility,
  prosumer: id,
  address,
  /** What the requester wants to do: sell its surplus or buy for its deficit. */
  role,
  quantity_milli: milliAmount,
  delivery_start_ms: timestampMs,
  delivery_end_ms: timestampMs,
  /** Replies after this are ignored. */
  respond_by_ms: timestampMs,
});

export const providerTrade = z.strictObject({
  prosumer: id,
  utility,
  /** The order, EIP-712 signed by the prosumer, for the gateway to place (tradeWithProviderFor). */
  order: providerOrderStructSchema,
  signature,
  at_ms: timestampMs,
});

export const willToNegotiate = z.strictObject({
  negotiation_id: bytes32,
  prosumer: id,
  address,
  quantity_milli: milliAmount,
});

export const signedOffer = z.strictObject({
  utility,
  offer: offerStructSchema,
  signature,
});

export const agreementProposal = z.strictObject({
  utility,
  agreement: agreementStructSchema,
  /** The proposer's signature; the receiver verifies it, countersigns and submits. */
  signature,
  /**
   * The proposer's last move, which accepted every open issue; its struct hash is the agreement's
   * transcript hash. Sent in the same message so the acceptance and the terms arrive together.
   */
  acceptance: signedOffer,
});

export const breakOffReason = z.enum([
  'deadline',
  'reserves-apart',
  'round-limit',
  'invalid-offer',
  'timeout',
  'withdrawn',
]);

export const breakOff = z.strictObject({
  negotiation_id: bytes32,
  prosumer: id,
  reason: breakOffReason,
  round: z.number().int().nonnegative(),
});

export const NEGOTIATION_OUTCOMES = [
  'agreed',
  'proposed',
  'no-agreement',
  'no-counterpart',
] as const;

/**
 * How a negotiation ended, as one of its parties saw it: the chain records only the ones that
 * ended in an agreement, so the park's agreement rate needs these. `proposed`: this party signed
 * and proposed the agreement but never heard the countersignature (the gateway's statuses tell
 * the rest); `no-counterpart`: nobody answered this party's request.
 */
export const negotiationOutcome = z
  .strictObject({
    prosumer: id,
    negotiation_id: bytes32,
    utility,
    /** What this party was in it. */
    role,
    /** Whether this party sent the request (and chose the counterpart among those who answered). */
    requester: z.boolean(),
    /** The plant it negotiated with; null when nobody answered the request. */
    counterpart: id.nullable(),
    outcome: z.enum(NEGOTIATION_OUTCOMES),
    /** Why it ended without an agreement; null otherwise. */
    reason: breakOffReason.nullable(),
    /** Which side broke off; null unless the outcome is no-agreement. */
    ended_by: z.enum(['self', 'counterpart']).nullable(),
    /** Offer rounds played. */
    rounds: z.number().int().nonnegative().max(1_000_000),
    started_at_ms: timestampMs,
    ended_at_ms: timestampMs,
  })
  .superRefine((o, context) => {
    const problem = (path: string, message: string) =>
      context.addIssue({ code: 'custom', path: [path], message });
    if ((o.counterpart === null) !== (o.outcome === 'no-counterpart')) {
      problem('counterpart', 'must be null exactly when the outcome is no-counterpart');
    }
    if (o.outcome === 'no-counterpart' && !o.requester) {
      problem('requester', 'only the requester can have found no counterpart');
    }
    if (o.counterpart === o.prosumer) problem('counterpart', 'must not be the prosumer itself');
    const failed = o.outcome === 'no-agreement';
    if ((o.reason === null) === failed) problem('reason', 'is set exactly when no-agreement');
    if ((o.ended_by === null) === failed) problem('ended_by', 'is set exactly when no-agreement');
    if (o.ended_at_ms < o.started_at_ms) problem('ended_at_ms', 'must not be before started_at_ms');
  });

export const signedAgreement = z.strictObject({
  utility,
  agreement: agreementStructSchema,
  seller_signature: signature,
  buyer_signature: signature,
  /** The signed offers the transcript hash commits to, for the record (optional). */
  transcript: z.array(signedOffer).optional(),
});

const agreementStatusBase = { agreement_id: bytes32, utility, at_ms: timestampMs };
export const agreementStatus = z.discriminatedUnion('state', [
  z.strictObject({ ...agreementStatusBase, state: z.literal('submitted'), tx_hash: bytes32 }),
  z.strictObject({
    ...agreementStatusBase,
    state: z.literal('confirmed'),
    tx_hash: bytes32,
    block: z.number().int().nonnegative(),
    /**
     * The terms as opened. Sent for trades with the provider, whose terms the contract makes:
     * the plant learns its agreement's id and window only from here.
     */
    agreement: agreementStructSchema.optional(),
  }),
  z.strictObject({
    ...agreementStatusBase,
    state: z.literal('delivering'),
    delivered_milli: milliAmount,
  }),
  z.strictObject({
    ...agreementStatusBase,
    state: z.literal('settled'),
    tx_hash: bytes32,
    paid: uint256,
    refunded: uint256,
  }),
  z.strictObject({
    ...agreementStatusBase,
    state: z.literal('failed'),
    reason: z.string().min(1).max(500),
  }),
]);

export const deliveryReportMessage = z.strictObject({
  utility,
  meter: id,
  report: deliveryReportStructSchema,
  signature,
});

export const deliveryConfirmation = z.strictObject({
  agreement_id: bytes32,
  utility,
  seller: id,
  buyer: id,
  contracted_milli: milliAmount,
  delivered_milli: milliAmount,
  /** Token base units paid to the seller and refunded to the buyer; they sum to the escrow. */
  paid: uint256,
  refunded: uint256,
  transactions: z.array(bytes32),
  at_ms: timestampMs,
});

export const refusal = z.strictObject({
  /** The topic of the refused message. */
  topic: z.string().max(256),
  code: z.string().min(1).max(64),
  message: z.string().max(500),
  at_ms: timestampMs,
});
