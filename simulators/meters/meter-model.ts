/**
 * A simulated meter: the registers a real meter of a profile would hold. Instantaneous values sit
 * at typical figures; energy counters grow with the active power as the injected clock runs, so
 * successive reads look like a meter under load.
 */
import { encodeQuantity } from '../../core/meters/decode.js';
import {
  type MEASURES,
  type Profile,
  type Quantity,
  quantities,
} from '../../core/meters/profile.js';

type Measure = (typeof MEASURES)[number];

/** Typical figures of a small plant's supply: 230 V, 10 A per phase, 2.3 kW per phase. */
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
};

/** Thrown for a read the real meter would refuse: Modbus exception 2 (illegal data address). */
export class IllegalAddress extends Error {
  readonly modbusErrorCode = 2;
}

export class MeterModel {
  private readonly quantities: readonly Quantity[];
  private readonly startedAt: number;

  constructor(
    private readonly profile: Profile,
    private readonly clock: () => number = Date.now,
  ) {
    this.quantities = quantities(profile);
    this.startedAt = clock();
  }

  /** The value a quantity shows now, in its unit. */
  value(quantity: Quantity): number {
    const phases = quantity.phase === 'total' ? this.phaseCount() : 1;
    const typical = TYPICAL[quantity.measures];
    switch (quantity.measures) {
      case 'active_power':
      case 'apparent_power':
      case 'reactive_power':
        return typical * phases;
      case 'energy_import':
      case 'energy_total': {
        const hours = (this.clock() - this.startedAt) / 3_600_000;
        return typical + (TYPICAL.active_power * this.phaseCount() * hours) / 1000;
      }
      default:
        return typical;
    }
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

  private phaseCount(): number {
    return this.quantities.some((q) => q.phase === 'L3') ? 3 : 1;
  }
}
