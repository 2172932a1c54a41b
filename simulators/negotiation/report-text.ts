/** The human report of a negotiation: setup, every offer per step, outcome, gains. */
import type { PartyResult } from '../../core/negotiation/evaluation.js';
import { ISSUES, ROLES, type Role } from '../../core/negotiation/issues.js';
import type { Move } from '../../core/negotiation/protocol.js';
import { concessionShape, type Psi } from '../../core/negotiation/strategy.js';
import { textTable } from '../../core/text-table.js';
import { formatMilli, formatTokens, type Milli } from '../../core/units.js';
import type { ScenarioResult } from './scenario.js';

const signed = (text: string) => (text.startsWith('-') ? text : `+${text}`);

export function reportText({ scenario, outcome, evaluation }: ScenarioResult): string {
  const { utility } = scenario;
  const unit = utility.unit;
  const price = (v: Milli) => `${formatMilli(v)} tokens/${unit}`;
  const name = (role: Role) => scenario[role].name;
  const out: string[] = [scenario.title, ...scenario.notes.map((n) => `  ${n}`)];

  out.push(
    '',
    `Provider: sells at ${price(utility.provider_sells_at)}, buys at ${price(utility.provider_buys_at)}. ` +
      `Offers move in steps of ${formatMilli(scenario.ticks.price)} token/${unit} and ${formatMilli(scenario.ticks.quantity)} ${unit}.`,
    '',
  );
  const psiCells = (p: Psi) => [p.ip, p.rp, p.dl, p.cr].map(String).concat(concessionShape(p));
  out.push(
    textTable(
      ['agent', 'role', 'issue', 'ip', 'rp', 'dl', 'cr', 'shape'],
      ROLES.flatMap((role) =>
        ISSUES.map((issue) => [name(role), role, issue, ...psiCells(scenario[role].psi[issue])]),
      ),
      ['left', 'left', 'left', 'right', 'right', 'right', 'right', 'left'],
    ),
    '',
  );

  out.push(
    textTable(
      ['step', 'by', `price (tokens/${unit})`, `quantity (${unit})`, 'note'],
      outcome.transcript.map((move) => [
        String(move.round),
        name(move.by),
        formatMilli(move.price),
        formatMilli(move.quantity),
        note(move, name),
      ]),
      ['right', 'left', 'right', 'right', 'left'],
    ),
    '',
  );

  if (outcome.kind === 'agreement') {
    out.push(
      `Agreement at step ${outcome.round}: ${formatMilli(outcome.quantity)} ${unit} at ${price(outcome.price)} ` +
        `(price settled at step ${outcome.settled.price.round}, quantity at step ${outcome.settled.quantity.round}).`,
      `Escrow: ${formatTokens(evaluation.escrow)} tokens from ${name('buyer')} until delivery.`,
      '',
    );
  } else {
    const who = outcome.brokenOffBy === null ? 'Both agents' : name(outcome.brokenOffBy);
    const why = {
      deadline: `${who} passed its deadline with an issue open and broke off at step ${outcome.round}.`,
      'reserves-apart': `${who} stood at their reserves past every deadline without crossing (step ${outcome.round}).`,
      'round-limit': `The round limit ran out at step ${outcome.round}.`,
    }[outcome.reason];
    out.push(`No agreement. ${why} Both trade with the provider instead.`, '');
  }

  const gainRow = (role: Role, result: PartyResult) => [
    name(role),
    `${formatMilli(result.traded)} ${unit}`,
    signed(formatTokens(role === 'seller' ? result.tokens : -result.tokens)),
    signed(formatTokens(result.gain)),
    `${signed(formatMilli(result.gainPerUnit))}/${unit}`,
    `${formatMilli(result.remaining)} ${unit}`,
  ];
  out.push(
    'Against trading the same quantity with the provider:',
    textTable(
      ['agent', 'traded', 'tokens', 'gain', 'gain per unit', 'left to the provider'],
      [gainRow('seller', evaluation.seller), gainRow('buyer', evaluation.buyer)],
      ['left', 'right', 'right', 'right', 'right', 'right'],
    ),
  );
  const buyer = evaluation.buyer;
  if (buyer.remaining > 0) {
    const deadline = scenario.buyer.preferences.deadlineStep;
    const timing =
      buyer.stepsToDeadline === null
        ? ''
        : buyer.stepsToDeadline >= 0
          ? `, ${buyer.stepsToDeadline} steps before its deadline (step ${deadline})`
          : `, ${-buyer.stepsToDeadline} steps after its deadline (step ${deadline})`;
    out.push(
      '',
      `${name('buyer')} still lacks ${formatMilli(buyer.remaining)} ${unit}${timing}: ` +
        'it can negotiate with another prosumer or buy it from the provider.',
    );
  }
  return `${out.join('\n')}\n`;
}

function note(move: Move, name: (role: Role) => string): string {
  if (move.accepted.length === 0) return '';
  const what = move.accepted.map((issue) => `${issue} ${formatMilli(move[issue])}`).join(' and ');
  return `${name(move.by)} accepts ${what}${move.kind === 'accept' ? ': agreement' : ''}`;
}
