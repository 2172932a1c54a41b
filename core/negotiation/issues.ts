/** The two issues negotiated at once, and who prefers which direction on each. */
export const ROLES = ['seller', 'buyer'] as const;
export type Role = (typeof ROLES)[number];

export const ISSUES = ['price', 'quantity'] as const;
export type Issue = (typeof ISSUES)[number];

/**
 * On price the seller wants more and the buyer less. On quantity the seller's offer is the most it
 * will supply and the buyer's the least it will take: the seller starts at what it can spare and
 * may concede upward, the buyer starts at its need and concedes downward (section 5: Prosumer 1
 * asks for 150 m3 and concedes; Prosumer 0 offers all of its 100 m3 and does not).
 */
export const PREFERS_HIGHER: Readonly<Record<Issue, Readonly<Record<Role, boolean>>>> = {
  price: { seller: true, buyer: false },
  quantity: { seller: false, buyer: true },
};

export function opponentOf(role: Role): Role {
  return role === 'seller' ? 'buyer' : 'seller';
}
