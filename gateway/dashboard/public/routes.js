/**
 * Which view the address shows. Routes live in the fragment (#/tx/0x…), so the gateway serves one
 * page and any view can be bookmarked or linked to, the explorer's pages included.
 *
 * @typedef {import('./views/view.js').Route} Route
 * @typedef {import('./views/view.js').View} View
 */
import { h } from './dom.js';
import { agreementView } from './views/agreement.js';
import { blocksView, blockView, txView } from './views/explorer.js';
import { forecastView } from './views/forecast.js';
import { liveView } from './views/live.js';
import { scheduleView } from './views/schedule.js';
import { statisticsView } from './views/statistics.js';
import { volumesView } from './views/volumes.js';

/** @type {Readonly<Record<string, View>>} */
const VIEWS = {
  '': liveView,
  schedule: scheduleView,
  volumes: volumesView,
  statistics: statisticsView,
  forecast: forecastView,
  explorer: blocksView,
  block: blockView,
  tx: txView,
  agreement: agreementView,
};

/** @type {View} */
const notFound = {
  nav: '',
  title: () => 'Not found',
  reloadOn: [],
  load: async () => () =>
    h('p', {}, 'There is no such view. ', h('a', { href: '#/' }, 'Go to the live view'), '.'),
};

/**
 * Whether a fragment is a route: `#main` (the skip link's) is not.
 * @param {string} hash
 */
export const isRoute = (hash) => hash === '' || hash.startsWith('#/');

/**
 * @param {string} hash location.hash
 * @returns {Route}
 */
export function parseRoute(hash) {
  const text = isRoute(hash) ? hash.slice(2) : '';
  const mark = text.indexOf('?');
  const path = mark < 0 ? text : text.slice(0, mark);
  return {
    path: path
      .split('/')
      .filter((part) => part !== '')
      .map(decodeURIComponent),
    query: new URLSearchParams(mark < 0 ? '' : text.slice(mark + 1)),
  };
}

/** @param {Route} route */
export const viewOf = (route) => VIEWS[route.path[0] ?? ''] ?? notFound;
