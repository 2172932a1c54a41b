/**
 * `eip-sim evaluate --report DIR`: the evaluation as one HTML page a person can read, with no
 * script and nothing fetched: the park's figures per policy, whether the learned policy met its
 * goals, and the plots, each an inline SVG with a title, a description and its data in a table:
 * profit per prosumer per policy, the distribution of agreed prices per utility, and the offers
 * over time of a sample negotiation (Fig. 6 of the seed, for one of the learned policy's).
 */
import { escapeXml, niceTicks, offersPlotSvg } from '../negotiation/plot-svg.js';
import type { Evaluation, PolicyEvaluation } from './evaluate.js';
import { parkTable, tokens, verdict } from './figures.js';
import { type ParkScenario, scenarioUtility } from './scenario.js';

const COLORS = ['#6b6b6b', '#1f6fb4', '#b36b00', '#2a8a3e'];
const SHAPES = ['circle', 'square', 'diamond', 'triangle'] as const;

function marker(shape: (typeof SHAPES)[number], x: number, y: number, color: string): string {
  const at = (dx: number, dy: number) => `${(x + dx).toFixed(1)},${(y + dy).toFixed(1)}`;
  switch (shape) {
    case 'circle':
      return `<circle cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="3.2" fill="${color}"/>`;
    case 'square':
      return `<rect x="${(x - 3).toFixed(1)}" y="${(y - 3).toFixed(1)}" width="6" height="6" fill="${color}"/>`;
    case 'diamond':
      return `<polygon points="${at(0, -4)} ${at(4, 0)} ${at(0, 4)} ${at(-4, 0)}" fill="${color}"/>`;
    case 'triangle':
      return `<polygon points="${at(0, -4)} ${at(4, 3)} ${at(-4, 3)}" fill="${color}"/>`;
  }
}

interface Series {
  readonly name: string;
  readonly points: readonly { readonly x: number; readonly y: number }[];
  /** Joined by a line, or markers only. */
  readonly joined: boolean;
}

