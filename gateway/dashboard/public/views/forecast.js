/**
 * Tomorrow per utility: the park's internal demand and its balance (surplus +, deficit −) for the
 * next 24 hours, from GET /api/forecast?utility=… (gateway/forecast/history.ts), with the error the
 * forecast made in its backtest beside seasonal naive's. When there is no forecast, says why.
 *
 * @typedef {import('../../wire.js').Forecast} Forecast
 * @typedef {import('../../wire.js').SeriesForecast} SeriesForecast
 * @typedef {import('../../wire.js').Utility} Utility
 * @typedef {import('./view.js').View} View
 */
import { getJson } from '../api.js';
import { lineChart } from '../charts/line.js';
import { h } from '../dom.js';
import { hour, number } from '../format.js';
import { chartData, choice, queryForm, section } from './view.js';

const HOUR_MS = 3_600_000;

/** @param {number} value */
const amount = (value) => number(value, 1);

/**
 * Why there is no forecast, after the page's own "No forecast:": the gateway's messages may
 * begin with those words already.
 * @param {string} message
 */
const why = (message) => message.replace(/^no forecast:\s*/i, '');

/**
 * @param {SeriesForecast} series
 * @param {string} unit
 */
function accuracy(series, unit) {
  if (series.error === null) {
    return h('p', {}, 'Its error is not known yet: there is not enough history to backtest it.');
  }
  const { holt_winters, seasonal_naive } = series.error;
  return h(
    'p',
    {},
    `Mean absolute error per hour in the backtest: ${amount(holt_winters)} ${unit} for this forecast, ${amount(seasonal_naive)} ${unit} for seasonal naive (tomorrow repeats today). Lower is better.`,
  );
}

/**
 * @param {string} title
 * @param {string} meaning
 * @param {SeriesForecast} series
 * @param {string} unit
 * @param {number} width
 * @param {readonly import('../charts/line.js').Reference[]} references
 */
function part(title, meaning, series, unit, width, references) {
  const values = series.hourly.map((p) => p.value);
  return section(
    title,
    lineChart({
      title: `${title}, next 24 hours`,
      description: `${meaning} per hour in ${unit}, forecast from ${hour(series.hourly[0]?.at_ms ?? 0)}: from ${amount(Math.min(...values))} to ${amount(Math.max(...values))} ${unit}. The table below lists every hour.`,
      width,
      yLabel: `${unit} per hour`,
      xFormat: hour,
      yFormat: amount,
      series: [
        {
          name: 'forecast',
          points: series.hourly.map((p) => ({ x: p.at_ms, y: p.value })),
          joined: true,
        },
      ],
      references,
      xStep: HOUR_MS,
    }),
    accuracy(series, unit),
    chartData(
      `${title} per hour`,
      ['Hour', { label: `${unit} per hour`, numeric: true }],
      series.hourly.map((p) => [hour(p.at_ms), amount(p.value)]),
    ),
  );
}

/** @type {View} */
export const forecastView = {
  nav: 'forecast',
  title: () => 'Forecast',
  // Hourly figures from InfluxDB: no chain event changes them.
  reloadOn: [],
  async load({ query }) {
    /** @type {import('../../wire.js').List<Utility>} */
    const utilities = await getJson('/api/utilities');
    const chosen =
      utilities.items.find((u) => u.utility === query.get('utility')) ?? utilities.items[0];
    if (chosen === undefined) throw new Error('the gateway serves no utilities');
    /** @type {{ forecast: Forecast } | { reason: string }} */
    const answer = await getJson(
      `/api/forecast?utility=${encodeURIComponent(chosen.utility)}`,
    ).then(
      (forecast) => ({ forecast: /** @type {Forecast} */ (forecast) }),
      (error) => ({ reason: error instanceof Error ? error.message : String(error) }),
    );
    return ({ width }) => {
      const form = queryForm(
        '#/forecast',
        choice(
          'Utility',
          'utility',
          utilities.items.map((u) => /** @type {const} */ ([u.utility, u.name])),
          chosen.utility,
        ),
      );
      if ('reason' in answer) {
        return h(
          'div',
          {},
          form,
          h('p', { class: 'notice' }, `No forecast: ${why(answer.reason)}`),
        );
      }
      const { forecast } = answer;
      return h(
        'div',
        {},
        form,
        h('p', {}, `${chosen.name}, from ${forecast.history_hours} hours of the park's history.`),
        part(
          'Demand',
          "The park's internal demand (what its plants consume)",
          forecast.demand,
          chosen.unit,
          width,
          [],
        ),
        part(
          'Balance',
          "The park's balance (its plants' surplus, or deficit when below zero)",
          forecast.balance,
          chosen.unit,
          width,
          [{ value: 0, label: 'balanced' }],
        ),
      );
    };
  },
};
