/**
 * The schedule: one row per agreement, a bar over its delivery window, filled while active and
 * outlined once settled (so the two tell apart without colour), and a line at the present.
 */
import { h, svg } from '../dom.js';
import { chartFrame, evenTicks, legend, MARGIN, scale, xAxis } from './frame.js';

const ROW = 22;
/** Room for a row's label: a shortened agreement id. */
const LABEL_WIDTH = 104;
const X_LABEL_WIDTH = 140;

/**
 * @param {string} state
 * @param {number} x
 * @param {number} y
 * @param {number} width
 */
const span = (state, x, y, width) =>
  svg('rect', { class: `span state-${state}`, x, y, width: Math.max(width, 2), height: ROW - 8 });

/**
 * @param {object} spec
 * @param {string} spec.title
 * @param {string} spec.description
 * @param {number} spec.width
 * @param {number} spec.now unix seconds
 * @param {(unixSeconds: number) => string} spec.format
 * @param {readonly { label: string, start: number, end: number, state: string }[]} spec.rows
 */
export function timeline({ title, description, width, now, format, rows }) {
  const height = MARGIN.top + rows.length * ROW + MARGIN.bottom;
  const { chart, plot } = chartFrame({ title, description, width, height, left: LABEL_WIDTH });
  const x = scale(
    Math.min(now, ...rows.map((r) => r.start)),
    Math.max(now, ...rows.map((r) => r.end)),
    plot.left,
    plot.right,
  );
  const count = Math.max(2, Math.min(5, Math.floor((plot.right - plot.left) / X_LABEL_WIDTH)));
  xAxis(chart, x, plot, evenTicks(x.min, x.max, count), format);
  rows.forEach((row, i) => {
    const top = plot.top + i * ROW;
    chart.append(
      svg(
        'text',
        { class: 'tick', x: plot.left - 6, y: top + ROW / 2 + 2, 'text-anchor': 'end' },
        row.label,
      ),
      span(row.state, x.at(row.start), top + 4, x.at(row.end) - x.at(row.start)),
    );
  });
  const at = x.at(now);
  chart.append(
    svg('line', { class: 'now', x1: at, x2: at, y1: plot.top - 6, y2: plot.bottom }),
    svg('text', { class: 'note', x: at, y: plot.top - 10, 'text-anchor': 'middle' }, 'now'),
  );
  const keys = ['active', 'settled'].map((state) => ({
    name: state,
    swatch: span(state, 0, 0, 14),
  }));
  return h('figure', { class: 'chart-figure' }, chart, legend(keys));
}
