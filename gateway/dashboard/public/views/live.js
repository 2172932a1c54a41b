/**
 * The control-room view: agreements being delivered and the latest settled, drawn again as their
 * reports and settlements reach the chain (the app announces each one to screen readers).
 *
 * @typedef {import('../../wire.js').Agreement} Agreement
 * @typedef {import('../../wire.js').Page<Agreement>} Agreements
 * @typedef {import('./view.js').View} View
 * @typedef {import('./view.js').Session} Session
 */
import { getJson } from '../api.js';
import { h } from '../dom.js';
import { agreementCard } from './card.js';
import { empty, section } from './view.js';

const ACTIVE = 100;
const RECENTLY_SETTLED = 6;

/**
 * @param {readonly Agreement[]} agreements
 * @param {Session | null} session
 */
const cards = (agreements, session) =>
  h(
    'div',
    { class: 'cards' },
    agreements.map((a) => agreementCard(a, session, 'h4')),
  );

/** @type {View} */
export const liveView = {
  nav: 'live',
  title: () => 'Delivery confirmations',
  reloadOn: ['agreement'],
  async load() {
    /** @type {[Agreements, Agreements]} */
    const [active, settled] = await Promise.all([
      getJson(`/api/agreements?state=active&limit=${ACTIVE}`),
      getJson(`/api/agreements?state=settled&limit=${RECENTLY_SETTLED}`),
    ]);
    return ({ session }) =>
      h(
        'div',
        {},
        section(
          'Being delivered',
          active.items.length > 0
            ? cards(active.items, session)
            : empty('No agreement is being delivered.'),
          active.next !== null &&
            h(
              'p',
              {},
              `The newest ${ACTIVE} are shown; `,
              h('a', { href: '#/schedule?state=active' }, 'all active agreements'),
              '.',
            ),
        ),
        section(
          'Recently settled',
          settled.items.length > 0
            ? cards(settled.items, session)
            : empty('No agreement has been settled yet.'),
        ),
      );
  },
};
