/**
 * The forecast read from a real InfluxDB: four days of hourly balances of two plants written by
 * the gateway's own writer, then tomorrow's park-wide demand and balance per hour, with the
 * backtest errors of both methods.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InfluxDB } from 'influx';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../core/logger.js';
import { milli } from '../../core/units.js';
import { forecastUtility } from '../../gateway/forecast/history.js';
import { InfluxWriter } from '../../gateway/timeseries/writer.js';
import { type Influxd, RUN_INFLUX_SUITES, startInfluxd } from '../support/influxd.js';

const HOUR = 3_600_000;
const NOW = Date.UTC(2026, 10, 25, 12, 30);

describe.runIf(RUN_INFLUX_SUITES)('the forecast from InfluxDB', () => {
  let influxd: Influxd;
  let dir: string;
  beforeAll(async () => {
    influxd = await startInfluxd();
    dir = mkdtempSync(join(tmpdir(), 'eip-forecast-'));
    const writer = await InfluxWriter.open({
      url: influxd.url,
      database: 'eip',
      spoolDir: dir,
      logger: silentLogger,
    });
    const start = Math.floor(NOW / HOUR) * HOUR - 4 * 24 * HOUR;
    for (let h = 0; h < 4 * 24; h++) {
      const hourOfDay = new Date(start + h * HOUR).getUTCHours();
      for (const [prosumer, base] of [
        ['food-factory', 60],
        ['brewery', 20],
      ] as const) {
        const consumption = base * (hourOfDay >= 8 && hourOfDay < 18 ? 2 : 1);
        writer.writeBalance({
          prosumer,
          utility: 'biogas',
          step: h,
          at_ms: start + h * HOUR + 60_000,
          production_milli: milli(0),
          consumption_milli: milli(consumption * 1000),
          storage_level_milli: milli(0),
          storage_capacity_milli: milli(0),
          net_milli: -consumption * 1000,
        });
      }
    }
    await writer.close();
  }, 60_000);
  afterAll(async () => {
    await influxd?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("forecasts tomorrow's park-wide demand and balance per hour, with the errors", async () => {
    const forecast = await forecastUtility(new InfluxDB(`${influxd.url}/eip`), 'biogas', NOW);
    expect(forecast.history_hours).toBe(96);
    expect(forecast.demand.hourly).toHaveLength(24);
    expect(forecast.demand.hourly[0]?.at_ms).toBe(Math.floor(NOW / HOUR) * HOUR);
    // The pattern repeats exactly: 13:00 is a working hour (160 m3), 20:00 is not (80 m3).
    expect(forecast.demand.hourly[0]?.value).toBeCloseTo(160, 3);
    expect(forecast.demand.hourly[7]?.value).toBeCloseTo(80, 3);
    expect(forecast.balance.hourly[7]?.value).toBeCloseTo(-80, 3);
    expect(forecast.demand.error?.holt_winters).toBeCloseTo(0, 3);
    expect(forecast.demand.error?.seasonal_naive).toBeCloseTo(0, 3);
  });

  it('says how much history it lacks', async () => {
    await expect(forecastUtility(new InfluxDB(`${influxd.url}/eip`), 'heat', NOW)).rejects.toThrow(
      /needs a day of history; InfluxDB holds 0 hours/,
    );
  });
});
