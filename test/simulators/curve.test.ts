/**
 * Load curves: parsing with errors that name the bad point, linear interpolation wrapping at
 * midnight, exact integration (also across midnight and by part), and meters whose counters are
 * the curve's integral.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isEipError } from '../../core/errors.js';
import { decodeQuantity } from '../../core/meters/decode.js';
import { planReads } from '../../core/meters/plan.js';
import { type Profile, quantities } from '../../core/meters/profile.js';
import { ModbusReader } from '../../edge/meters/modbus-client.js';
import { loadProfile } from '../../edge/meters/profiles.js';
import { readProfile } from '../../edge/meters/reader.js';
import { MS_PER_DAY, type Part, parseCurve } from '../../simulators/meters/curve.js';
import { MeterModel, TYPICAL } from '../../simulators/meters/meter-model.js';
import { startMeterServer } from '../../simulators/meters/meter-server.js';
import { openPtyPair, RUN_PTY_SUITES } from '../support/pty-pair.js';

const HOUR = 3_600_000;
/** Midnight UTC, some day: curves run on UTC times of day. */
const MIDNIGHT = Date.UTC(2026, 5, 1);
const at = (hours: number) => MIDNIGHT + hours * HOUR;

/** The rates of curve `spec` at each of `hours` after midnight. */
function ratesAt(spec: string, hours: readonly number[]): number[] {
  const curve = parseCurve(spec);
  return hours.map((h) => curve.rateAt(at(h)));
}

/** The message of the error `parseCurve(spec, '--curve')` throws. */
function parseError(spec: string): string {
  try {
    parseCurve(spec, '--curve');
  } catch (error) {
    expect(isEipError(error, 'INVALID_ARGUMENT')).toBe(true);
    return (error as Error).message;
  }
  throw new Error(`"${spec}" parsed`);
}

describe('parseCurve', () => {
  it('takes a constant rate', () => {
    const curve = parseCurve('2300');
    expect(curve.rateAt(at(3.7))).toBe(2300);
    expect(curve.integral(at(1), at(3))).toBe(4600);
  });

  it('takes points in increasing time, around blanks', () => {
    expect(ratesAt(' 06:00=0, 12:00=2300 ,18:00=0 ', [12, 9, 21])).toEqual([2300, 1150, 0]);
  });

  it('takes one point as a constant, and negative and decimal rates', () => {
    expect(parseCurve('12:00=5').rateAt(at(2))).toBe(5);
    expect(parseCurve('00:00=-1.5,12:00=2.5').rateAt(at(6))).toBe(0.5);
  });

  it('names the bad point and what is wrong with it', () => {
    expect(parseError('06:00=0,25:00=5')).toBe(
      '--curve: point 2 "25:00=5" 25:00 is not a time of day (00:00 to 23:59) (give a rate like 2300, or HH:MM=value,... such as 06:00=0,12:00=2300,18:00=0)',
    );
    expect(parseError('06:61=5')).toMatch(/point 1 "06:61=5" 06:61 is not a time of day/);
    expect(parseError('06:00=abc')).toMatch(/point 1 "06:00=abc" "abc" is not a decimal number/);
    expect(parseError('06:00=1e3')).toMatch(/"1e3" is not a decimal number/);
    expect(parseError('6:00=1')).toMatch(/point 1 "6:00=1" is not HH:MM=value/);
    expect(parseError('')).toMatch(/^--curve: point 1 "" is not HH:MM=value/);
    expect(parseError('06:00=1,,12:00=2')).toMatch(/point 2 "" is not HH:MM=value/);
    expect(parseError('12:00=1,06:00=2')).toMatch(
      /point 2 "06:00=2" comes after 12:00: times must increase through the day/,
    );
    expect(parseError('12:00=1,12:00=2')).toMatch(/point 2 "12:00=2" comes after 12:00/);
  });

  it('lists every bad point at once', () => {
    expect(parseError('25:00=1,06:00=x')).toMatch(
      /point 1 "25:00=1" 25:00 is not a time of day .*; point 2 "06:00=x" "x" is not a decimal/,
    );
  });
});

describe('interpolation', () => {
  it('is linear between points and wraps from the last point to the first past midnight', () => {
    expect(ratesAt('06:00=10,18:00=30', [6, 12])).toEqual([10, 20]);
    // 18:00 (30) to 06:00 the next day (10): midnight lies halfway, on any day.
    expect(ratesAt('06:00=10,18:00=30', [0, 3, 21, 24 + 21, -3])).toEqual([20, 15, 25, 25, 25]);
  });

  it('keeps a point at midnight', () => {
    expect(ratesAt('00:00=0,12:00=24', [6, 18, 24])).toEqual([12, 12, 0]);
  });
});

