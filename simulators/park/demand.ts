/**
 * A plant's demand as the dashboard's forecast sees it: the energy or volume per step over many
 * days, from a meter curve of the demo park, with the noise real plants have. Each step's amount
 * is the curve's exact integral over it, scaled by two seeded random factors: a level that
 * wanders from day to day (production plans change) and a per-step jitter (batches start early
 * or late). Seeded, so a measurement can be repeated.
 */
import { MS_PER_DAY, parseCurve } from '../meters/curve.js';
import { normal, random } from '../random.js';

export interface DemandOptions {
  /** A curve as `eip-sim meter --curve` takes it: rates over the day. */
  readonly curve: string;
  readonly days: number;
  readonly stepsPerDay: number;
  /** Standard deviation of the per-step jitter, as a share of the amount (0.1: 10%). */
  readonly jitter: number;
  /** Standard deviation of the day-to-day change of the level, as a share. */
  readonly drift: number;
  readonly seed: number;
}

/**
 * The noise the forecast is measured against (tests and `npm run bench -- forecast`): five weeks
 * of hourly steps, 10% jitter per hour, the level drifting 2% a day.
 */
export const NOISY_WEEKS = {
  days: 35,
  stepsPerDay: 24,
  jitter: 0.1,
  drift: 0.02,
  seed: 7,
} as const;

/** The amount per step, in the curve's rate unit times hours (kWh from kW, m3 from m3/h). */
export function demandSeries(options: DemandOptions): number[] {
  const curve = parseCurve(options.curve);
  const uniform = random(options.seed);
  const stepMs = MS_PER_DAY / options.stepsPerDay;
  const series: number[] = [];
  let level = 1;
  for (let day = 0; day < options.days; day++) {
    level = Math.max(0.1, level * (1 + options.drift * normal(uniform)));
    for (let step = 0; step < options.stepsPerDay; step++) {
      const from = day * MS_PER_DAY + step * stepMs;
      // The integral is in rate-hours already (m3/h give m3, kW give kWh).
      const amount = Math.abs(curve.integral(from, from + stepMs));
      series.push(Math.max(0, amount * level * (1 + options.jitter * normal(uniform))));
    }
  }
  return series;
}
