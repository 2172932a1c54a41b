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
  timeout_ms: z.number().int().min(50).max(60_000).default(1000).meta({
    description: 'Per request, ms; a meter that answers later fails this attempt',
  }),
  retries: z.number().int().min(0).max(10).default(2).meta({
    description: 'Extra attempts within one poll before the meter is marked stale',
  }),
};

/** A Modbus link shared by the meters behind it: an RS-485 adapter or a TCP address. */
const busSchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('rtu').meta({ description: 'Modbus RTU over an RS-485 adapter' }),
    device: z.string().min(1).meta({ description: 'Serial device, e.g. /dev/eip-rs485-0' }),
    baud: baud.default(9600),
    framing: z.enum(FRAMINGS).default('8N1').meta({
      description:
        "Data bits, parity, stop bits as the meter's manual gives them: 8N1, 8E1, 8O1 or 8N2",
    }),
    ...busCommon,
  }),
  z.strictObject({
    type: z
      .literal('tcp')
      .meta({ description: 'Modbus TCP: a meter or an RS-485-to-TCP converter' }),
    address: hostPort.meta({ description: 'Meter or RS-485-to-TCP converter, HOST:PORT' }),
    ...busCommon,
  }),
]);

const meterSchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('modbus').meta({ description: 'A Modbus meter on one of `buses`' }),
    bus: id.meta({ description: 'A key of `buses`' }),
    unit: z.number().int().min(1).max(247).meta({ description: 'Modbus unit id' }),
    profile: z.string().min(1).meta({ description: 'Meter profile, see `eip-edge profiles`' }),
  }),
  z.strictObject({
    type: z.literal('p1').meta({ description: "A smart meter's P1 port (DSMR)" }),
    device: z.string().min(1).meta({ description: 'Serial device of the P1 cable' }),
    baud: baud.default(115200).meta({
      description: 'DSMR 4/5 meters send at 115200 (8N1), DSMR 2.2/3 at 9600 (7E1)',
    }),
  }),
  z.strictObject({
    type: z.literal('mqtt').meta({ description: 'A meter that publishes its value on MQTT' }),
    topic: z
      .string()
      .min(1)
      .refine((t) => !/[+#]/.test(t), 'must not contain wildcards')
      .meta({ description: 'The topic the value arrives on (no wildcards)' }),
    path: z.string().default('').meta({
      description: 'Where the number is in a JSON payload (ENERGY.Total); empty for a plain number',
    }),
    scale: z.number().positive().default(1).meta({ description: 'Multiplies the value' }),
    unit: z.string().min(1).max(16).meta({ description: 'Unit of the scaled value, e.g. kWh' }),
  }),
]);

/** `meter.quantity`: which reading of which meter, e.g. `digester-gas.volume`. */
const reading = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_-]*\.[a-z0-9_]+$/, 'must be METER.QUANTITY, e.g. digester.volume')
  .meta({ description: 'METER.QUANTITY: a meter id and one of its quantities' });

/*
 * A seller offers what it can spare and stands there (seed section 5); a buyer asks for its whole
 * need and may concede down to rp_fraction of it.
 */
const quantityPsi = z.strictObject({
  ip_fraction: z.number().min(0).max(1).default(1).meta({
    description: 'First quantity offered, as a fraction of the surplus (seller) or deficit (buyer)',
  }),
  rp_fraction: z.number().min(0).max(1).default(1).meta({
    description: 'Last quantity offered, as a fraction of the surplus or deficit',
  }),
  dl: z.number().positive().meta({ description: 'Deadline: rounds until the last offer' }),
  cr: z.number().positive().meta({
    description: 'Concession rate: below 1 concedes late, above 1 early, 1 linearly',
  }),
});

const sideSchema = z.strictObject({
  price: psiSchema.meta({
    description: 'Price strategy in tokens per unit: O_t = ip + (rp - ip) * (t/dl)^(1/cr)',
  }),
  quantity: quantityPsi.meta({ description: 'Quantity strategy' }),
});

const rulesPolicy = z.strictObject({
  type: z.literal('rules').meta({
    description: 'Rule-based: negotiate with the configured strategies, else the provider',
  }),
  min_trade: z.number().nonnegative().default(1).meta({
    description: "Below this amount (the utility's unit) the agent waits rather than trade",
  }),
  sell: sideSchema.meta({ description: 'Strategy when this plant has a surplus' }),
  buy: sideSchema.meta({ description: 'Strategy when this plant has a deficit' }),
  provider_after_failures: z.number().int().min(0).max(100).default(2).meta({
    description: 'After this many failed negotiations in a row, trade with the provider',
  }),
});

const learnedPolicy = z.strictObject({
  type: z.literal('learned').meta({
    description:
      "Learned in simulation (`eip-sim train --scenario FILE --out policy.json`): the action of highest value in the plant's situation",
  }),
  file: z.string().min(1).meta({
    description: 'The policy file `eip-sim train` wrote (relative paths: from the config file)',
  }),
});