describe('integration', () => {
  it('adds up trapezoids between points, day after day', () => {
    const curve = parseCurve('06:00=0,12:00=2300,18:00=0');
    // One triangle a day: 12 h x 2300 W / 2 = 13800 Wh.
    expect(curve.integral(at(0), at(24))).toBe(13800);
    expect(curve.integral(at(0), at(72))).toBe(3 * 13800);
    expect(curve.integral(at(6), at(9))).toBe((3 * 1150) / 2);
    expect(curve.integral(at(9), at(6))).toBe((-3 * 1150) / 2);
  });

  it('is exact across midnight', () => {
    const curve = parseCurve('06:00=10,18:00=30');
    expect(curve.integral(at(18), at(30))).toBe((12 * (30 + 10)) / 2);
    // 22:00 (23.33) to 02:00 (16.67): 4 h at an average of 20.
    expect(curve.integral(at(22), at(26))).toBeCloseTo(80, 9);
  });

  it('counts the positive and negative parts apart, split where the rate crosses zero', () => {
    // -10 at midnight, +10 at noon: positive from 06:00 to 18:00, negative the rest.
    const curve = parseCurve('00:00=-10,12:00=10');
    expect(curve.integral(at(0), at(24), 'positive')).toBe(60);
    expect(curve.integral(at(0), at(24), 'negative')).toBe(60);
    expect(curve.integral(at(0), at(24), 'absolute')).toBe(120);
    expect(curve.integral(at(0), at(24))).toBe(0);
    expect(curve.integral(at(0), at(9), 'positive')).toBe((3 * 5) / 2);
  });

  const curves = fc
    .uniqueArray(
      fc.record({
        minute: fc.integer({ min: 0, max: 1439 }),
        rate: fc.integer({ min: -5000, max: 5000 }),
      }),
      { minLength: 1, maxLength: 8, selector: (point) => point.minute },
    )
    .map((points) =>
      points
        .sort((a, b) => a.minute - b.minute)
        .map(({ minute, rate }) => {
          const pad = (n: number) => String(n).padStart(2, '0');
          return `${pad(Math.floor(minute / 60))}:${pad(minute % 60)}=${rate}`;
        })
        .join(','),
    );
  const time = fc.integer({ min: MIDNIGHT - 3 * MS_PER_DAY, max: MIDNIGHT + 3 * MS_PER_DAY });
  const part = fc.constantFrom<Part>('signed', 'positive', 'negative', 'absolute');

  it('is additive: the integral over [a, c] is [a, b] plus [b, c]', () => {
    fc.assert(
      fc.property(curves, time, time, time, part, (spec, a, b, c, which) => {
        const curve = parseCurve(spec);
        const whole = curve.integral(a, c, which);
        const split = curve.integral(a, b, which) + curve.integral(b, c, which);
        expect(split).toBeCloseTo(whole, 6);
      }),
    );
  });

  it('repeats every day, and its parts add up to the whole', () => {
    fc.assert(
      fc.property(curves, time, (spec, a) => {
        const curve = parseCurve(spec);
        const day = curve.integral(MIDNIGHT, MIDNIGHT + MS_PER_DAY);
        expect(curve.integral(a, a + MS_PER_DAY)).toBeCloseTo(day, 6);
        const positive = curve.integral(a, a + HOUR, 'positive');
        const negative = curve.integral(a, a + HOUR, 'negative');
        expect(positive - negative).toBeCloseTo(curve.integral(a, a + HOUR), 6);
        expect(positive + negative).toBeCloseTo(curve.integral(a, a + HOUR, 'absolute'), 6);
      }),
    );
  });

  it('agrees with the rate: a short interval integrates to about rate x time', () => {
    fc.assert(
      fc.property(curves, time, (spec, a) => {
        const curve = parseCurve(spec);
        // One second: the rate moves by at most 10000 / 60 per second between points a minute apart.
        const mean = curve.integral(a, a + 1000) / (1000 / HOUR);
        expect(Math.abs(mean - curve.rateAt(a + 500))).toBeLessThan(100);
      }),
    );
  });
});

