/**
 * What the charts share: an SVG named by its title and description (role img), drawn at the width
 * of the column it sits in so its text stays the page's size on a phone, a plot area, linear
 * scales and round ticks. Colours come from style.css through classes, so they follow the page's
 * light or dark scheme and meet its contrast. Every chart is shown beside a table of its data.
 */
import { h, svg } from '../dom.js';

/** Room around the plot for tick labels and axis titles, in px. */
export const MARGIN = { top: 28, right: 16, bottom: 32, left: 72 };

/**
 * @typedef {object} Scale
 * @property {number} min
 * @property {number} max
 * @property {(value: number) => number} at the coordinate of a value
 */

/**
 * A linear scale from [min, max] onto [from, to] (a flat range maps to its middle).
 * @param {number} min
 * @param {number} max
 * @param {number} from
 * @param {number} to
 * @returns {Scale}
 */
export function scale(min, max, from, to) {
  const span = max - min;
  return {
    min,
    max,
    at: (value) => (span === 0 ? (from + to) / 2 : from + ((value - min) / span) * (to - from)),
  };
}

/**
 * About `count` round values from at or below min to at or above max.
 * @param {number} min
 * @param {number} max
 * @param {number} [count]
 */
export function roundTicks(min, max, count = 5) {
  const span = max - min || Math.abs(max) || 1;
  const rough = span / count;
  const magnitude = 10 ** Math.floor(Math.log10(rough));
  const step = ([1, 2, 2.5, 5, 10].find((m) => m * magnitude >= rough) ?? 10) * magnitude;
  const first = Math.floor(min / step) * step;
  // At least one step, and up to the first round value at or above max: the plot covers it all.
  const last = Math.max(Math.ceil(max / step) * step, first + step);
  const ticks = [];
  for (let v = first; v <= last + step / 2; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

/**
 * `count` about evenly spaced values from min to max, for time axes; with a `step` (an hour), each
 * falls a whole number of steps from min, as the data's own points do.
 * @param {number} min
 * @param {number} max
 * @param {number} count
 * @param {number} [step]
 */
export function evenTicks(min, max, count, step) {
  if (max === min) return [min];
  return Array.from({ length: count }, (_, i) => {
    const offset = ((max - min) * i) / (count - 1);
    return min + (step ? Math.round(offset / step) * step : offset);
  });
}

let charts = 0;

/**
 * An empty chart, named by its title and description, and its plot area: the chart less the
 * margins, `left` of them kept for the labels of the rows or the values.
 * @param {object} spec
 * @param {string} spec.title
 * @param {string} spec.description what the chart shows, in words
 * @param {number} spec.width
 * @param {number} spec.height
 * @param {number} [spec.left]
 */
export function chartFrame({ title, description, width, height, left = MARGIN.left }) {
  // Ids for aria-labelledby; unique within the page however many charts it shows.
  charts++;
  const titleId = `chart-${charts}-title`;
  const descId = `chart-${charts}-desc`;
  const chart = svg(
    'svg',
    {
      class: 'chart',
      width,
      height,
      viewBox: `0 0 ${width} ${height}`,
      role: 'img',
      'aria-labelledby': `${titleId} ${descId}`,
    },
    svg('title', { id: titleId }, title),
    svg('desc', { id: descId }, description),
  );
  const plot = {
    left,
    right: width - MARGIN.right,
    top: MARGIN.top,
    bottom: height - MARGIN.bottom,
  };
  return { chart, plot };
}

/**
 * Vertical grid lines across the plot, labelled below it.
 * @param {SVGSVGElement} chart
 * @param {Scale} x
 * @param {{ top: number, bottom: number }} plot
 * @param {readonly number[]} ticks
 * @param {(value: number) => string} format
 */
export function xAxis(chart, x, plot, ticks, format) {
  ticks.forEach((value, i) => {
    const at = x.at(value);
    // The outer labels align inwards so that they stay inside the chart.
    const anchor = i === 0 ? 'start' : i === ticks.length - 1 ? 'end' : 'middle';
    chart.append(
      svg('line', { class: 'grid', x1: at, x2: at, y1: plot.top, y2: plot.bottom }),
      svg(
        'text',
        { class: 'tick', x: at, y: plot.bottom + 18, 'text-anchor': anchor },
        format(value),
      ),
    );
  });
}

/**
 * Horizontal grid lines across the plot, labelled on its left.
 * @param {SVGSVGElement} chart
 * @param {Scale} y
 * @param {{ left: number, right: number }} plot
 * @param {readonly number[]} ticks
 * @param {(value: number) => string} format
 */
export function yAxis(chart, y, plot, ticks, format) {
  for (const value of ticks) {
    const at = y.at(value);
    chart.append(
      svg('line', { class: 'grid', x1: plot.left, x2: plot.right, y1: at, y2: at }),
      svg(
        'text',
        { class: 'tick', x: plot.left - 6, y: at + 4, 'text-anchor': 'end' },
        format(value),
      ),
    );
  }
}

/**
 * The quantity and unit the values are in, above the plot's top left corner.
 * @param {SVGSVGElement} chart
 * @param {string} text
 */
export function axisTitle(chart, text) {
  chart.append(svg('text', { class: 'axis-title', x: 4, y: 14 }, text));
}

/**
 * The key to a chart's series, as HTML beside it: it wraps on a phone where SVG text would not.
 * @param {readonly { name: string, swatch: SVGElement }[]} keys each series' marker, drawn in a
 *   14 px square
 */
export function legend(keys) {
  return h(
    'ul',
    { class: 'legend' },
    keys.map(({ name, swatch }) =>
      h(
        'li',
        {},
        svg('svg', { width: 14, height: 14, viewBox: '0 0 14 14', 'aria-hidden': 'true' }, swatch),
        name,
      ),
    ),
  );
}
