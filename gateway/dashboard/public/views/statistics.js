/**
 * Statistics and graphs of the market per utility, worked out from every agreement the API lets
 * the user see: prices over time against the provider's tariffs, savings against those tariffs,
 * delivered against contracted; and the agreement rate per utility, from the negotiations the
 * agents reported.
 *
 * @typedef {import('../../wire.js').Agreement} Agreement
 * @typedef {import('../../wire.js').Utility} Utility
 * @typedef {import('../../wire.js').NegotiationCounts} NegotiationCounts
 * @typedef {import('../../wire.js').NegotiationSummary} NegotiationSummary
 * @typedef {import('./view.js').View} View
 * @typedef {import('./view.js').Session} Session
 */
import { ApiError, allPages, getJson } from '../api.js';
import { lineChart } from '../charts/line.js';
import { facts, h, table } from '../dom.js';
import { number, percent, price, quantity, time, tokens, toNumber } from '../format.js';
import { deliveredOfContracted, peerOnly, savings, weightedPrice } from '../market.js';
import { agreementLink, chartData, empty, party, section } from './view.js';

/** Pages of 500 agreements read at most: the statistics cover the newest 10,000. */
const MAX_PAGES = 20;

/**
 * @param {Utility} u
 * @param {readonly Agreement[]} agreements of this utility, newest first
 * @param {number} width
 */
function prices(u, agreements, width) {
  const oldestFirst = [...agreements].reverse();
  /** @param {string} kind */
  const points = (kind) =>
    oldestFirst
      .filter((a) => a.kind === kind)
      .map((a) => ({ x: a.opened.timestamp, y: toNumber.price(a.unitPrice) }));
  const unit = `tokens/${u.unit}`;
  /** @param {'providerSellsAt' | 'providerBuysAt'} side */
  const tariff = (side) => ({
    value: toNumber.price(u.tariffs[side]),
    steps: u.tariffHistory.map((period) => ({
      from: period.since === null ? null : period.since.timestamp,
      value: toNumber.price(period[side]),
    })),
  });
  const changed = u.tariffHistory.length > 1 ? ' as they stood over time' : '';
  return [
    lineChart({
      title: `${u.name}: agreed prices over time`,
      description: `The unit price of each of ${agreements.length} agreements when it opened, in ${unit}, against the provider's tariffs${changed}: it now sells at ${price(u.tariffs.providerSellsAt, u.unit)} and buys at ${price(u.tariffs.providerBuysAt, u.unit)}. The table below lists them with the tariffs each opened under.`,
      width,
      yLabel: unit,
      xFormat: time,
      yFormat: (value) => number(value, 3),
      series: [
        { name: 'peer agreement', points: points('peer'), joined: false },
        { name: 'trade with the provider', points: points('provider'), joined: false },
      ],
      references: [
        {
          ...tariff('providerSellsAt'),
          label: `provider sells at ${price(u.tariffs.providerSellsAt, u.unit)}`,
        },
        {
          ...tariff('providerBuysAt'),
          label: `provider buys at ${price(u.tariffs.providerBuysAt, u.unit)}`,
        },
      ],
    }),
    chartData(
      `${u.name} agreed prices`,
      [
        'Opened',
        'Agreement',
        'With',
        { label: 'Price', numeric: true },
        { label: 'Quantity', numeric: true },
        { label: 'Provider sold at', numeric: true },
        { label: 'Provider bought at', numeric: true },
      ],
      agreements.map((a) => [
        time(a.opened.timestamp),
        agreementLink(a.id),
        a.kind === 'peer' ? 'a peer' : 'the provider',
        price(a.unitPrice, a.unit),
        quantity(a.quantity, a.unit),
        price(a.tariffs.providerSellsAt, a.unit),
        price(a.tariffs.providerBuysAt, a.unit),
      ]),
    ),
  ];
}

/**
 * @param {Utility} u
 * @param {readonly Agreement[]} agreements of this utility
 * @param {Session | null} session
 */
