/** Compact two-agent setups for tests and benchmarks. */
import type { Issue } from '../../../core/negotiation/issues.js';
import type { NegotiationSetup } from '../../../core/negotiation/protocol.js';
import { type PsiInput, psi } from '../../../core/negotiation/strategy.js';
import { UTILITIES } from '../../../core/utilities.js';

export type Side = Readonly<Record<Issue, PsiInput>>;

/** Table 1 of the seed on price; on quantity the case study's defaults. */
export const TABLE1 = {
  seller: {
    price: { ip: 80, rp: 20, dl: 20, cr: 2 },
    quantity: { ip: 100, rp: 100, dl: 20, cr: 2 },
  },
  buyer: {
    price: { ip: 20, rp: 80, dl: 20, cr: 0.5 },
    quantity: { ip: 150, rp: 0, dl: 20, cr: 0.5 },
  },
} as const satisfies Record<'seller' | 'buyer', Side>;

const BIOGAS_TICKS = {
  price: UTILITIES.biogas.price_tick,
  quantity: UTILITIES.biogas.quantity_tick,
};

export function bilateral(
  seller: Side,
  buyer: Side,
  extra: Partial<NegotiationSetup> = {},
): NegotiationSetup {
  return {
    seller: { name: 'S', psi: { price: psi(seller.price), quantity: psi(seller.quantity) } },
    buyer: { name: 'B', psi: { price: psi(buyer.price), quantity: psi(buyer.quantity) } },
    ticks: BIOGAS_TICKS,
    ...extra,
  };
}
