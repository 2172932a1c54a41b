/**
 * Values over time: one or more series of points, each with its own marker shape as well as its
 * colour (so they tell apart without colour), and dashed reference lines (the provider's tariffs,
 * zero).
 */
import { h, svg } from '../dom.js';
import {
  axisTitle,
  chartFrame,
  evenTicks,
  legend,
  roundTicks,
  scale,
  xAxis,
  yAxis,
} from './frame.js';

const HEIGHT = 280;
/** Room one time label needs, in px. */
const X_LABEL_WIDTH = 120;
const SHAPES = ['circle', 'square', 'diamond'];

/**
 * @typedef {object} Series
 * @property {string} name
 * @property {readonly { x: number, y: number }[]} points in order of x
 * @property {boolean} joined whether a line joins the points
 *
 * @typedef {object} Reference a dashed level across the chart
 * @property {number} value its level now, which `label` names
 * @property {string} label
 * @property {readonly { from: number | null, value: number }[]} [steps] the levels it had over
 *   time, oldest first, each from an x on (null: from the start); without them it is `value`
 *   throughout
 */

/**
 * The corners of a stepped reference across [x.min, x.max], in px: the level in force at the
 * left edge, then each change within the span; the last corner is at the right edge.
 * @param {Reference} reference
 * @param {{ min: number, max: number, at: (value: number) => number }} x
 * @param {{ at: (value: number) => number }} y
 * @param {{ left: number, right: number }} plot
 * @returns {{ cx: number, cy: number }[]}
 */
function referenceCorners(reference, x, y, plot) {
  const steps = reference.steps ?? [{ from: null, value: reference.value }];
  const inForce = steps.filter((s) => s.from === null || s.from <= x.min).at(-1);
  let cy = y.at(inForce?.value ?? steps[0]?.value ?? reference.value);
  const corners = [{ cx: plot.left, cy }];
  for (const step of steps) {
    if (step.from === null || step.from <= x.min || step.from > x.max) continue;
    const cx = x.at(step.from);
    corners.push({ cx, cy });
    cy = y.at(step.value);
    corners.push({ cx, cy });
  }
  corners.push({ cx: plot.right, cy });
  return corners;
}

/** @param {readonly { cx: number, cy: number }[]} corners */
const polyline = (corners) =>
  corners.map(({ cx, cy }) => `${cx.toFixed(1)},${cy.toFixed(1)}`).join(' ');

/**
 * @param {number} i the series' index
 * @param {number} cx
 * @param {number} cy
 */
function marker(i, cx, cy) {
  const shape = SHAPES[i % SHAPES.length];
  const cls = `marker series-${i % SHAPES.length}`;
  if (shape === 'circle') return svg('circle', { class: cls, cx, cy, r: 4 });
  if (shape === 'square')
    return svg('rect', { class: cls, x: cx - 4, y: cy - 4, width: 8, height: 8 });
  return svg('path', {
    class: cls,
    d: `M${cx} ${cy - 5}L${cx + 5} ${cy}L${cx} ${cy + 5}L${cx - 5} ${cy}Z`,
  });
}

/**
 * @param {object} spec
 * @param {string} spec.title
 * @param {string} spec.description
 * @param {number} spec.width
 * @param {string} spec.yLabel
 * @param {(value: number) => string} spec.xFormat
 * @param {(value: number) => string} spec.yFormat
 * @param {readonly Series[]} spec.series
 * @param {readonly Reference[]} spec.references
 * @param {number} [spec.xStep] the spacing of the data's x values, for time labels that fall on them
 */
export function lineChart({
  title,
  description,
  width,
  yLabel,
  xFormat,
  yFormat,
  series,
  references,
  xStep,
}) {
  const { chart, plot } = chartFrame({ title, description, width, height: HEIGHT });
  const points = series.flatMap((s) => s.points);
  const xs = points.map((p) => p.x);
  const levels = references.flatMap((r) => [r.value, ...(r.steps ?? []).map((s) => s.value)]);
  const ys = [0, ...points.map((p) => p.y), ...levels];
  const yTicks = roundTicks(Math.min(...ys), Math.max(...ys));
  const x = scale(Math.min(...xs), Math.max(...xs), plot.left, plot.right);
  const y = scale(yTicks[0] ?? 0, yTicks.at(-1) ?? 1, plot.bottom, plot.top);
  const xCount = Math.max(2, Math.min(6, Math.floor((plot.right - plot.left) / X_LABEL_WIDTH)));
  yAxis(chart, y, plot, yTicks, yFormat);
  xAxis(chart, x, plot, evenTicks(x.min, x.max, xCount, xStep), xFormat);
  axisTitle(chart, yLabel);
  for (const reference of references) {
    const corners = referenceCorners(reference, x, y, plot);
    const end = corners.at(-1)?.cy ?? 0;
    chart.append(
      svg('polyline', { class: 'reference', points: polyline(corners) }),
      svg(
        'text',
        { class: 'note', x: plot.right - 4, y: end - 5, 'text-anchor': 'end' },
        reference.label,
      ),
    );
  }
  series.forEach((s, i) => {
    const at = s.points.map((p) => ({ cx: x.at(p.x), cy: y.at(p.y) }));
    if (s.joined) {
      chart.append(
        svg('polyline', { class: `series series-${i % SHAPES.length}`, points: polyline(at) }),
      );
    }
    for (const { cx, cy } of at) chart.append(marker(i, cx, cy));
  });
  const keys = series.map((s, i) => ({ name: s.name, swatch: marker(i, 7, 7) }));
  return h('figure', { class: 'chart-figure' }, chart, legend(keys));
}
