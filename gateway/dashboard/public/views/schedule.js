/**
 * The schedule of past and active agreements: their delivery windows on a timeline, and a table,
 * a page at a time, filtered by utility and state.
 *
 * @typedef {import('../../wire.js').Agreement} Agreement
 * @typedef {import('../../wire.js').Utility} Utility
 * @typedef {import('./view.js').View} View
 */
import { getJson } from '../api.js';
import { timeline } from '../charts/timeline.js';
import { h, table } from '../dom.js';
import { percent, price, quantity, short, time } from '../format.js';
import { agreementLink, choice, empty, party, queryForm } from './view.js';

const PAGE = 50;
const FILTERS = ['utility', 'state'];

/** @type {View} */
export const scheduleView = {
  nav: 'schedule',
  title: () => 'Schedule',
  reloadOn: ['agreement'],
  async load({ query }) {
    const filter = new URLSearchParams();
    for (const name of FILTERS) {
      const value = query.get(name);
      if (value) filter.set(name, value);
    }
    const before = query.get('before');
    const page = new URLSearchParams(filter);
    page.set('limit', String(PAGE));
    if (before) page.set('before', before);
    /** @type {[import('../../wire.js').Page<Agreement>, import('../../wire.js').List<Utility>]} */
    const [agreements, utilities] = await Promise.all([
      getJson(`/api/agreements?${page}`),
      getJson('/api/utilities'),
    ]);
    const { items, next } = agreements;
    return ({ width, session }) => {
      const form = queryForm(
        '#/schedule',
        choice(
          'Utility',
          'utility',
          [
            ['', 'All utilities'],
            ...utilities.items.map((u) => /** @type {const} */ ([u.utility, u.name])),
          ],
          filter.get('utility') ?? '',
        ),
        choice(
          'State',
          'state',
          [
            ['', 'Past and active'],
            ['active', 'Active'],
            ['settled', 'Settled'],
          ],
          filter.get('state') ?? '',
        ),
      );
      const paging = h(
        'p',
        { class: 'paging' },
        before && h('a', { href: `#/schedule?${filter}` }, 'Newest agreements'),
        next !== null &&
          h(
            'a',
            { href: `#/schedule?${new URLSearchParams([...filter, ['before', next]])}` },
            'Older agreements',
          ),
      );
      if (items.length === 0) return h('div', {}, form, empty('No agreement matches.'), paging);
      const rows = items.map((a) => [
        agreementLink(a.id),
        a.utility,
        party(a.seller, a.sellerName, session),
        party(a.buyer, a.buyerName, session),
        time(a.deliveryStart),
        time(a.deliveryEnd),
        quantity(a.quantity, a.unit),
        price(a.unitPrice, a.unit),
        `${percent(a.delivered.payable, a.quantity)} %`,
        a.state,
      ]);
      const caption = 'Agreements, newest first';
      return h(
        'div',
        {},
        form,
        timeline({
          title: 'Delivery windows',
          description: `The delivery windows of ${items.length} agreements, from ${time(Math.min(...items.map((a) => a.deliveryStart)))} to ${time(Math.max(...items.map((a) => a.deliveryEnd)))}, with the present marked; the table below lists them.`,
          width,
          now: Date.now() / 1000,
          format: time,
          rows: items.map((a) => ({
            label: short(a.id),
            start: a.deliveryStart,
            end: a.deliveryEnd,
            state: a.state,
          })),
        }),
        table(
          caption,
          [
            'Agreement',
            'Utility',
            'Seller',
            'Buyer',
            'Window starts',
            'Window ends',
            { label: 'Quantity', numeric: true },
            { label: 'Price', numeric: true },
            { label: 'Metered', numeric: true },
            'State',
          ],
          rows,
        ),
        paging,
      );
    };
  },
};