const utilityPlan = z.strictObject({
  production: z.array(reading).default([]).meta({
    description: 'Cumulative counters whose increase over a step is produced',
  }),
  consumption: z.array(reading).default([]).meta({
    description: 'Cumulative counters whose increase over a step is consumed',
  }),
  storage: z
    .strictObject({
      level: reading,
      capacity: z.number().positive().meta({ description: "The store's capacity" }),
      reserve: z.number().nonnegative().default(0).meta({
        description: 'Kept back: never offered for sale',
      }),
    })
    .optional()
    .meta({ description: 'A store such as a gas holder: level reading, capacity, reserve' }),
  delivery: z
    .strictObject({
      export: reading.optional().meta({
        description: 'Counter of what leaves the plant to the park network: measures sales',
      }),
      import: reading.optional().meta({
        description: 'Counter of what comes in from the park network: measures purchases',
      }),
    })
    .optional()
    .meta({
      description:
        "Counters at the plant's connection to the park network. With them, and a meter key, the agent signs delivery reports for its agreements; without them the counterpart's meter alone settles",
    }),
  delivery_s: seconds('Length of the provision window offered', 7 * 86_400).default(3600),
  deadline_s: seconds(
    "How long a surplus or deficit may wait to be settled: the plant's own time preference (seed Fig. 5; without it the store's room alone sets the urgency)",
    7 * 86_400,
  ).optional(),
  policy: z
    .discriminatedUnion('type', [rulesPolicy, learnedPolicy])
    .meta({ description: 'How the agent decides each time step' }),
});

export const configSchema = z.strictObject({
  prosumer: id.meta({
    description: "This plant's id in the park: one MQTT topic level, and the broker user name",
  }),
  identity: z
    .strictObject({
      keystore: z.string().min(1).optional().meta({
        description:
          'Encrypted Ethereum keystore (v3 JSON, see `eip-edge keystore new`). Its password comes from $EIP_EDGE_KEYSTORE_PASSWORD or the systemd credential keystore-password; without a keystore, $EIP_EDGE_PRIVATE_KEY holds the key (containers, tests)',
      }),
    })
    .default({})
    .meta({ description: "The plant's signing key" }),
  meter_identity: z
    .strictObject({
      keystore: z.string().min(1).optional().meta({
        description:
          "Keystore of the key that signs delivery reports, registered by the park operator as this plant's meter key (same password sources as identity.keystore); without it, $EIP_EDGE_METER_PRIVATE_KEY",
      }),
    })
    .optional()
    .meta({
      description:
        'The metering key, kept apart from the trading key: it attests delivery, it cannot trade',
    }),
  mqtt: z
    .strictObject({
      url: z
        .string()
        .regex(/^(mqtts?|wss?):\/\/[^\s]+$/, 'must be an mqtt://, mqtts://, ws:// or wss:// URL')
        .meta({ description: "The park broker (the gateway's), e.g. mqtts://gateway.park:8883" }),
      username: z.string().min(1).optional().meta({ description: 'Broker user name' }),
      password_env: z
        .string()
        .regex(/^[A-Z_][A-Z0-9_]*$/)
        .default('EIP_EDGE_MQTT_PASSWORD')
        .meta({
          description:
            'The environment variable that holds the broker password (never the password itself)',
        }),
    })
    .meta({ description: 'Connection to the park broker' }),
  market: z
    .strictObject({
      chain_id: z.number().int().positive().meta({ description: "The park chain's id" }),
      contracts: z.partialRecord(z.enum(UTILITY_IDS), address).meta({
        description: 'Market contract address per utility traded',
      }),
    })
    .meta({ description: 'The chain and market contracts, from `eip-gateway deploy`' }),
  step_s: seconds('Time step: a balance and a decision each', 86_400).default(900),
  poll_s: seconds('How often meters are read', 3600).default(10),
  data_dir: z.string().min(1).default('/var/lib/eip-edge').meta({
    description: 'Where the durable outbox lives (relative paths: from the config file)',
  }),
  outbox: z
    .strictObject({
      max_mb: z.number().min(1).max(4096).default(64).meta({
        description: 'Disk bound: when full, the oldest messages are dropped and counted',
      }),
    })
    .default({ max_mb: 64 })
    .meta({ description: 'Readings and agreements kept on disk until the broker has them' }),
  health: z
    .union([
      z.literal(false),
      z.strictObject({
        listen: hostPort.default('127.0.0.1:9184').meta({
          description: 'HOST:PORT for GET /health and /metrics (port 0: any free port)',
        }),
      }),
    ])
    .default({ listen: '127.0.0.1:9184' })
    .meta({ description: 'HTTP health and Prometheus metrics; false turns them off' }),
  log_level: z
    .enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal'])
    .default('info')
    .meta({ description: 'Least severe log level written' }),
  negotiation: z
    .strictObject({
      discovery_ms: z.number().int().min(50).max(60_000).default(2000).meta({
        description: "How long a request waits for peers' will to negotiate, ms",
      }),
      round_timeout_ms: z.number().int().min(100).max(600_000).default(10_000).meta({
        description: 'A counterpart silent this long is broken off with, ms',
      }),
      max_rounds: z.number().int().min(1).max(10_000).default(1000).meta({
        description: 'Rounds after which a negotiation ends without agreement',
      }),
      agreement_ttl_s: seconds(
        'How long both signatures on an agreement stay valid',
        7 * 86_400,
      ).default(3600),
    })
    .default({
      discovery_ms: 2000,
      round_timeout_ms: 10_000,
      max_rounds: 1000,
      agreement_ttl_s: 3600,
    })
    .meta({ description: 'Negotiation with peers over MQTT' }),
  buses: z.record(id, busSchema).default({}).meta({
    description: 'Modbus links by id: RS-485 adapters and TCP addresses',
  }),
  meters: z.record(id, meterSchema).meta({ description: 'Meters by id' }),
  utilities: z.partialRecord(z.enum(UTILITY_IDS), utilityPlan).meta({
    description: 'What this plant produces, consumes and stores of each utility, and its policy',
  }),
});

export type EdgeConfig = z.output<typeof configSchema>;
export type BusConfig = z.output<typeof busSchema>;
export type MeterConfig = z.output<typeof meterSchema>;
export type UtilityPlan = z.output<typeof utilityPlan>;
export type SideConfig = z.output<typeof sideSchema>;
