/**
 * Meter profiles are data: one YAML file per meter model in hardware/meters, naming for each
 * quantity the register, the Modbus function that reads it, its encoding, scale and unit, and the
 * datasheet it came from. This module is the schema; edge/meters/profiles.ts loads the files.
 */
import { z } from 'zod';

export const ENCODINGS = ['int16', 'uint16', 'int32', 'uint32', 'float32'] as const;
export type Encoding = (typeof ENCODINGS)[number];

/** Registers per encoding: 16-bit values take one, 32-bit values two. */
export const REGISTERS: Readonly<Record<Encoding, 1 | 2>> = {
  int16: 1,
  uint16: 1,
  int32: 2,
  uint32: 2,
  float32: 2,
};

/**
 * What a quantity measures, so the agent can find "the import energy" of any meter: the
 * electricity quantities, then gas and heat (volume and its flow, line pressure and temperature,
 * a heat meter's forward and return temperatures, thermal power and the heat it has counted).
 */
export const MEASURES = [
  'voltage',
  'current',
  'active_power',
  'apparent_power',
  'reactive_power',
  'power_factor',
  'frequency',
  'energy_import',
  'energy_export',
  'energy_total',
  'volume',
  'volume_flow',
  'pressure',
  'temperature',
  'temperature_forward',
  'temperature_return',
  'thermal_power',
  'heat_energy',
] as const;
export type Measure = (typeof MEASURES)[number];

const encodingFields = {
  /** Modbus function 3 (holding registers) or 4 (input registers). */
  function: z.enum(['holding', 'input']),
  encoding: z.enum(ENCODINGS),
  /** For 32-bit values: which register holds the high word. Most meters: high first. */
  word_order: z.enum(['high_first', 'low_first']),
  /** Within a register: big-endian is the Modbus norm. */
  byte_order: z.enum(['big', 'little']),
};

const quantitySchema = z.strictObject({
  /** Zero-based register address (the PDU address, not the 3xxxx/4xxxx reference). */
  register: z.number().int().min(0).max(0xffff),
  function: encodingFields.function.optional(),
  encoding: encodingFields.encoding.optional(),
  word_order: encodingFields.word_order.optional(),
  byte_order: encodingFields.byte_order.optional(),
  /** The raw value times scale is the value in `unit`. */
  scale: z.number().positive().default(1),
  unit: z.string().min(1),
  measures: z.enum(MEASURES),
  /** Phase or circuit, where the meter has several. */
  phase: z.enum(['L1', 'L2', 'L3', 'total']).default('total'),
  description: z.string().min(1),
});

export const profileSchema = z
  .strictObject({
    model: z.string().min(1),
    manufacturer: z.string().min(1),
    /** Which utility the meter measures. */
    utility: z.enum(['electricity', 'biogas', 'heat']),
    datasheet: z.strictObject({
      title: z.string().min(1),
      /** Where to find it; a publisher's page rather than a copy. */
      source: z.string().min(1),
    }),
    /** Defaults for every quantity; a quantity may override each. */
    defaults: z.strictObject(encodingFields),
    /** Most registers one request may read; meters often allow fewer than Modbus's 125. */
    max_registers_per_request: z.number().int().min(1).max(125).default(125),
    /**
     * Unused registers a request may span to join two quantities: one request with a few spare
     * registers costs less bus time than two. 0 for meters that refuse unmapped addresses.
     */
    max_gap_registers: z.number().int().min(0).max(124).default(0),
    quantities: z.record(z.string(), quantitySchema),
  })
  .superRefine((profile, ctx) => {
    // Two quantities must not claim the same register in the same space.
    const claimed = new Map<string, string>();
    for (const [name, quantity] of Object.entries(profile.quantities)) {
      if (!/^[a-z][a-z0-9_]*$/.test(name)) {
        ctx.addIssue({
          code: 'custom',
          path: ['quantities', name],
          message: 'a quantity name must be snake_case',
        });
      }
      const fn = quantity.function ?? profile.defaults.function;
      const size = REGISTERS[quantity.encoding ?? profile.defaults.encoding];
      if (quantity.register + size - 1 > 0xffff) {
        ctx.addIssue({
          code: 'custom',
          path: ['quantities', name, 'register'],
          message: 'runs past register 65535',
        });
      }
      for (let r = quantity.register; r < quantity.register + size; r++) {
        const other = claimed.get(`${fn}:${r}`);
        if (other !== undefined) {
          ctx.addIssue({
            code: 'custom',
            path: ['quantities', name, 'register'],
            message: `overlaps ${other} at ${fn} register ${r}`,
          });
        }
        claimed.set(`${fn}:${r}`, name);
      }
    }
    if (Object.keys(profile.quantities).length === 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['quantities'],
        message: 'a profile needs at least one quantity',
      });
    }
  });

export type Profile = z.output<typeof profileSchema>;

/** A quantity with its profile's defaults filled in: everything needed to read and decode it. */
export interface Quantity {
  readonly name: string;
  readonly register: number;
  readonly function: 'holding' | 'input';
  readonly encoding: Encoding;
  readonly wordOrder: 'high_first' | 'low_first';
  readonly byteOrder: 'big' | 'little';
  readonly scale: number;
  readonly unit: string;
  readonly measures: Measure;
  readonly phase: 'L1' | 'L2' | 'L3' | 'total';
}

export function quantities(profile: Profile): Quantity[] {
  return Object.entries(profile.quantities).map(([name, q]) => ({
    name,
    register: q.register,
    function: q.function ?? profile.defaults.function,
    encoding: q.encoding ?? profile.defaults.encoding,
    wordOrder: q.word_order ?? profile.defaults.word_order,
    byteOrder: q.byte_order ?? profile.defaults.byte_order,
    scale: q.scale,
    unit: q.unit,
    measures: q.measures,
    phase: q.phase,
  }));
}
