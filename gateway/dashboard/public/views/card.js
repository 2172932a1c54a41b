/**
 * One agreement as a delivery confirmation: who delivers what to whom, how much has been metered
 * against what was contracted, what the seller was paid and the buyer refunded, and the
 * transactions that prove it.
 *
 * @typedef {import('../../wire.js').Agreement} Agreement
 * @typedef {import('./view.js').Session} Session
 */
import { facts, h } from '../dom.js';
import { percent, price, quantity, short, span, tokens } from '../format.js';
import { agreementLink, party, txLink } from './view.js';

/** @param {Agreement} a */
function stage(a) {
  if (a.state === 'settled') return 'Settled';
  return a.reports > 0 ? 'Delivering' : 'Awaiting delivery';
}

/**
 * What each side's meter reported; what settlement pays for is the lower where both did.
 * @param {Agreement} a
 */
function meters(a) {
  /** @param {string | null} figure */
  const read = (figure) => (figure === null ? 'no report yet' : quantity(figure, a.unit));
  return `Buyer's meter: ${read(a.delivered.buyer)}; seller's meter: ${read(a.delivered.seller)}.`;
}

/** @param {Agreement} a */
function money(a) {
  const due = BigInt(a.delivered.payable) * BigInt(a.unitPrice);
  /** @type {[string, string][]} */
  const pairs = [
    ['Price', price(a.unitPrice, a.unit)],
    ['Escrowed', tokens(a.escrow)],
  ];
  if (a.settlement === null) {
    pairs.push(['Payable so far', tokens(due)]);
  } else {
    pairs.push(
      ['Paid to seller', tokens(a.settlement.paidToSeller)],
      ['Refunded to buyer', tokens(a.settlement.refundedToBuyer)],
    );
  }
  return facts(pairs, 'facts money');
}

/** @param {Agreement} a */
function transactions(a) {
  const links = [h('li', {}, 'Opened in ', txLink(a.opened.tx))];
  if (a.lastReport !== null)
    links.push(h('li', {}, 'Last meter report in ', txLink(a.lastReport.tx)));
  if (a.settlement !== null) links.push(h('li', {}, 'Settled in ', txLink(a.settlement.tx)));
  return h('ul', { class: 'txs', 'aria-label': 'Transactions' }, links);
}

/**
 * @param {Agreement} a
 * @param {Session | null} session
 * @param {'h3' | 'h4'} heading the level that fits where the card is shown
 */
export function agreementCard(a, session, heading) {
  const done = percent(a.delivered.payable, a.quantity);
  return h(
    'article',
    { class: `card state-${a.state}`, 'aria-label': `Agreement ${short(a.id)}` },
    h(
      'div',
      { class: 'card-head' },
      h(heading, {}, agreementLink(a.id)),
      h('span', { class: 'badge' }, stage(a)),
    ),
    h(
      'p',
      {},
      `${a.utility}${a.kind === 'provider' ? ' (with the provider)' : ''}: seller ${party(a.seller, a.sellerName, session)} to buyer ${party(a.buyer, a.buyerName, session)}`,
    ),
    h('p', {}, `Window ${span(a.deliveryStart, a.deliveryEnd)}`),
    h(
      'div',
      { class: 'metered' },
      h('progress', {
        max: a.quantity,
        value: a.delivered.payable,
        'aria-label': 'Metered against contracted',
      }),
      h(
        'p',
        {},
        h(
          'strong',
          {},
          `${quantity(a.delivered.payable, a.unit)} of ${quantity(a.quantity, a.unit)}`,
        ),
        ` metered (${done} %). `,
        h('span', { class: 'muted' }, meters(a)),
      ),
    ),
    money(a),
    transactions(a),
  );
}
