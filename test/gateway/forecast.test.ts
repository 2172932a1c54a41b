/**
 * The dashboard's forecasts: exact on a clean daily pattern, and on the demo park's noisy demand
 * (seeded) Holt-Winters beats the seasonal-naive forecast in a backtest, as the issue requires.
 */
import { describe, expect, it } from 'vitest';
import { backtest, holtWinters, seasonalNaive } from '../../gateway/forecast/forecast.js';
import { demandSeries, NOISY_WEEKS } from '../../simulators/park/demand.js';
import { DEMO_PLANTS } from '../../simulators/park/demo-park.js';

const DAY = 24;
const clean = Array.from(
  { length: 5 * DAY },
  (_, t) => 100 + 40 * Math.sin((2 * Math.PI * t) / DAY),
);

describe('forecasts', () => {
  it('repeat a clean daily pattern, both of them', () => {
    const next = clean.slice(0, DAY);
    for (const method of [seasonalNaive, holtWinters]) {
      method.forecast(clean, DAY, DAY).forEach((v, h) => {
        expect(v, method.name).toBeCloseTo(next[h] as number, 6);
      });
    }
  });

  it("beat the seasonal-naive forecast on every demo plant's noisy demand", () => {
    for (const meter of DEMO_PLANTS.flatMap((p) => p.meters)) {
      const series = demandSeries({ curve: meter.curve, ...NOISY_WEEKS });
      const naive = backtest(seasonalNaive, series, DAY, 14);
      const ours = backtest(holtWinters, series, DAY, 14);
      expect(ours.mae, meter.id).toBeLessThan(naive.mae);
    }
  });

  it('refuses what it cannot forecast, saying why', () => {
    expect(() => seasonalNaive.forecast([1, 2], DAY, 1)).toThrow(/a whole season of history: 24/);
    expect(() => holtWinters.forecast([...clean.slice(0, DAY - 1), Number.NaN], DAY, 1)).toThrow(
      /not a finite number/,
    );
    expect(() => backtest(holtWinters, clean, DAY, 4)).toThrow(/needs 144 steps/);
  });
});
