/**
 * Builds the page from nodes, never from HTML strings: what comes from the chain is always text,
 * and the CSP's Trusted Types rule (no HTML sinks at all) holds.
 */

const SVG_NS = 'http://www.w3.org/2000/svg';

/**
 * @typedef {Node | string | number | null | undefined | false} Child
 * @typedef {Child | readonly Child[]} Children
 * Attributes; `true` sets an empty one, false/null/undefined leaves it out, a function listens to
 * the event named after `on` (onsubmit).
 * @typedef {{ [name: string]: string | number | boolean | null | undefined | ((event: Event) => void) }} Attributes
 */

/**
 * @param {Element} element
 * @param {Attributes} attributes
 * @param {readonly Children[]} children
 */
function assemble(element, attributes, children) {
  for (const [name, value] of Object.entries(attributes)) {
    if (typeof value === 'function') element.addEventListener(name.slice(2), value);
    else if (value === true) element.setAttribute(name, '');
    else if (value !== false && value !== null && value !== undefined) {
      element.setAttribute(name, String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(typeof child === 'number' ? String(child) : child);
  }
}

/**
 * An HTML element.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Attributes} [attributes]
 * @param {...Children} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  assemble(element, attributes, children);
  return element;
}

/**
 * An SVG element.
 * @template {keyof SVGElementTagNameMap} K
 * @param {K} tag
 * @param {Attributes} [attributes]
 * @param {...Children} children
 * @returns {SVGElementTagNameMap[K]}
 */
export function svg(tag, attributes = {}, ...children) {
  const element = document.createElementNS(SVG_NS, tag);
  assemble(element, attributes, children);
  return element;
}

/** @typedef {string | { readonly label: string, readonly numeric: true }} Column */

/**
 * A data table in a region that scrolls sideways on a narrow screen (the page itself never does),
 * focusable so that a keyboard can scroll it. The first cell of a row is its header.
 * @param {string} caption
 * @param {readonly Column[]} columns
 * @param {readonly (readonly Children[])[]} rows
 */
export function table(caption, columns, rows) {
  const numeric = columns.map((c) => typeof c !== 'string');
  /** @param {number} i */
  const cellClass = (i) => (numeric[i] ? 'num' : null);
  return h(
    'div',
    { class: 'table-scroll', role: 'region', 'aria-label': caption, tabindex: 0 },
    h(
      'table',
      {},
      h('caption', {}, caption),
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          columns.map((c, i) =>
            h('th', { scope: 'col', class: cellClass(i) }, typeof c === 'string' ? c : c.label),
          ),
        ),
      ),
      h(
        'tbody',
        {},
        rows.map((row) =>
          h(
            'tr',
            {},
            row.map((cell, i) =>
              i === 0
                ? h('th', { scope: 'row', class: cellClass(i) }, cell)
                : h('td', { class: cellClass(i) }, cell),
            ),
          ),
        ),
      ),
    ),
  );
}

/**
 * A description list of label and value pairs.
 * @param {readonly (readonly [string, Children])[]} pairs
 * @param {string} [className]
 */
export function facts(pairs, className = 'facts') {
  return h(
    'dl',
    { class: className },
    pairs.map(([term, value]) => h('div', {}, h('dt', {}, term), h('dd', {}, value))),
  );
}