/** An SVG chart of `series` over a numeric x axis; `xLabel`/`yLabel` name the axes. */
function chartSvg(spec: {
  readonly title: string;
  readonly description: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly series: readonly Series[];
  readonly zeroLine?: boolean;
}): string {
  const width = 960;
  const height = 360;
  const plot = { left: 90, right: width - 20, top: 40, bottom: height - 70 };
  const all = spec.series.flatMap((s) => s.points);
  const xs = all.map((p) => p.x);
  const ys = [...all.map((p) => p.y), ...(spec.zeroLine ? [0] : [])];
  const xTicks = niceTicks(Math.min(...xs), Math.max(...xs));
  const yTicks = niceTicks(Math.min(...ys), Math.max(...ys));
  const [x0, x1] = [xTicks[0] ?? 0, xTicks.at(-1) ?? 1];
  const [y0, y1] = [yTicks[0] ?? 0, yTicks.at(-1) ?? 1];
  const x = (v: number) => plot.left + ((v - x0) / (x1 - x0 || 1)) * (plot.right - plot.left);
  const y = (v: number) => plot.bottom - ((v - y0) / (y1 - y0 || 1)) * (plot.bottom - plot.top);
  const parts: string[] = [];
  for (const v of yTicks) {
    parts.push(
      `<line x1="${plot.left}" x2="${plot.right}" y1="${y(v)}" y2="${y(v)}" class="grid"/>`,
      `<text x="${plot.left - 8}" y="${y(v) + 4}" class="tick" text-anchor="end">${v.toLocaleString('en-US')}</text>`,
    );
  }
  for (const v of xTicks) {
    parts.push(
      `<text x="${x(v)}" y="${plot.bottom + 18}" class="tick" text-anchor="middle">${v.toLocaleString('en-US')}</text>`,
    );
  }
  if (spec.zeroLine) {
    parts.push(
      `<line x1="${plot.left}" x2="${plot.right}" y1="${y(0)}" y2="${y(0)}" class="zero"/>`,
    );
  }
  spec.series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length] as string;
    const shape = SHAPES[i % SHAPES.length] as (typeof SHAPES)[number];
    if (s.joined) {
      const path = s.points.map((p) => `${x(p.x).toFixed(1)},${y(p.y).toFixed(1)}`).join(' ');
      parts.push(`<polyline points="${path}" fill="none" stroke="${color}" stroke-width="2"/>`);
    }
    for (const p of s.points) parts.push(marker(shape, x(p.x), y(p.y), color));
  });
  const legend = spec.series.map((s, i) => {
    const color = COLORS[i % COLORS.length] as string;
    const shape = SHAPES[i % SHAPES.length] as (typeof SHAPES)[number];
    const left = plot.left + i * 200;
    return `${marker(shape, left, height - 18, color)}<text x="${left + 10}" y="${height - 14}" class="axis">${escapeXml(s.name)}</text>`;
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${escapeXml(spec.title)}">
  <title>${escapeXml(spec.title)}</title>
  <desc>${escapeXml(spec.description)}</desc>
  <rect x="${plot.left}" y="${plot.top}" width="${plot.right - plot.left}" height="${plot.bottom - plot.top}" class="frame"/>
  ${parts.join('\n  ')}
  <text x="${(plot.left + plot.right) / 2}" y="${plot.bottom + 40}" class="axis" text-anchor="middle">${escapeXml(spec.xLabel)}</text>
  <text transform="translate(22 ${(plot.top + plot.bottom) / 2}) rotate(-90)" class="axis" text-anchor="middle">${escapeXml(spec.yLabel)}</text>
  ${legend.join('\n  ')}
</svg>`;
}

function table(
  caption: string,
  head: readonly string[],
  rows: readonly (readonly string[])[],
): string {
  const cells = (row: readonly string[], tag: 'td' | 'th') =>
    row.map((c, i) => `<${tag}${i > 0 ? ' class="num"' : ''}>${escapeXml(c)}</${tag}>`).join('');
  return `<table><caption>${escapeXml(caption)}</caption><thead><tr>${cells(head, 'th')}</tr></thead><tbody>${rows.map((r) => `<tr>${cells(r, 'td')}</tr>`).join('')}</tbody></table>`;
}

/** A figure: the chart, and its data as a table folded under it. */
function figure(svg: string, caption: string, data: string): string {
  return `<figure>${svg}<figcaption>${escapeXml(caption)}</figcaption><details><summary>The data</summary>${data}</details></figure>`;
}

function profitFigure(e: Evaluation): string {
  const ids = e.policies[0]?.prosumers.map((p) => p.id) ?? [];
  const series = e.policies.map((p) => ({
    name: p.policy,
    points: p.prosumers.map((pr, i) => ({ x: i + 1, y: pr.profitVsProvider })),
    joined: false,
  }));
  const svg = chartSvg({
    title: 'Profit against the provider alone, per prosumer and policy',
    description: `Tokens over ${e.seeds.length} days for each of ${ids.length} prosumers, numbered as in the table; 0 is trading with the provider alone.`,
    xLabel: 'prosumer (number in the table)',
    yLabel: 'tokens',
    series,
    zeroLine: true,
  });
  const data = table(
    'Profit against the provider alone, tokens',
    ['prosumer', ...e.policies.map((p) => p.policy)],
    ids.map((id, i) => [
      `${i + 1}. ${id}`,
      ...e.policies.map((p) => tokens(p.prosumers[i]?.profitVsProvider ?? 0)),
    ]),
  );
  return figure(
    svg,
    'Each point is a prosumer under a policy: above 0 it gained by trading in the park.',
    data,
  );
}

/** Shares of agreements in 20 bins between the provider's tariffs. */
function histogram(prices: readonly number[], low: number, high: number) {
  const bins = 20;
  const counts = new Array<number>(bins).fill(0);
  const width = (high - low) / bins || 1;
  for (const p of prices) {
    const bin = Math.min(bins - 1, Math.max(0, Math.floor((p - low) / width)));
    counts[bin] = (counts[bin] ?? 0) + 1;
  }
  return counts.map((c, i) => ({
    x: low + (i + 0.5) * width,
    y: prices.length ? c / prices.length : 0,
  }));
}

function priceFigures(e: Evaluation, scenario: ParkScenario): string {
  return scenario.utilities
    .map((utility) => {
      const low = utility.provider_buys_at / 1000;
      const high = utility.provider_sells_at / 1000;
      const traded = e.policies.filter((p) => (p.prices[utility.id]?.length ?? 0) > 0);
      if (traded.length === 0) return '';
      const svg = chartSvg({
        title: `${utility.name}: agreed prices per policy`,
        description: `The share of agreements at each price between the provider's buying tariff (${low}) and selling tariff (${high}) tokens/${utility.unit}.`,
        xLabel: `tokens/${utility.unit}`,
        yLabel: 'share of agreements',
        series: traded.map((p) => ({
          name: p.policy,
          points: histogram(p.prices[utility.id] ?? [], low, high),
          joined: true,
        })),
      });
      const data = table(
        `${utility.name}: agreed prices`,
        ['policy', 'agreements', 'lowest', 'median', 'highest'],
        traded.map((p) => {
          const sorted = [...(p.prices[utility.id] ?? [])].sort((a, b) => a - b);
          return [
            p.policy,
            tokens(sorted.length),
            String(sorted[0]),
            String(sorted[Math.floor(sorted.length / 2)]),
            String(sorted.at(-1)),
          ];
        }),
      );
      return figure(
        svg,
        `${utility.name}: where the agreements' prices fell between the tariffs.`,
        data,
      );
    })
    .join('\n');
}

