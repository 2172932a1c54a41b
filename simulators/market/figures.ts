/**
 * The evaluation's figures as people read them, the same in the terminal (`eip-sim evaluate`)
 * and in the HTML report: the park's table per policy, and whether the learned policy met its
 * goals.
 */
import type { Evaluation } from './evaluate.js';

export const tokens = (value: number) => Math.round(value).toLocaleString('en-US');
export const share = (value: number | null) =>
  value === null ? '-' : `${(value * 100).toFixed(1)} %`;
const fixed3 = (value: number | undefined) => (value === undefined ? '-' : value.toFixed(3));

/** The park's figures, one row per policy, over all the days. */
export function parkTable(e: Evaluation): { head: string[]; rows: string[][] } {
  return {
    head: [
      'policy',
      'profit vs provider',
      'agreements',
      'agreement rate',
      'unanswered',
      'rounds',
      'Pareto distance',
      'Nash product',
      'fairness',
      'days with a loss',
      'worst loss',
    ],
    rows: e.policies.map((p) => [
      p.policy,
      tokens(p.park.profitVsProvider),
      tokens(p.park.agreements),
      share(p.park.agreementRate),
      tokens(p.park.unanswered),
      p.park.meanRounds === null ? '-' : p.park.meanRounds.toFixed(1),
      fixed3(p.park.quality?.paretoDistance),
      fixed3(p.park.quality?.nashProduct),
      fixed3(p.park.quality?.fairness),
      String(p.individuallyRational.daysWithLoss),
      tokens(p.individuallyRational.worstLoss),
    ]),
  };
}

/** Issue 7's goals for the learned policy; null when it was not evaluated. */
export function goals(evaluation: Evaluation) {
  const learned = evaluation.policies.find((p) => p.policy === 'learned');
  if (!learned) return null;
  const baselines = evaluation.policies.filter((p) => p.policy !== 'learned');
  return {
    beatsEveryBaseline: baselines.every(
      (b) => learned.park.profitVsProvider > b.park.profitVsProvider,
    ),
    noProsumerWorseThanProviderAlone: learned.individuallyRational.daysWithLoss === 0,
  };
}

/** The goals in words, or why there are none. */
export function verdict(evaluation: Evaluation): readonly string[] {
  const g = goals(evaluation);
  if (g === null) return ['No --policy: the learned policy is not among them.'];
  return [
    `The learned policy beats every baseline on park profit: ${g.beatsEveryBaseline ? 'yes' : 'NO'}.`,
    `No prosumer did worse than with the provider alone on any day: ${g.noProsumerWorseThanProviderAlone ? 'yes' : 'NO'}.`,
  ];
}
