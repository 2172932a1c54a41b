/**
 * One agreement in full: its confirmation card, its terms and every meter report
 * (GET /api/agreements/:id, /api/deliveries?agreement=…).
 *
 * @typedef {import('../../wire.js').Agreement} Agreement
 * @typedef {import('../../wire.js').Delivery} Delivery
 * @typedef {import('./view.js').View} View
 */
import { getJson } from '../api.js';
import { facts, h, table } from '../dom.js';
import { price, quantity, short, span, time, tokens } from '../format.js';
import { agreementCard } from './card.js';
import { empty, section, txLink } from './view.js';

/** More reports than this for one agreement are not expected: a meter reports a few times. */
const REPORTS = 500;

/**
 * A party's name, if the park gives it one, and its full address.
 * @param {string} address
 * @param {string | null} name
 */
const who = (address, name) =>
  name === null ? h('code', {}, address) : h('span', {}, `${name} `, h('code', {}, address));

/** @type {View} */
export const agreementView = {
  nav: 'schedule',
  title: ({ path }) => `Agreement ${short(path[1] ?? '')}`,
  reloadOn: ['agreement'],
  async load({ path }) {
    const id = encodeURIComponent(path[1] ?? '');
    /** @type {[Agreement, import('../../wire.js').Page<Delivery>]} */
    const [a, reports] = await Promise.all([
      getJson(`/api/agreements/${id}`),
      getJson(`/api/deliveries?agreement=${id}&limit=${REPORTS}`),
    ]);
    return ({ session }) =>
      h(
        'div',
        {},
        agreementCard(a, session, 'h3'),
        section(
          'Terms',
          facts([
            ['Id', h('code', {}, a.id)],
            [
              'Utility',
              `${a.utility}, traded with ${a.kind === 'peer' ? 'a peer' : 'the provider'}`,
            ],
            ['Seller', who(a.seller, a.sellerName)],
            ['Buyer', who(a.buyer, a.buyerName)],
            ['Quantity', quantity(a.quantity, a.unit)],
            ['Price', price(a.unitPrice, a.unit)],
            ['Escrow', tokens(a.escrow)],
            [
              "Provider's tariffs when it opened",
              `sells at ${price(a.tariffs.providerSellsAt, a.unit)}, buys at ${price(a.tariffs.providerBuysAt, a.unit)}`,
            ],
            ['Delivery window', span(a.deliveryStart, a.deliveryEnd)],
            ['Negotiation', h('code', {}, a.negotiationId)],
            ['Transcript hash', h('code', {}, a.transcriptHash)],
          ]),
        ),
        section(
          'Meter reports',
          reports.items.length === 0
            ? empty('No meter has reported yet.')
            : table(
                'Meter reports, newest first',
                [
                  'Measured',
                  'Side',
                  'Meter',
                  { label: 'Delivered so far', numeric: true },
                  { label: 'Payable after it', numeric: true },
                  'Transaction',
                ],
                reports.items.map((d) => [
                  time(d.measuredAt),
                  d.side,
                  h('code', {}, short(d.meter)),
                  quantity(d.delivered, a.unit),
                  quantity(d.payable, a.unit),
                  txLink(d.tx),
                ]),
              ),
        ),
      );
  },
};
