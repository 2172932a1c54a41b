/**
 * Fig. 6 of the seed as an SVG: (a) offers on price and (b) offers on quantity over time steps, one
 * line per agent, with the step and value each issue was settled at. Dependency-free, so it renders
 * the same on a Raspberry Pi as in a browser.
 */
import { type Issue, ROLES, type Role } from '../../core/negotiation/issues.js';
import type { Outcome } from '../../core/negotiation/protocol.js';
import { formatMilli, fromMilli } from '../../core/units.js';
import type { Utility } from '../../core/utilities.js';
import type { ScenarioResult } from './scenario.js';

/** What the plot shows: one negotiation of a utility between two named agents. */
export interface OffersPlot {
  readonly title: string;
  readonly utility: Utility;
  readonly names: Readonly<Record<Role, string>>;
  readonly outcome: Outcome;
}

/** A bilateral scenario's result, as the plot shows it. */
export function scenarioPlot({ scenario, outcome }: ScenarioResult): OffersPlot {
  return {
    title: scenario.title,
    utility: scenario.utility,
    names: { seller: scenario.seller.name, buyer: scenario.buyer.name },
    outcome,
  };
}

const WIDTH = 1040;
const HEIGHT = 470;
const PANEL = { width: 420, height: 300, top: 70, left: [80, 590] as const };
const COLOR: Record<Role, string> = { seller: '#1f6fb4', buyer: '#c8372d' };

export function escapeXml(text: string): string {
  return text.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** About five round tick values covering [min, max]. */
export function niceTicks(min: number, max: number): number[] {
  const span = max - min || Math.abs(max) || 1;
  const raw = span / 5;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 5, 10].find((m) => m * magnitude >= raw) ?? 10) * magnitude;
  const ticks: number[] = [];
  for (let v = Math.floor(min / step) * step; v <= max + step * 1e-9; v += step) {
    ticks.push(Number(v.toPrecision(12)));
  }
  return ticks;
}

interface Panel {
  readonly issue: Issue;
  readonly label: string;
  readonly unit: string;
  readonly references: readonly { readonly value: number; readonly label: string }[];
}

