/**
 * The dashboard's forecast against the seasonal-naive baseline, on the demo park's demand: each
 * meter's curve over 35 days of hourly steps, with 10% jitter per hour and a level drifting 2% a
 * day (seeded). Each of the last 14 days is forecast whole from the days before it; the table
 * gives the mean absolute error per hour of each method and their ratio, and the time one
 * Holt-Winters forecast takes (its weights are fitted on every call).
 */
import { textTable } from '../../core/text-table.js';
import { backtest, holtWinters, seasonalNaive } from '../../gateway/forecast/forecast.js';
import { demandSeries, NOISY_WEEKS } from '../../simulators/park/demand.js';
import { DEMO_PLANTS } from '../../simulators/park/demo-park.js';

const DAY = 24;
const UNIT: Record<string, string> = { biogas: 'm3', electricity: 'kWh', heat: 'kWh' };

export function forecastTable(): string {
  const rows = DEMO_PLANTS.flatMap((plant) =>
    plant.meters.map((meter) => {
      const series = demandSeries({ curve: meter.curve, ...NOISY_WEEKS });
      // Electricity curves are in W: per hour that is Wh; shown in kWh.
      const scale = meter.utility === 'electricity' ? 1000 : 1;
      const naive = backtest(seasonalNaive, series, DAY, 14).mae / scale;
      const ours = backtest(holtWinters, series, DAY, 14).mae / scale;
      const started = performance.now();
      for (let i = 0; i < 20; i++) holtWinters.forecast(series, DAY, DAY);
      const ms = (performance.now() - started) / 20;
      return [
        `${plant.id} ${meter.id} (${meter.utility})`,
        `${naive.toFixed(2)} ${UNIT[meter.utility]}`,
        `${ours.toFixed(2)} ${UNIT[meter.utility]}`,
        `${((ours / naive) * 100).toFixed(0)}%`,
        `${ms.toFixed(2)} ms`,
      ];
    }),
  );
  return textTable(
    ['demand of', 'seasonal naive MAE/h', 'Holt-Winters MAE/h', 'vs naive', 'per forecast'],
    rows,
    ['left', 'right', 'right', 'right', 'right'],
  );
}
