/**
 * Forecasts of a park's demand and balance per utility, from its history in equal steps (hours,
 * say): pure functions, fed from InfluxDB by the dashboard.
 *
 * - `seasonalNaive`: tomorrow repeats today, step for step. The baseline every forecast must
 *   beat (Hyndman and Athanasopoulos, Forecasting: Principles and Practice, section 5.2).
 * - `holtWinters`: additive Holt-Winters without trend (level and one seasonal period), the
 *   smoothing weights chosen on the history by one-step-ahead error. Day-to-day noise is averaged
 *   out of the seasonal profile instead of being copied into tomorrow, which is where it beats
 *   the naive forecast on noisy plants.
 * - `backtest`: the error shown beside a forecast, measured the way it is used: for each of the
 *   last days, forecast the whole day from the history before it, and compare.
 */
import { EipError } from '../../core/errors.js';

export interface ForecastMethod {
  readonly name: string;
  /** The next `horizon` values after `history`, whose season is `period` steps long. */
  forecast(history: readonly number[], period: number, horizon: number): number[];
}

function check(history: readonly number[], period: number, horizon: number): void {
  if (!Number.isInteger(period) || period < 1 || !Number.isInteger(horizon) || horizon < 1) {
    throw new EipError(
      'INVALID_ARGUMENT',
      'the period and the horizon must be whole steps, 1 or more',
    );
  }
  if (history.length < period) {
    throw new EipError(
      'INVALID_ARGUMENT',
      `a forecast needs a whole season of history: ${period} steps, got ${history.length}`,
    );
  }
  if (!history.every(Number.isFinite)) {
    throw new EipError('INVALID_ARGUMENT', 'the history holds a value that is not a finite number');
  }
}

export const seasonalNaive: ForecastMethod = {
  name: 'seasonal naive',
  forecast(history, period, horizon) {
    check(history, period, horizon);
    const lastSeason = history.slice(history.length - period);
    return Array.from({ length: horizon }, (_, h) => lastSeason[h % period] as number);
  },
};

interface Fit {
  readonly level: number;
  readonly season: number[];
  /** Mean absolute one-step-ahead error over the history after the first season. */
  readonly error: number;
}

/** Runs the smoothing over `history` with weights alpha (level) and gamma (season). */
function smooth(history: readonly number[], period: number, alpha: number, gamma: number): Fit {
  const first = history.slice(0, period);
  let level = first.reduce((sum, y) => sum + y, 0) / period;
  const season = first.map((y) => y - level);
  let absError = 0;
  for (let t = period; t < history.length; t++) {
    const y = history[t] as number;
    const slot = t % period;
    const seasonal = season[slot] as number;
    absError += Math.abs(y - (level + seasonal));
    const previousLevel = level;
    level = alpha * (y - seasonal) + (1 - alpha) * previousLevel;
    season[slot] = gamma * (y - level) + (1 - gamma) * seasonal;
  }
  const steps = history.length - period;
  return { level, season, error: steps > 0 ? absError / steps : Number.POSITIVE_INFINITY };
}

/** The weights tried: coarse, since the error surface is flat near its minimum. */
const WEIGHTS = [0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.8];

export const holtWinters: ForecastMethod = {
  name: 'Holt-Winters (additive, no trend)',
  forecast(history, period, horizon) {
    check(history, period, horizon);
    let best: Fit | undefined;
    for (const alpha of WEIGHTS) {
      for (const gamma of WEIGHTS) {
        const fit = smooth(history, period, alpha, gamma);
        if (!best || fit.error < best.error) best = fit;
      }
    }
    const fit = best as Fit;
    const next = history.length;
    return Array.from(
      { length: horizon },
      (_, h) => fit.level + (fit.season[(next + h) % period] as number),
    );
  },
};

export interface Backtest {
  readonly method: string;
  /** Mean absolute error per step over the days tested, in the series' unit. */
  readonly mae: number;
  readonly days: number;
}

/**
 * For each of the last `days` seasons, forecasts it from everything before it and measures the
 * mean absolute error. At least two seasons of history must precede the first tested one.
 */
export function backtest(
  method: ForecastMethod,
  series: readonly number[],
  period: number,
  days: number,
): Backtest {
  const firstTested = series.length - days * period;
  if (days < 1 || firstTested < 2 * period) {
    throw new EipError(
      'INVALID_ARGUMENT',
      `a backtest of ${days} seasons needs ${(days + 2) * period} steps of history, got ${series.length}`,
    );
  }
  let absError = 0;
  for (let day = 0; day < days; day++) {
    const start = firstTested + day * period;
    const predicted = method.forecast(series.slice(0, start), period, period);
    for (let h = 0; h < period; h++) {
      absError += Math.abs((series[start + h] as number) - (predicted[h] as number));
    }
  }
  return { method: method.name, mae: absError / (days * period), days };
}
