/**
 * Volume traded: park-wide per utility (GET /api/utilities), per prosumer and utility
 * (GET /api/prosumers), and token balances. Delivered, paid and received count settled
 * agreements; contracted counts every agreement.
 *
 * @typedef {import('../../wire.js').Account} Account
 * @typedef {import('../../wire.js').Utility} Utility
 * @typedef {import('../../wire.js').List<Account>} Accounts
 * @typedef {import('../../wire.js').List<Utility>} Utilities
 * @typedef {import('./view.js').View} View
 * @typedef {import('./view.js').Session} Session
 */
import { getJson } from '../api.js';
import { barChart } from '../charts/bars.js';
import { h, table } from '../dom.js';
import { number, price, quantity, short, tokens, toNumber } from '../format.js';
import { chartData, empty, party, section } from './view.js';

/** @param {readonly Utility[]} utilities */
function parkWide(utilities) {
  return section(
    'Park-wide, per utility',
    table(
      'Volume and payments per utility',
      [
        'Utility',
        'Agreements',
        { label: 'Contracted', numeric: true },
        { label: 'Delivered', numeric: true },
        { label: 'Paid to sellers', numeric: true },
        { label: 'Refunded to buyers', numeric: true },
        { label: 'In escrow now', numeric: true },
        { label: 'Provider sells at', numeric: true },
        { label: 'Provider buys at', numeric: true },
      ],
      utilities.map((u) => [
        u.name,
        `${u.agreements.active} active, ${u.agreements.settled} settled`,
        quantity(u.contracted, u.unit),
        quantity(u.delivered, u.unit),
        tokens(u.paidToSellers),
        tokens(u.refundedToBuyers),
        tokens(u.escrowed),
        price(u.tariffs.providerSellsAt, u.unit),
        price(u.tariffs.providerBuysAt, u.unit),
      ]),
    ),
  );
}

/**
 * @param {Utility} u
 * @param {readonly Account[]} accounts
 * @param {number} width
 * @param {Session | null} session
 */
function perProsumer(u, accounts, width, session) {
  const title = `${u.name}, per prosumer`;
  const traded = accounts.flatMap((account) => {
    const volume = account.volumes[u.utility];
    const moved = volume && (volume.sold.contracted !== '0' || volume.bought.contracted !== '0');
    return moved ? [{ account, volume }] : [];
  });
  if (traded.length === 0) return section(title, empty(`No ${u.name.toLowerCase()} traded yet.`));
  /** @type {import('../dom.js').Column[]} */
  const columns = [
    'Prosumer',
    { label: 'Sold, contracted', numeric: true },
    { label: 'Sold, delivered', numeric: true },
    { label: 'Received', numeric: true },
    { label: 'Bought, contracted', numeric: true },
    { label: 'Bought, delivered', numeric: true },
    { label: 'Paid', numeric: true },
  ];
  const rows = traded.map(({ account, volume }) => [
    party(account.address, account.name, session),
    quantity(volume.sold.contracted, u.unit),
    quantity(volume.sold.delivered, u.unit),
    tokens(volume.sold.received),
    quantity(volume.bought.contracted, u.unit),
    quantity(volume.bought.delivered, u.unit),
    tokens(volume.bought.paid),
  ]);
  return section(
    title,
    barChart({
      title: `${u.name} delivered, per prosumer`,
      description: `Delivered in settled agreements, sold and bought, in ${u.unit}, for ${traded.length} prosumers; the table below lists them with the contracted quantities and payments.`,
      width,
      valueLabel: u.unit,
      format: (value) => number(value, 3),
      series: ['sold', 'bought'],
      categories: traded.map(({ account, volume }) => ({
        label: account.name ?? short(account.address),
        values: [toNumber.units(volume.sold.delivered), toNumber.units(volume.bought.delivered)],
      })),
    }),
    chartData(`${u.name} per prosumer`, columns, rows),
  );
}

/**
 * @param {readonly Account[]} accounts
 * @param {Session | null} session
 */
function balances(accounts, session) {
  /** @param {readonly string[]} ids */
  const list = (ids) => (ids.length > 0 ? ids.join(', ') : '–');
  return section(
    'Accounts and token balances',
    table(
      'Accounts: prosumers, providers, parties and token holders',
      ['Account', 'Prosumer of', 'Provider of', { label: 'Balance', numeric: true }],
      accounts.map((a) => [
        party(a.address, a.name, session),
        list(a.prosumerOf),
        list(a.providerOf),
        tokens(a.balance),
      ]),
    ),
  );
}

/** @type {View} */
export const volumesView = {
  nav: 'volumes',
  title: () => 'Volume traded',
  reloadOn: ['agreement'],
  async load() {
    /** @type {[Utilities, Accounts]} */
    const [utilities, accounts] = await Promise.all([
      getJson('/api/utilities'),
      getJson('/api/prosumers'),
    ]);
    return ({ width, session }) =>
      h(
        'div',
        {},
        parkWide(utilities.items),
        utilities.items.map((u) => perProsumer(u, accounts.items, width, session)),
        balances(accounts.items, session),
      );
  },
};
