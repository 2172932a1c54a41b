/**
 * Figures of the market worked out from its agreements as the API serves them, in exact integers:
 * savings against the provider's tariffs, delivered against contracted, the quantity-weighted
 * price. Trades with the provider are at its tariffs and save nothing, so only peer agreements
 * count.
 *
 * @typedef {import('../wire.js').Agreement} Agreement
 * @typedef {{ saved: bigint, earned: bigint }} Gain
 */

/** @param {readonly Agreement[]} agreements */
export const peerOnly = (agreements) => agreements.filter((a) => a.kind === 'peer');

/**
 * What trading with a peer instead of the provider gave, per settled unit delivered: the buyer
 * saved what the provider charged above the agreed price, and the seller earned what it got above
 * what the provider paid, each at the tariffs in force when the agreement opened. Token base
 * units; negative when a party did worse than the provider would have given.
 * @param {readonly Agreement[]} agreements
 * @returns {{ total: Gain, byParty: Map<string, Gain> }}
 */
export function savings(agreements) {
  const total = { saved: 0n, earned: 0n };
  /** @type {Map<string, Gain>} */
  const byParty = new Map();
  /** @param {string} address */
  const of = (address) => {
    let gain = byParty.get(address);
    if (gain === undefined) {
      gain = { saved: 0n, earned: 0n };
      byParty.set(address, gain);
    }
    return gain;
  };
  for (const a of peerOnly(agreements)) {
    if (a.settlement === null) continue;
    const delivered = BigInt(a.settlement.delivered);
    const unitPrice = BigInt(a.unitPrice);
    const saved = delivered * (BigInt(a.tariffs.providerSellsAt) - unitPrice);
    const earned = delivered * (unitPrice - BigInt(a.tariffs.providerBuysAt));
    total.saved += saved;
    total.earned += earned;
    of(a.buyer).saved += saved;
    of(a.seller).earned += earned;
  }
  return { total, byParty };
}

/**
 * Delivered against contracted over the settled agreements, milli-units.
 * @param {readonly Agreement[]} agreements
 */
export function deliveredOfContracted(agreements) {
  let delivered = 0n;
  let contracted = 0n;
  for (const a of agreements) {
    if (a.settlement === null) continue;
    delivered += BigInt(a.settlement.delivered);
    contracted += BigInt(a.quantity);
  }
  return { delivered, contracted };
}

/**
 * The price per milli-unit weighted by quantity: escrow over quantity, as the escrow is exactly
 * quantity times price; rounded down. Null without agreements.
 * @param {readonly Agreement[]} agreements
 */
export function weightedPrice(agreements) {
  let escrow = 0n;
  let quantity = 0n;
  for (const a of agreements) {
    escrow += BigInt(a.escrow);
    quantity += BigInt(a.quantity);
  }
  return quantity === 0n ? null : escrow / quantity;
}
