/**
 * The edge agent's configuration: one YAML file per plant. This zod schema is the single source
 * of truth: defaults live here, `config.schema.json` beside it is generated from it for editors,
 * and `eip-edge check-config` reports every problem with its path.
 *
 * Amounts are in the utility's unit (m3, kWh) as in the seed paper; prices in tokens per unit.
 */
import { z } from 'zod';
import { address, id } from '../../core/messages/schemas.js';
import { psiSchema } from '../../core/negotiation/strategy.js';
import { UTILITY_IDS } from '../../core/utilities.js';
import { BAUD_RATES, FRAMINGS } from '../meters/serial-line.js';

const seconds = (what: string, max: number) =>
  z
    .number()
    .int()
    .min(1)
    .max(max)
    .meta({ description: `${what}, seconds` });

const hostPort = z
  .string()
  .regex(/^(\[[^\]]+\]|[^:\s]+):\d{1,5}$/, 'must be HOST:PORT')
  .refine((text) => {
    const port = Number(text.slice(text.lastIndexOf(':') + 1));
    return port >= 0 && port <= 65535;
  }, 'port must be 0 to 65535 (0: any free port)');

const baud = z
  .number()
  .refine(
    (b) => (BAUD_RATES as readonly number[]).includes(b),
    `must be one of ${BAUD_RATES.join(', ')}`,
  )
  .meta({ description: 'Serial line speed' });

const busCommon = {
  /** Per request; a meter that answers later is counted as failed for this attempt. */
  timeout_ms: z.number().int().min(50).max(60_000).default(1000),
  /** Extra attempts within one poll cycle before the meter is marked stale. */
  retries: z.number().int().min(0).max(10).default(2),
};

/** A Modbus link shared by the meters behind it: an RS-485 adapter or a TCP address. */
const busSchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('rtu'),
    device: z.string().min(1).meta({ description: 'Serial device, e.g. /dev/eip-rs485-0' }),
    baud: baud.default(9600),
    framing: z.enum(FRAMINGS).default('8N1').meta({
      description:
        "Data bits, parity, stop bits as the meter's manual gives them: 8N1, 8E1, 8O1 or 8N2",
    }),
    ...busCommon,
  }),
  z.strictObject({
    type: z.literal('tcp'),
    address: hostPort.meta({ description: 'Meter or RS-485-to-TCP converter, HOST:PORT' }),
    ...busCommon,
  }),
]);

const meterSchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('modbus'),
    bus: id.meta({ description: 'A key of `buses`' }),
    unit: z.number().int().min(1).max(247).meta({ description: 'Modbus unit id' }),
    profile: z.string().min(1).meta({ description: 'Meter profile, see `eip-edge profiles`' }),
  }),
  z.strictObject({
    type: z.literal('p1'),
    device: z.string().min(1),
    /** DSMR 4/5 meters send at 115200 8N1; DSMR 2/3 at 9600 7E1. */
    baud: baud.default(115200),
  }),
  z.strictObject({
    type: z.literal('mqtt'),
    topic: z
      .string()
      .min(1)
      .refine((t) => !/[+#]/.test(t), 'must not contain wildcards'),
    /** Where the number is in a JSON payload (`ENERGY.Total`); empty for a plain number. */
    path: z.string().default(''),
    scale: z.number().positive().default(1),
    unit: z.string().min(1).max(16),
  }),
]);

/** `meter.quantity`: which reading of which meter, e.g. `digester-gas.volume`. */
const reading = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_-]*\.[a-z0-9_]+$/, 'must be METER.QUANTITY, e.g. digester.volume')
  .meta({ description: 'METER.QUANTITY: a meter id and one of its quantities' });

const quantityPsi = z.strictObject({
  /**
   * The first and last quantity offered, as fractions of the surplus (seller) or deficit (buyer).
   * A seller offers what it can spare and stands there (seed section 5); a buyer asks for its
   * whole need and may concede down to rp_fraction of it.
   */
  ip_fraction: z.number().min(0).max(1).default(1),
  rp_fraction: z.number().min(0).max(1).default(1),
  dl: z.number().positive(),
  cr: z.number().positive(),
});

const sideSchema = z.strictObject({
  /** Price psi in tokens per unit: O_t = ip + (rp - ip) * (t/dl)^(1/cr). */
  price: psiSchema,
  quantity: quantityPsi,
});

