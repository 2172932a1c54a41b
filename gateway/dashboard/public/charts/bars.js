/**
 * Amounts side by side: a group of horizontal bars per category (a prosumer), one bar per series
 * (sold, bought), each series in its own fill and outline so they tell apart without colour.
 */
import { h, svg } from '../dom.js';
import { axisTitle, chartFrame, legend, MARGIN, roundTicks, scale, xAxis } from './frame.js';

const BAR = 14;
const GAP = 10;
/** Room for a category's label: a shortened address. */
const LABEL_WIDTH = 104;

/**
 * @param {number} j the series' index
 * @param {number} x
 * @param {number} y
 * @param {number} width
 */
const bar = (j, x, y, width) =>
  svg('rect', { class: `bar series-${j}`, x, y, width: Math.max(width, 1), height: BAR - 2 });

/**
 * @param {object} spec
 * @param {string} spec.title
 * @param {string} spec.description
 * @param {number} spec.width
 * @param {string} spec.valueLabel
 * @param {(value: number) => string} spec.format
 * @param {readonly string[]} spec.series
 * @param {readonly { label: string, values: readonly number[] }[]} spec.categories
 */
export function barChart({ title, description, width, valueLabel, format, series, categories }) {
  const group = series.length * BAR + GAP;
  const height = MARGIN.top + categories.length * group + MARGIN.bottom;
  const { chart, plot } = chartFrame({ title, description, width, height, left: LABEL_WIDTH });
  const ticks = roundTicks(0, Math.max(0, ...categories.flatMap((c) => c.values)), 4);
  const x = scale(0, ticks.at(-1) ?? 1, plot.left, plot.right);
  xAxis(chart, x, plot, ticks, format);
  axisTitle(chart, valueLabel);
  categories.forEach((category, i) => {
    const top = plot.top + i * group + GAP / 2;
    chart.append(
      svg(
        'text',
        {
          class: 'tick',
          x: plot.left - 6,
          y: top + (series.length * BAR) / 2 + 4,
          'text-anchor': 'end',
        },
        category.label,
      ),
    );
    category.values.forEach((value, j) => {
      // Nothing is drawn for nothing: a sliver would read as a small amount.
      if (value > 0) chart.append(bar(j, plot.left, top + j * BAR, x.at(value) - plot.left));
    });
  });
  const keys = series.map((name, j) => ({ name, swatch: bar(j, 1, 1, 12) }));
  return h('figure', { class: 'chart-figure' }, chart, legend(keys));
}