function figures(u, agreements, session) {
  const peer = peerOnly(agreements);
  const average = weightedPrice(peer);
  const { delivered, contracted } = deliveredOfContracted(agreements);
  const { total, byParty } = savings(agreements);
  const names = new Map(
    agreements.flatMap((a) => [
      [a.seller, a.sellerName],
      [a.buyer, a.buyerName],
    ]),
  );
  return [
    facts([
      ['Peer agreements', `${peer.length} of ${agreements.length}`],
      ['Average peer price, weighted by quantity', average === null ? '–' : price(average, u.unit)],
      [
        'Delivered in settled agreements',
        `${quantity(delivered, u.unit)} of ${quantity(contracted, u.unit)} contracted (${percent(delivered, contracted)} %)`,
      ],
      ["Buyers saved against the provider's selling tariff", tokens(total.saved)],
      ["Sellers earned above the provider's buying tariff", tokens(total.earned)],
    ]),
    h(
      'p',
      { class: 'muted' },
      "Savings count what was delivered in settled peer agreements, against the provider's tariffs in force when each agreement opened.",
    ),
    byParty.size > 0 &&
      table(
        `${u.name}: savings per prosumer`,
        [
          'Prosumer',
          { label: 'Saved as buyer', numeric: true },
          { label: 'Earned above tariff as seller', numeric: true },
        ],
        [...byParty].map(([address, gain]) => [
          party(address, names.get(address) ?? null, session),
          tokens(gain.saved),
          tokens(gain.earned),
        ]),
      ),
  ];
}

/** How a share reads: whole percent, or a dash when there is nothing to divide. */
const share = (/** @type {number | null} */ rate) =>
  rate === null ? '–' : `${number(rate * 100, 0)} %`;

/** @param {NegotiationCounts} c */
function reasons(c) {
  const listed = Object.entries(c.reasons).map(([reason, n]) => `${reason} ${n}`);
  return listed.length === 0 ? '–' : listed.join(', ');
}

/**
 * The agreement rate per utility, from every negotiation the agents reported (the chain holds
 * only those that ended in an agreement): the park's, and for a plant's staff their own beside it.
 * @param {import('../../wire.js').NegotiationSummaries | null} summaries null where the gateway
 *   keeps none
 * @param {readonly Utility[]} utilities
 */
function agreementRates(summaries, utilities) {
  if (summaries === null) {
    return section(
      'Agreement rate',
      empty('Not available: this gateway keeps no record of how negotiations ended.'),
    );
  }
  const summary = summaries.items;
  const own = summary.some((s) => s.own !== null);
  const days = `ended in the last ${summaries.retainDays} days`;
  const name = (/** @type {string} */ id) => utilities.find((u) => u.utility === id)?.name ?? id;
  /** @type {[string, NegotiationCounts][]} */
  const rows = summary.flatMap((s) =>
    s.own === null
      ? [[name(s.utility), s.park]]
      : [
          [`${name(s.utility)}, park`, s.park],
          [`${name(s.utility)}, yours`, s.own],
        ],
  );
  return section(
    'Agreement rate',
    h(
      'p',
      {},
      own
        ? `Negotiations that ${days}, as the plants’ agents reported them: the park’s, and those your plant requested or was chosen for.`
        : `Negotiations that ${days}, as the plants’ agents reported them.`,
    ),
    table(
      'Negotiations and how they ended, per utility',
      [
        'Utility',
        { label: 'Agreement rate', numeric: true },
        { label: 'Agreed', numeric: true },
        { label: 'Failed', numeric: true },
        { label: 'Awaiting countersignature', numeric: true },
        { label: 'Requests nobody answered', numeric: true },
        { label: 'Rounds to agreement', numeric: true },
        'Why they failed',
      ],
      rows.map(([label, c]) => [
        label,
        share(c.agreementRate),
        c.agreed,
        c.failed,
        c.pending,
        c.unanswered,
        c.meanRoundsToAgreement === null ? '–' : number(c.meanRoundsToAgreement, 1),
        reasons(c),
      ]),
    ),
  );
}

/** @type {View} */
export const statisticsView = {
  nav: 'statistics',
  title: () => 'Statistics',
  reloadOn: ['agreement'],
  async load() {
    /** @type {[{ items: Agreement[], complete: boolean }, import('../../wire.js').List<Utility>, import('../../wire.js').NegotiationSummaries | null]} */
    const [agreements, utilities, negotiations] = await Promise.all([
      allPages('/api/agreements', MAX_PAGES),
      getJson('/api/utilities'),
      // 503: the gateway keeps no negotiation log; the rest of the view stands without it.
      getJson('/api/negotiations/summary').catch((error) => {
        if (error instanceof ApiError && error.status === 503) return null;
        throw error;
      }),
    ]);
    return ({ width, session }) => {
      const scope = agreements.complete
        ? `From all ${agreements.items.length} agreements you can see.`
        : `From the newest ${agreements.items.length} agreements you can see; older ones are left out.`;
      return h(
        'div',
        {},
        h('p', {}, scope),
        utilities.items.map((u) => {
          const own = agreements.items.filter((a) => a.utility === u.utility);
          return section(
            u.name,
            own.length === 0
              ? empty('No agreements yet.')
              : [...prices(u, own, width), ...figures(u, own, session)],
          );
        }),
        agreementRates(negotiations, utilities.items),
      );
    };
  },
};