const rulesPolicy = z.strictObject({
  type: z.literal('rules'),
  /** Below this amount (utility unit) the agent waits rather than trade. */
  min_trade: z.number().nonnegative().default(1),
  sell: sideSchema,
  buy: sideSchema,
  /** After this many failed negotiations in a row, trade with the provider instead. */
  provider_after_failures: z.number().int().min(0).max(100).default(2),
});

const utilityPlan = z.strictObject({
  /** Cumulative counters whose increase over a step is produced. */
  production: z.array(reading).default([]),
  /** Cumulative counters whose increase over a step is consumed. */
  consumption: z.array(reading).default([]),
  /** A store such as a gas holder: its level reading, capacity and the reserve kept back. */
  storage: z
    .strictObject({
      level: reading,
      capacity: z.number().positive(),
      reserve: z.number().nonnegative().default(0),
    })
    .optional(),
  /** Length of the provision window offered in a negotiation. */
  delivery_s: seconds('Delivery window', 7 * 86_400).default(3600),
  policy: rulesPolicy,
});

export const configSchema = z.strictObject({
  /** This plant's id in the park: one MQTT topic level, and the broker user name. */
  prosumer: id,
  identity: z
    .strictObject({
      /**
       * Encrypted Ethereum keystore (v3 JSON). Its password comes from
       * $EIP_EDGE_KEYSTORE_PASSWORD or the systemd credential `keystore-password`; without a
       * keystore, $EIP_EDGE_PRIVATE_KEY holds the key (containers, tests).
       */
      keystore: z.string().min(1).optional(),
    })
    .default({}),
  mqtt: z.strictObject({
    url: z
      .string()
      .regex(/^(mqtts?|wss?):\/\/[^\s]+$/, 'must be an mqtt://, mqtts://, ws:// or wss:// URL'),
    username: z.string().min(1).optional(),
    /** The environment variable that holds the broker password (never the password itself). */
    password_env: z
      .string()
      .regex(/^[A-Z_][A-Z0-9_]*$/)
      .default('EIP_EDGE_MQTT_PASSWORD'),
  }),
  /** The park's chain and the market contract of each utility traded (from `eip-gateway deploy`). */
  market: z.strictObject({
    chain_id: z.number().int().positive(),
    contracts: z.partialRecord(z.enum(UTILITY_IDS), address),
  }),
  /** Length of the agent's time step: a balance and a decision each. */
  step_s: seconds('Time step', 86_400).default(900),
  /** How often meters are read. */
  poll_s: seconds('Poll interval', 3600).default(10),
  /** The durable outbox lives here. */
  data_dir: z.string().min(1).default('/var/lib/eip-edge'),
  outbox: z.strictObject({ max_mb: z.number().min(1).max(4096).default(64) }).default({
    max_mb: 64,
  }),
  /** HTTP health and Prometheus metrics; `false` turns them off. */
  health: z
    .union([z.literal(false), z.strictObject({ listen: hostPort.default('127.0.0.1:9184') })])
    .default({ listen: '127.0.0.1:9184' }),
  log_level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']).default('info'),
  negotiation: z
    .strictObject({
      /** How long a request waits for peers' will to negotiate. */
      discovery_ms: z.number().int().min(50).max(60_000).default(2000),
      /** A counterpart silent this long is broken off with. */
      round_timeout_ms: z.number().int().min(100).max(600_000).default(10_000),
      max_rounds: z.number().int().min(1).max(10_000).default(1000),
      /** How long both signatures on an agreement stay valid for the gateway. */
      agreement_ttl_s: seconds('Agreement signature validity', 7 * 86_400).default(3600),
    })
    .default({
      discovery_ms: 2000,
      round_timeout_ms: 10_000,
      max_rounds: 1000,
      agreement_ttl_s: 3600,
    }),
  buses: z.record(id, busSchema).default({}),
  meters: z.record(id, meterSchema),
  utilities: z.partialRecord(z.enum(UTILITY_IDS), utilityPlan),
});

export type EdgeConfig = z.output<typeof configSchema>;
export type BusConfig = z.output<typeof busSchema>;
export type MeterConfig = z.output<typeof meterSchema>;
export type UtilityPlan = z.output<typeof utilityPlan>;
export type SideConfig = z.output<typeof sideSchema>;