function sampleFigure(policy: PolicyEvaluation | undefined, scenario: ParkScenario): string {
  const sample = policy?.sample;
  if (!policy || !sample) return '<p>No agreement to show.</p>';
  const svg = offersPlotSvg({
    title: `${policy.policy}: ${sample.seller} sells ${sample.utility} to ${sample.buyer} at step ${sample.step}`,
    utility: scenarioUtility(scenario, sample.utility),
    names: { seller: sample.seller, buyer: sample.buyer },
    outcome: sample.outcome,
  }).replace(/^<\?xml[^>]*>\s*/, '');
  const data = table(
    'The moves',
    ['round', 'by', 'move', 'price', 'quantity'],
    sample.outcome.transcript.map((m) => [
      String(m.round),
      m.by,
      m.kind,
      String(m.price / 1000),
      String(m.quantity / 1000),
    ]),
  );
  return figure(
    svg,
    'Offers on price and quantity, round by round (Fig. 6 of the seed paper).',
    data,
  );
}

export function reportHtml(e: Evaluation, scenario: ParkScenario): string {
  const learned = e.policies.find((p) => p.policy === 'learned');
  const park = parkTable(e);
  const summary = table('The park, per policy, over all days', park.head, park.rows);
  const goalList = `<ul>${verdict(e)
    .map((line) => `<li>${escapeXml(line)}</li>`)
    .join('')}</ul>`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeXml(`${e.scenario}: how good the market is`)}</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 62rem; padding: 0 1rem; color: #1b1f23; }
  table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; }
  caption { text-align: left; font-weight: 600; padding-bottom: 0.3rem; }
  th, td { border-bottom: 1px solid #ccd; padding: 0.25rem 0.6rem; text-align: left; }
  .num { text-align: right; font-variant-numeric: tabular-nums; }
  figure { margin: 1.5rem 0; }
  svg { max-width: 100%; height: auto; }
  svg text { font-family: system-ui, sans-serif; fill: #222; }
  .tick { font-size: 11px; fill: #555; } .axis { font-size: 13px; }
  .frame { fill: none; stroke: #888; } .grid { stroke: #e4e4e4; } .zero { stroke: #222; stroke-dasharray: 4 3; }
</style>
</head>
<body>
<h1>${escapeXml(e.scenario)}: how good the market is</h1>
<p>${e.prosumers} prosumers, ${e.seeds.length} simulated days (seeds ${e.seeds[0]} to ${e.seeds.at(-1)}, held out from training), the same days under each policy. Profits are in tokens, against what each prosumer would have had trading with the main provider alone.</p>
<h2>Goals</h2>
${goalList}
<h2>The park</h2>
${summary}
<h2>Profit per prosumer</h2>
${profitFigure(e)}
<h2>Prices</h2>
${priceFigures(e, scenario)}
<h2>A negotiation</h2>
${sampleFigure(learned ?? e.policies.find((p) => p.sample !== null), scenario)}
</body>
</html>
`;
}
