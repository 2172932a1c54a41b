/**
 * The dashboard's forecast of one utility from the park's history in InfluxDB: the internal
 * demand (what the plants consumed) and the park's balance (the sum of their net surpluses), per
 * hour, for the next day, each with the error it is known to make (a backtest over the last
 * days, beside the seasonal-naive forecast's for comparison).
 */
import type { InfluxDB } from 'influx';
import { EipError } from '../../core/errors.js';
import type { UtilityId } from '../../core/utilities.js';
import { backtest, holtWinters, seasonalNaive } from './forecast.js';

const HOUR_MS = 3_600_000;
const DAY = 24;
/** Days of history read; the backtest takes the most recent ones after two for warming up. */
const HISTORY_DAYS = 28;
const MAX_BACKTEST_DAYS = 7;

export interface SeriesForecast {
  /** The next 24 hours from the start of the current hour, in the utility's unit per hour. */
  readonly hourly: readonly { readonly at_ms: number; readonly value: number }[];
  /** Mean absolute error per hour in the backtest; null without enough history to test. */
  readonly error: { readonly holt_winters: number; readonly seasonal_naive: number } | null;
}

export interface UtilityForecast {
  readonly utility: UtilityId;
  readonly history_hours: number;
  readonly demand: SeriesForecast;
  readonly balance: SeriesForecast;
}

/** Hourly sums of a balance field for `utility` over the last HISTORY_DAYS, oldest first. */
async function hourly(
  influx: InfluxDB,
  field: 'consumption_units' | 'net_units',
  utility: UtilityId,
  untilMs: number,
): Promise<number[]> {
  const end = Math.floor(untilMs / HOUR_MS) * HOUR_MS;
  const start = end - HISTORY_DAYS * DAY * HOUR_MS;
  // Utility ids are a fixed enum (validated before here), never user text in the query.
  const rows = await influx.query<{ time: Date; total: number | null }>(
    `SELECT sum("${field}") AS total FROM "balance" WHERE "utility" = '${utility}' AND time >= ${start}ms AND time < ${end}ms GROUP BY time(1h) fill(0)`,
    { precision: 'ms' },
  );
  const series = rows.map((row) => row.total ?? 0);
  // Hours before the first point are not demand of zero but no data: they are dropped.
  const first = rows.findIndex((row) => row.total !== null && row.total !== 0);
  return first < 0 ? [] : series.slice(first);
}

function forecastOf(series: readonly number[], fromMs: number): SeriesForecast {
  if (series.length < DAY) {
    throw new EipError(
      'INVALID_ARGUMENT',
      `a forecast needs a day of history; InfluxDB holds ${series.length} hours`,
    );
  }
  const values = holtWinters.forecast(series, DAY, DAY);
  const days = Math.min(MAX_BACKTEST_DAYS, Math.floor(series.length / DAY) - 2);
  return {
    hourly: values.map((value, h) => ({ at_ms: fromMs + h * HOUR_MS, value })),
    error:
      days >= 1
        ? {
            holt_winters: backtest(holtWinters, series, DAY, days).mae,
            seasonal_naive: backtest(seasonalNaive, series, DAY, days).mae,
          }
        : null,
  };
}

export async function forecastUtility(
  influx: InfluxDB,
  utility: UtilityId,
  nowMs: number,
): Promise<UtilityForecast> {
  const [demand, balance] = await Promise.all([
    hourly(influx, 'consumption_units', utility, nowMs),
    hourly(influx, 'net_units', utility, nowMs),
  ]);
  const from = Math.floor(nowMs / HOUR_MS) * HOUR_MS;
  return {
    utility,
    history_hours: demand.length,
    demand: forecastOf(demand, from),
    balance: forecastOf(balance, from),
  };
}
