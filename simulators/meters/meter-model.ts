/**
 * A simulated meter: the registers a real meter of a profile would hold. The meter's load follows
 * a curve over the day (by default a constant typical load): its rate (active power, gas flow or
 * thermal power) and what scales with it are read off the curve, and its counters (energy, gas
 * volume, heat) are the curve's exact integral since the injected clock started, so successive
 * reads look like a meter under load and always agree with each other.
 */
import { encodeQuantity } from '../../core/meters/decode.js';
import {
  type Measure,
  type Profile,
  type Quantity,
  quantities,
} from '../../core/meters/profile.js';
import { Curve, type Part } from './curve.js';

type Utility = Profile['utility'];

/**
 * Typical figures, each in the unit every shipped profile uses for its measure: a small plant's
 * supply (230 V, 10 A and 2.3 kW per phase), a digester's biogas line (m3, m3/h, bar absolute,
 * °C) and a heating loop (70/50 °C, kW, kWh). Counters start at their figure.
 */
export const TYPICAL: Readonly<Record<Measure, number>> = {
  voltage: 230,
  current: 10,
  active_power: 2300,
  apparent_power: 2350,
  reactive_power: 480,
  power_factor: 0.98,
  frequency: 50,
  energy_import: 1000,
  energy_export: 0,
  energy_total: 1000,
  volume: 1000,
  volume_flow: 40,
  // Biogas lines run a few tens of mbar above the atmosphere.
  pressure: 1.05,
  // Mesophilic digesters run at 35-40 °C.
  temperature: 37,
  temperature_forward: 70,
  temperature_return: 50,
  thermal_power: 40,
  heat_energy: 1000,
};

/** Heat carried by 1 m3 of water per kelvin: 4.187 kJ/(kg K) x 1000 kg / 3600 s/h. */
const WATER_KWH_PER_M3_K = 1.163;

/** What a curve drives for each utility: the meter's rate, in the unit of its measure. */
export const RATE_MEASURE: Readonly<Record<Utility, Measure>> = {
  electricity: 'active_power',
  biogas: 'volume_flow',
  heat: 'thermal_power',
};

/**
 * The measures that follow the load, per utility, with their value at the typical load (per
 * phase for electricity). A heat meter's flow is what carries its power across the typical
 * forward/return difference.
 */
const AT_TYPICAL_LOAD: Readonly<Record<Utility, Partial<Record<Measure, number>>>> = {
  electricity: {
    active_power: TYPICAL.active_power,
    apparent_power: TYPICAL.apparent_power,
    reactive_power: TYPICAL.reactive_power,
    current: TYPICAL.current,
  },
  biogas: { volume_flow: TYPICAL.volume_flow },
  heat: {
    thermal_power: TYPICAL.thermal_power,
    volume_flow:
      TYPICAL.thermal_power /
      (WATER_KWH_PER_M3_K * (TYPICAL.temperature_forward - TYPICAL.temperature_return)),
  },
};

/** Measures whose meter total is the sum of the phases. */
const SUMMED_OVER_PHASES: ReadonlySet<Measure> = new Set([
  'active_power',
  'apparent_power',
  'reactive_power',
]);

/** Measures that show a magnitude, whatever the direction of the load. */
const MAGNITUDES: ReadonlySet<Measure> = new Set(['current', 'apparent_power']);

/**
 * Counters: the measure whose integral they add up, which part of it (meters count import and
 * export apart, and a forward volume or heat register ignores reverse flow), and the counter's
 * units per rate-hour (W h to kWh).
 */
const COUNTERS: Partial<
  Record<Measure, { readonly of: Measure; readonly part: Part; readonly perRateHour: number }>
> = {
  energy_import: { of: 'active_power', part: 'positive', perRateHour: 1 / 1000 },
  energy_export: { of: 'active_power', part: 'negative', perRateHour: 1 / 1000 },
  energy_total: { of: 'active_power', part: 'absolute', perRateHour: 1 / 1000 },
  volume: { of: 'volume_flow', part: 'positive', perRateHour: 1 },
  heat_energy: { of: 'thermal_power', part: 'positive', perRateHour: 1 },
};

/** Thrown for a read the real meter would refuse: Modbus exception 2 (illegal data address). */
export class IllegalAddress extends Error {
  readonly modbusErrorCode = 2;
}

export class MeterModel {
  private readonly quantities: readonly Quantity[];
  private readonly startedAt: number;
  private readonly phases: number;
  /** The meter's rate over the day, in the unit of its utility's rate measure. */
  private readonly curve: Curve;
  /** The rate at the typical load, which the load is a share of. */
  private readonly typicalRate: number;

  /** `curve` gives the meter's whole rate (all phases): W, m3/h or kW, after RATE_MEASURE. */
  constructor(
    private readonly profile: Profile,
    private readonly clock: () => number = Date.now,
    curve?: Curve,
  ) {
    this.quantities = quantities(profile);
    this.startedAt = clock();
    this.phases = this.quantities.some((q) => q.phase === 'L3') ? 3 : 1;
    this.typicalRate = this.meterWide(RATE_MEASURE[profile.utility]) ?? 0;
    this.curve = curve ?? Curve.constant(this.typicalRate);
  }

  /** The value a quantity shows now, in its unit. */
  value(quantity: Quantity): number {
    const measure = quantity.measures;
    const counter = COUNTERS[measure];
    if (counter) {
      const loadHours =
        this.curve.integral(this.startedAt, this.clock(), counter.part) / this.typicalRate;
      return TYPICAL[measure] + (this.meterWide(counter.of) ?? 0) * loadHours * counter.perRateHour;
    }
    const atTypicalLoad = this.meterWide(measure);
    if (atTypicalLoad === undefined) return TYPICAL[measure];
    const load = this.curve.rateAt(this.clock()) / this.typicalRate;
    const share = quantity.phase !== 'total' && SUMMED_OVER_PHASES.has(measure) ? this.phases : 1;
    return (atTypicalLoad / share) * (MAGNITUDES.has(measure) ? Math.abs(load) : load);
  }

  /** Registers `start`..`start + count - 1` of `space`, as the meter would answer. */
  registers(space: 'holding' | 'input', start: number, count: number): number[] {
    const words = new Array<number | undefined>(count).fill(undefined);
    for (const quantity of this.quantities) {
      if (quantity.function !== space) continue;
      encodeQuantity(quantity, this.value(quantity)).forEach((word, i) => {
        const at = quantity.register + i - start;
        if (at >= 0 && at < count) words[at] = word;
      });
    }
    // Meters that allow gaps answer 0 for unmapped registers; the others refuse the read.
    if (this.profile.max_gap_registers === 0 && words.includes(undefined)) {
      throw new IllegalAddress(`no register mapped in ${space} ${start}..${start + count - 1}`);
    }
    return words.map((word) => word ?? 0);
  }

  /** A load-following measure's meter-wide value at the typical load; undefined if it is fixed. */
  private meterWide(measure: Measure): number | undefined {
    const perPhase = AT_TYPICAL_LOAD[this.profile.utility][measure];
    if (perPhase === undefined) return undefined;
    return SUMMED_OVER_PHASES.has(measure) ? perPhase * this.phases : perPhase;
  }
}
