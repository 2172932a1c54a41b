/** Reports of how negotiations ended, as edge agents send them to the gateway, for the tests. */

import { type Payload, TOPICS } from '../../core/messages/topics.js';
import { opponentOf } from '../../core/negotiation/issues.js';

export type OutcomeReport = Payload<'negotiationOutcome'>;

/** The id of negotiation `n`: 32 bytes, as the agents make them. */
export const negotiationId = (n: number) => `0x${n.toString(16).padStart(64, '0')}`;

/**
 * One party's report, valid by the catalogue's schema (it is parsed with it): plant-a, which
 * requested, sold biogas to plant-b and agreed in 10 rounds, ending now, unless `fields` say
 * otherwise.
 */
export function outcomeReport(fields: Partial<OutcomeReport> = {}): OutcomeReport {
  const endedAt = fields.ended_at_ms ?? Date.now();
  return TOPICS.negotiationOutcome.schema.parse({
    prosumer: 'plant-a',
    negotiation_id: negotiationId(1),
    utility: 'biogas',
    role: 'seller',
    requester: true,
    counterpart: 'plant-b',
    outcome: 'agreed',
    reason: null,
    ended_by: null,
    rounds: 10,
    started_at_ms: endedAt - 4_000,
    ended_at_ms: endedAt,
    ...fields,
  }) as OutcomeReport;
}

/** The counterpart's report of the same negotiation: the other side of `report`. */
export function counterpartReport(
  report: OutcomeReport,
  fields: Partial<OutcomeReport> = {},
): OutcomeReport {
  const flipped = { self: 'counterpart', counterpart: 'self' } as const;
  return outcomeReport({
    ...report,
    prosumer: report.counterpart ?? '',
    counterpart: report.prosumer,
    role: opponentOf(report.role),
    requester: !report.requester,
    ended_by: report.ended_by === null ? null : flipped[report.ended_by],
    ...fields,
  });
}

/** The fields of a report of a negotiation that broke off, by `by`, for `reason`. */
export const brokenOff = (
  by: 'self' | 'counterpart',
  reason: OutcomeReport['reason'] = 'deadline',
) => ({ outcome: 'no-agreement', reason, ended_by: by }) as const;