export function offersPlotSvg({ title: name, utility, names, outcome }: OffersPlot): string {
  const lastRound = Math.max(1, ...outcome.transcript.map((m) => m.round));
  const panels: Panel[] = [
    {
      issue: 'price',
      label: '(a) Offers on price',
      unit: `tokens/${utility.unit}`,
      references: [
        { value: fromMilli(utility.provider_sells_at), label: 'provider sells' },
        { value: fromMilli(utility.provider_buys_at), label: 'provider buys' },
      ],
    },
    { issue: 'quantity', label: '(b) Offers on quantity', unit: utility.unit, references: [] },
  ];

  const body = panels.map((panel, index) => {
    const left = PANEL.left[index] ?? 0;
    const values = outcome.transcript.map((m) => fromMilli(m[panel.issue]));
    const all = [...values, ...panel.references.map((r) => r.value)];
    const yTicks = niceTicks(Math.min(0, ...all), Math.max(...all));
    const yMin = yTicks[0] ?? 0;
    const yMax = yTicks[yTicks.length - 1] ?? 1;
    const x = (round: number) => left + (round / lastRound) * PANEL.width;
    const y = (value: number) =>
      PANEL.top + PANEL.height - ((value - yMin) / (yMax - yMin || 1)) * PANEL.height;
    const parts: string[] = [
      `<text x="${left}" y="${PANEL.top - 16}" class="panel">${escapeXml(panel.label)}</text>`,
      `<rect x="${left}" y="${PANEL.top}" width="${PANEL.width}" height="${PANEL.height}" class="frame"/>`,
    ];
    for (const v of yTicks) {
      parts.push(
        `<line x1="${left}" x2="${left + PANEL.width}" y1="${y(v)}" y2="${y(v)}" class="grid"/>`,
        `<text x="${left - 8}" y="${y(v) + 4}" class="tick" text-anchor="end">${v}</text>`,
      );
    }
    for (const round of niceTicks(0, lastRound).filter(
      (r) => r <= lastRound && Number.isInteger(r),
    )) {
      parts.push(
        `<text x="${x(round)}" y="${PANEL.top + PANEL.height + 18}" class="tick" text-anchor="middle">${round}</text>`,
      );
    }
    parts.push(
      `<text x="${left + PANEL.width / 2}" y="${PANEL.top + PANEL.height + 40}" class="axis" text-anchor="middle">time step</text>`,
      `<text transform="translate(${left - 48} ${PANEL.top + PANEL.height / 2}) rotate(-90)" class="axis" text-anchor="middle">${escapeXml(panel.unit)}</text>`,
    );
    for (const ref of panel.references) {
      parts.push(
        `<line x1="${left}" x2="${left + PANEL.width}" y1="${y(ref.value)}" y2="${y(ref.value)}" class="reference"/>`,
        `<text x="${left + PANEL.width - 4}" y="${y(ref.value) - 5}" class="tick" text-anchor="end">${escapeXml(ref.label)} ${ref.value}</text>`,
      );
    }
    for (const role of ROLES) {
      const points = outcome.transcript
        .filter((m) => m.by === role)
        .map((m) => ({ cx: x(m.round), cy: y(fromMilli(m[panel.issue])) }));
      const path = points.map(({ cx, cy }) => `${cx.toFixed(1)},${cy.toFixed(1)}`).join(' ');
      parts.push(
        `<polyline points="${path}" fill="none" stroke="${COLOR[role]}" stroke-width="2"/>`,
      );
      for (const { cx, cy } of points) {
        parts.push(
          role === 'seller'
            ? `<circle cx="${cx.toFixed(1)}" cy="${cy.toFixed(1)}" r="3.5" fill="${COLOR[role]}"/>`
            : `<rect x="${(cx - 3.5).toFixed(1)}" y="${(cy - 3.5).toFixed(1)}" width="7" height="7" fill="${COLOR[role]}"/>`,
        );
      }
    }
    const settled = outcome.settled[panel.issue];
    if (settled !== undefined) {
      const at = x(settled.round);
      // Label on the side of the line with room, so it stays inside the frame.
      const onLeft = at > left + PANEL.width / 2;
      parts.push(
        `<line x1="${at}" x2="${at}" y1="${PANEL.top}" y2="${PANEL.top + PANEL.height}" class="settled"/>`,
        `<text x="${onLeft ? at - 6 : at + 6}" y="${PANEL.top + 16}" class="note" text-anchor="${onLeft ? 'end' : 'start'}">agreed ${formatMilli(settled.value)} at step ${settled.round}</text>`,
      );
    }
    return parts.join('\n  ');
  });

  const legend = ROLES.map(
    (role, i) =>
      `<g transform="translate(${80 + i * 300} 450)"><line x1="0" x2="24" y1="0" y2="0" stroke="${COLOR[role]}" stroke-width="2"/>` +
      `<text x="32" y="4" class="axis">${escapeXml(`${names[role]} (${role})`)}</text></g>`,
  );
  const title = `${name}: offers over time steps`;
  return `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" role="img" aria-labelledby="title desc">
  <title id="title">${escapeXml(title)}</title>
  <desc id="desc">${escapeXml(describe(utility, outcome))}</desc>
  <style>
    text { font-family: system-ui, sans-serif; fill: #222; }
    .panel { font-size: 15px; font-weight: 600; }
    .axis { font-size: 13px; }
    .tick { font-size: 11px; fill: #555; }
    .note { font-size: 12px; fill: #222; }
    .frame { fill: none; stroke: #888; }
    .grid { stroke: #e4e4e4; }
    .reference { stroke: #888; stroke-dasharray: 2 4; }
    .settled { stroke: #222; stroke-dasharray: 6 4; }
  </style>
  <rect width="100%" height="100%" fill="#fff"/>
  <text x="80" y="28" class="panel">${escapeXml(title)}</text>
  ${body.join('\n  ')}
  ${legend.join('\n  ')}
</svg>
`;
}

function describe(utility: Utility, outcome: Outcome): string {
  if (outcome.kind !== 'agreement')
    return `No agreement; the negotiation ended at step ${outcome.round}.`;
  return (
    `Agreement on ${formatMilli(outcome.quantity)} ${utility.unit} at ${formatMilli(outcome.price)} tokens per ` +
    `${utility.unit}; price settled at step ${outcome.settled.price.round}, quantity at step ${outcome.settled.quantity.round}.`
  );
}
