/**
 * The machine-readable report of a negotiation (`--json`). Quantities and prices are plain numbers
 * in the utility's units and tokens per unit (exact: they are whole thousandths); token amounts
 * are numbers of tokens, and the escrow is also given exactly in the token's base units.
 */
import type { PartyResult } from '../../core/negotiation/evaluation.js';
import type { Issue, Role } from '../../core/negotiation/issues.js';
import type { Move } from '../../core/negotiation/protocol.js';
import { concessionShape, type Psi } from '../../core/negotiation/strategy.js';
import { formatTokens, fromMilli, type Milli, tokenAmount } from '../../core/units.js';
import type { ScenarioParty, ScenarioResult } from './scenario.js';

const tokens = (baseUnits: bigint) => Number(formatTokens(baseUnits));

function psiJson(p: Psi) {
  return { ip: p.ip, rp: p.rp, dl: p.dl, cr: p.cr, shape: concessionShape(p) };
}

function agentJson(party: ScenarioParty) {
  return {
    name: party.name,
    psi: { price: psiJson(party.psi.price), quantity: psiJson(party.psi.quantity) },
    preferences: {
      quantity: fromMilli(party.preferences.quantity),
      deadline_step: Number.isFinite(party.preferences.deadlineStep)
        ? party.preferences.deadlineStep
        : null,
    },
    after_deadline: party.afterDeadline,
  };
}

function gainJson(party: ScenarioParty, result: PartyResult, providerPrice: Milli) {
  return {
    name: party.name,
    traded: fromMilli(result.traded),
    tokens: tokens(result.tokens),
    /** What the same quantity would have fetched (seller) or cost (buyer) with the provider. */
    provider_tokens: tokens(tokenAmount(result.traded, providerPrice)),
    gain: tokens(result.gain),
    gain_per_unit: fromMilli(result.gainPerUnit),
    [result.role === 'seller' ? 'surplus_left' : 'deficit_left']: fromMilli(result.remaining),
    steps_to_deadline: result.stepsToDeadline,
    satisfaction: Number(result.satisfaction.toFixed(4)),
  };
}

function moveJson(move: Move) {
  return {
    round: move.round,
    by: move.by,
    kind: move.kind,
    price: fromMilli(move.price),
    quantity: fromMilli(move.quantity),
    accepted: move.accepted,
  };
}

export function reportJson({ scenario, outcome, evaluation }: ScenarioResult) {
  const { utility } = scenario;
  const settledRound = (issue: Issue) => outcome.settled[issue]?.round ?? null;
  const party = (role: Role) => scenario[role];
  return {
    title: scenario.title,
    utility: {
      id: utility.id,
      unit: utility.unit,
      provider_sells_at: fromMilli(utility.provider_sells_at),
      provider_buys_at: fromMilli(utility.provider_buys_at),
      price_tick: fromMilli(scenario.ticks.price),
      quantity_tick: fromMilli(scenario.ticks.quantity),
    },
    opener: scenario.opener,
    agents: { seller: agentJson(party('seller')), buyer: agentJson(party('buyer')) },
    agreement:
      outcome.kind === 'agreement'
        ? {
            round: outcome.round,
            price: fromMilli(outcome.price),
            quantity: fromMilli(outcome.quantity),
            price_round: settledRound('price'),
            quantity_round: settledRound('quantity'),
            escrow: tokens(evaluation.escrow),
            escrow_base_units: evaluation.escrow.toString(),
          }
        : null,
    outcome: {
      kind: outcome.kind,
      round: outcome.round,
      reason: outcome.kind === 'no-agreement' ? outcome.reason : null,
      broken_off_by: outcome.kind === 'no-agreement' ? outcome.brokenOffBy : null,
      price_round: settledRound('price'),
      quantity_round: settledRound('quantity'),
    },
    gains: {
      seller: gainJson(party('seller'), evaluation.seller, utility.provider_buys_at),
      buyer: gainJson(party('buyer'), evaluation.buyer, utility.provider_sells_at),
    },
    transcript: outcome.transcript.map(moveJson),
  };
}
