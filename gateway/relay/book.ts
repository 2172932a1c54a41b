/**
 * The gateway's book of agreements: each one's terms and signatures as received, where it stands
 * on the chain, the latest delivery report of each side, and the transactions that moved it.
 * Stored durably (store.ts) before an edge's message is acknowledged, so a gateway killed at any
 * point picks every agreement up again.
 *
 *   accepted -> submitted -> open -> settled
 *        \           \          \-> failed (settlement refused for good)
 *         \-> failed  \-> failed (the chain refused it: reason given)
 */
import type { z } from 'zod';
import type { Agreement } from '../../core/messages/eip712.js';
import { agreementStructSchema } from '../../core/messages/schemas.js';
import type { Payload, WirePayload } from '../../core/messages/topics.js';
import { TOPICS } from '../../core/messages/topics.js';
import type { UtilityId } from '../../core/utilities.js';
import type { JsonStore } from './store.js';

export type AgreementState = 'accepted' | 'submitted' | 'open' | 'settled' | 'failed';
export type Side = 'buyer' | 'seller';

/** A meter's signed report as received, and whether the chain has it. */
export interface StoredReport {
  readonly message: WirePayload<'deliveryReport'>;
  readonly posted: boolean;
}

export interface AgreementRecord {
  readonly id: string;
  readonly utility: UtilityId;
  /** The terms (uint256 as decimal strings). */
  readonly terms: WireAgreement;
  /** Both parties' signatures of the terms; none for a trade with the provider. */
  readonly signatures?: { readonly seller: string; readonly buyer: string };
  /** Plant ids of the parties, from the park directory; null for the main provider. */
  readonly seller: string | null;
  readonly buyer: string | null;
  readonly state: AgreementState;
  readonly acceptedAtMs: number;
  readonly openTx?: string;
  readonly openBlock?: number;
  readonly reportTxs: readonly string[];
  readonly settleTx?: string;
  readonly reports: Readonly<Partial<Record<Side, StoredReport>>>;
  readonly settlement?: {
    readonly delivered: string;
    readonly paid: string;
    readonly refunded: string;
  };
  readonly failure?: string;
}

export type WireAgreement = z.input<typeof agreementStructSchema>;

/** The agreement's terms with uint256 fields as bigints, for encoding and hashing. */
export function termsOf(record: AgreementRecord): Agreement {
  return agreementStructSchema.parse(record.terms);
}

/** How messages and summaries name the main provider as a party: no plant may take the name. */
export const PROVIDER_NAME = 'provider';

export function partyName(party: string | null): string {
  return party ?? PROVIDER_NAME;
}

/** The plants (not the provider) party to an agreement. */
export function partiesOf(record: AgreementRecord): string[] {
  return [...new Set([record.seller, record.buyer])].filter((p): p is string => p !== null);
}

export function reportOf(stored: StoredReport): Payload<'deliveryReport'> {
  return TOPICS.deliveryReport.schema.parse(stored.message);
}

/** What the contract will pay for, as it computes it: the lower side where both reported. */
export function payableDelivered(record: AgreementRecord): bigint {
  const posted = (side: Side) => {
    const report = record.reports[side];
    return report?.posted ? BigInt(report.message.report.delivered) : undefined;
  };
  const buyer = posted('buyer');
  const seller = posted('seller');
  const quantity = BigInt(record.terms.quantity);
  const delivered =
    buyer !== undefined && seller !== undefined ? minBig(buyer, seller) : (buyer ?? seller ?? 0n);
  return minBig(delivered, quantity);
}

/** Math.min does not take bigints. */
export function minBig(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}

export type AgreementBook = JsonStore<AgreementRecord>;
