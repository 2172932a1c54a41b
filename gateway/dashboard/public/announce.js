/**
 * Says each delivery confirmation as it reaches the chain, through a polite live region: the
 * cards on screen are redrawn whole, which a screen reader would either miss or read out entire.
 *
 * @typedef {import('../wire.js').Agreement} Agreement
 */
import { h } from './dom.js';
import { quantity, short, tokens } from './format.js';

/** Older messages are removed: the region only ever needs the latest. */
const KEPT = 5;

/**
 * An agreement event in words: it comes when one opens, is reported on, or settles.
 * @param {Agreement} a
 */
export function confirmation(a) {
  const name = `Agreement ${short(a.id)}`;
  const metered = `${quantity(a.delivered.payable, a.unit)} of ${quantity(a.quantity, a.unit)}`;
  if (a.settlement !== null) {
    return `${name} settled: ${metered} delivered, ${tokens(a.settlement.paidToSeller)} paid to the seller, ${tokens(a.settlement.refundedToBuyer)} refunded to the buyer.`;
  }
  if (a.reports > 0) return `${name}: ${metered} metered.`;
  return `${name} opened: ${quantity(a.quantity, a.unit)} of ${a.utility}.`;
}

/**
 * @param {HTMLElement} region
 * @param {string} message
 */
export function announce(region, message) {
  region.append(h('p', {}, message));
  while (region.childElementCount > KEPT) region.firstElementChild?.remove();
}