describe('a meter on a curve', () => {
  /** The meter's value of quantity `name` at `hours` after midnight, read through its registers. */
  function readAt(profile: Profile, spec: string, hours: number, name: string): number {
    let now = MIDNIGHT;
    const meter = new MeterModel(profile, () => now, parseCurve(spec));
    now = at(hours);
    const all = quantities(profile);
    const request = planReads(
      all,
      profile.max_registers_per_request,
      profile.max_gap_registers,
    ).find((r) => r.quantities.some((q) => q.name === name));
    const quantity = all.find((q) => q.name === name);
    if (!request || !quantity) throw new Error(`${name} is not read`);
    const registers = meter.registers(request.function, request.start, request.count);
    return decodeQuantity(quantity, registers, request.start);
  }

  it('biogas: the volume counter after N hours is the flow curve integral', () => {
    const gas = loadProfile('suto-s430');
    const spec = '06:00=0,12:00=60,18:00=0';
    const curve = parseCurve(spec);
    for (const hours of [0, 9, 13, 24, 30, 24 * 7]) {
      expect(readAt(gas, spec, hours, 'consumption'), `${hours} h`).toBe(
        // The register holds whole m3.
        Math.round(TYPICAL.volume + curve.integral(at(0), at(hours))),
      );
    }
    expect(readAt(gas, spec, 24, 'consumption')).toBe(1000 + 360);
    expect(readAt(gas, spec, 9, 'flow')).toBe(30);
    // Pressure and temperature do not follow the load.
    expect(readAt(gas, spec, 9, 'pressure')).toBeCloseTo(TYPICAL.pressure, 6);
  });

  it('electricity: consumption counts as import, production as export', () => {
    const sdm630 = loadProfile('eastron-sdm630');
    // Producing from 18:00 to 06:00, consuming from 06:00 to 18:00: 18 kWh each a day.
    const spec = '00:00=-3000,12:00=3000';
    expect(readAt(sdm630, spec, 24, 'import_energy')).toBeCloseTo(1000 + 18, 3);
    expect(readAt(sdm630, spec, 24, 'export_energy')).toBeCloseTo(18, 3);
    expect(readAt(sdm630, spec, 24, 'total_energy')).toBeCloseTo(1000 + 36, 3);
    // The curve is the meter's whole power: a third on each phase.
    expect(readAt(sdm630, spec, 12, 'active_power_l1')).toBeCloseTo(1000, 3);
    expect(readAt(sdm630, spec, 12, 'active_power')).toBeCloseTo(3000, 3);
    expect(readAt(sdm630, spec, 0, 'active_power')).toBeCloseTo(-3000, 3);
    // Current follows the load's magnitude: 3000 W is 3000 / 6900 of the typical load.
    expect(readAt(sdm630, spec, 0, 'current_l2')).toBeCloseTo((10 * 3000) / 6900, 3);
  });

  it('heat: heat and volume are the integral of the thermal power and of the flow it needs', () => {
    const calec = loadProfile('aquametro-calec-st');
    const spec = '20';
    expect(readAt(calec, spec, 10, 'heat_energy')).toBeCloseTo(1000 + 200, 2);
    // 20 kW across 70/50 °C takes 20 / (1.163 x 20) m3/h of water.
    const flow = 20 / (1.163 * 20);
    expect(readAt(calec, spec, 10, 'flow')).toBeCloseTo(flow, 5);
    expect(readAt(calec, spec, 10, 'volume')).toBeCloseTo(1000 + 10 * flow, 3);
    expect(readAt(calec, spec, 10, 'temperature_hot')).toBe(70);
  });

  it('leaves the counters where they started on a zero curve', () => {
    const meter = new MeterModel(loadProfile('suto-s430'), () => at(10), parseCurve('0'));
    const consumption = quantities(loadProfile('suto-s430')).find((q) => q.name === 'consumption');
    if (!consumption) throw new Error('no consumption');
    expect(meter.value(consumption)).toBe(TYPICAL.volume);
  });

  it.skipIf(!RUN_PTY_SUITES)('shapes an RTU meter too, read over a pseudo-terminal', async () => {
    const pty = await openPtyPair();
    const profile = loadProfile('suto-s430');
    let now = at(0); // the meter starts at midnight and is read at 09:00
    const server = await startMeterServer({
      profile,
      link: { kind: 'rtu', path: pty.a, baudRate: 19200 },
      curve: parseCurve('10'),
      clock: () => now,
    });
    now = at(9);
    const reader = await ModbusReader.connect({
      link: { kind: 'rtu', path: pty.b, baudRate: 19200 },
      unit: 1,
    });
    try {
      const values = Object.fromEntries(
        (await readProfile(reader, profile)).map((r) => [r.quantity.name, r.value]),
      );
      expect(values.flow).toBeCloseTo(10, 4);
      expect(values.consumption).toBeCloseTo(readAt(profile, '10', 9, 'consumption'), 2);
    } finally {
      await reader.close();
      await server.close();
      await pty.close();
    }
  });
});
