/**
 * What every view is, and the pieces they share.
 *
 * A view's `load` fetches what it shows and returns a function that draws it, so the app can
 * draw it again at another width without fetching, and fetch it again after the live events
 * named in `reloadOn`.
 *
 * @typedef {import('../../wire.js').Session} Session
 * @typedef {import('../live.js').ChangeName} ChangeName
 * @typedef {import('../dom.js').Children} Children
 * @typedef {import('../dom.js').Column} Column
 *
 * @typedef {object} Route
 * @property {readonly string[]} path the hash's path: '#/tx/0xab' is ['tx', '0xab']
 * @property {URLSearchParams} query
 *
 * @typedef {object} Context
 * @property {number} width of the column the view is drawn in, px
 * @property {Session | null} session null where sign-in is not in place
 *
 * @typedef {object} View
 * @property {string} nav the navigation entry it is under
 * @property {(route: Route) => string} title
 * @property {(route: Route) => Promise<(context: Context) => Node>} load
 * @property {readonly ChangeName[]} reloadOn
 */
import { h, table } from '../dom.js';
import { short } from '../format.js';

/**
 * @param {string} hash
 * @param {string} [label]
 */
export const txLink = (hash, label = `tx ${short(hash)}`) =>
  h('a', { href: `#/tx/${hash}` }, label);

/** @param {number} number */
export const blockLink = (number) => h('a', { href: `#/block/${number}` }, `block ${number}`);

/** @param {string} id */
export const agreementLink = (id) =>
  h('a', { href: `#/agreement/${id}` }, `Agreement ${short(id)}`);

/**
 * An account by the name the park gives it (a plant's id, "provider"), or its address shortened
 * where it has none; marked when it is the signed-in plant's own.
 * @param {string} address
 * @param {string | null} name
 * @param {Session | null} session
 */
export function party(address, name, session) {
  const own = session?.role === 'plant' && session.address.toLowerCase() === address.toLowerCase();
  const shown = name ?? short(address);
  return own ? `${shown} (you)` : shown;
}

/**
 * @param {string} title
 * @param {...Children} content
 */
export const section = (title, ...content) => h('section', {}, h('h3', {}, title), ...content);

/** @param {string} text */
export const empty = (text) => h('p', { class: 'empty' }, text);

/**
 * A chart's data as a table, folded under it: the chart's text alternative.
 * @param {string} caption
 * @param {readonly Column[]} columns
 * @param {readonly (readonly Children[])[]} rows
 */
export const chartData = (caption, columns, rows) =>
  h(
    'details',
    { class: 'chart-data' },
    h('summary', {}, `Table: ${caption}`),
    table(caption, columns, rows),
  );

/**
 * A select with its label around it.
 * @param {string} label
 * @param {string} name the query parameter it sets
 * @param {readonly (readonly [value: string, text: string])[]} options
 * @param {string} selected
 */
export const choice = (label, name, options, selected) =>
  h(
    'label',
    {},
    `${label} `,
    h(
      'select',
      { name },
      options.map(([value, text]) => h('option', { value, selected: value === selected }, text)),
    ),
  );

/**
 * A form whose fields become the query of `path` when submitted: the view's state lives in the
 * address, so it survives a reload and can be bookmarked for a control-room screen.
 * @param {string} path e.g. '#/schedule'
 * @param {...Children} fields
 */
export function queryForm(path, ...fields) {
  /** @param {Event} event */
  const submit = (event) => {
    event.preventDefault();
    const form = /** @type {HTMLFormElement} */ (event.currentTarget);
    const query = new URLSearchParams();
    for (const [name, value] of new FormData(form)) {
      if (typeof value === 'string' && value !== '') query.set(name, value);
    }
    const target = `${path}?${query}`;
    // Showing the same choice again fetches it again, as a reload would.
    if (location.hash === target) window.dispatchEvent(new HashChangeEvent('hashchange'));
    else location.hash = target;
  };
  return h(
    'form',
    { class: 'filters', onsubmit: submit },
    ...fields,
    h('button', { type: 'submit' }, 'Show'),
  );
}
