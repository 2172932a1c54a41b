/**
 * What the gateway writes to InfluxDB (1.x line protocol, precision ms): the schema as code, the
 * mapping from MQTT payloads to points, and a point's line. SCHEMA.md beside this file is the same
 * schema as a table for dashboard authors; the test in test/gateway/points.test.ts keeps the two
 * in step.
 *
 * - `reading`, at measured_at_ms. Tags meter, prosumer, quantity, unit, utility. Fields value
 *   (float), seq (integer), stale (boolean).
 * - `balance`, at at_ms. Tags prosumer, unit, utility. Fields production_units,
 *   consumption_units, storage_level_units, storage_capacity_units, net_units (float), step
 *   (integer).
 * - `agreement` (one point per status event), at at_ms. Tags agreement_id, state, unit, utility.
 *   Fields, as the state has them: tx_hash (string), block (integer), delivered_units (float),
 *   paid_base_units and refunded_base_units (string), paid_tokens and refunded_tokens (float),
 *   reason (string).
 * - `delivery` (a settled delivery), at at_ms. Tags agreement_id, buyer, seller, unit, utility.
 *   Fields contracted_units, delivered_units (float), paid_base_units, refunded_base_units
 *   (string), paid_tokens, refunded_tokens (float), tx_hashes (string, comma-separated).
 * - `negotiation` (one party's report of how one ended), at ended_at_ms. Tags counterpart,
 *   outcome, prosumer, reason, requester, role, utility. Fields negotiation_id (string: a tag
 *   would make a series per negotiation), rounds, duration_ms (integer).
 *
 * - A field has one type, forever. InfluxDB fixes a field's type per shard when it is first
 *   written and refuses points of another type: "field type conflict" (InfluxDB 1.x FAQ, "How
 *   does InfluxDB handle field type discrepancies across shards?"). A batch that mixes the two
 *   is refused whole (seen with 1.6). JavaScript has one number type, so the
 *   type comes from this schema, never from the value: a float field holding 5 is written `5`
 *   (a float in line protocol), an integer field `5i`.
 * - Quantities are floats in the utility's unit (`_units`: m3 or kWh, named by the `unit` tag),
 *   converted from the payloads' exact thousandths: x / 1000 is the float nearest the exact
 *   value.
 * - Token amounts are uint256 base units (18 decimals). A float cannot hold them exactly, a
 *   string cannot be summed: both are stored, `_base_units` as the exact decimal string for
 *   audits against the chain, `_tokens` as the nearest float for graphs.
 * - Tags are what queries group and filter by, all of bounded cardinality except agreement_id
 *   (one series per agreement and state: hundreds a day in a park, far below InfluxDB's default
 *   limit of a million series per database).
 * - A point is identified by measurement, tag set and time; writing it again overwrites it with
 *   the same values, so a batch sent twice (after a crash between the write and its record)
 *   stores nothing twice.
 */
import { EipError } from '../../core/errors.js';
import type { Payload } from '../../core/messages/topics.js';
import { formatTokens, MILLI_PER_UNIT } from '../../core/units.js';
import { UTILITIES, type UtilityId } from '../../core/utilities.js';

export type FieldType = 'float' | 'integer' | 'boolean' | 'string';

interface MeasurementSchema {
  /** Sorted by key: InfluxDB's write path sorts them otherwise ("sort tags by key", 1.x docs). */
  readonly tags: readonly string[];
  readonly fields: Readonly<Record<string, FieldType>>;
}

const tokenFields = {
  paid_base_units: 'string',
  paid_tokens: 'float',
  refunded_base_units: 'string',
  refunded_tokens: 'float',
} as const;

export const SCHEMA = {
  reading: {
    tags: ['meter', 'prosumer', 'quantity', 'unit', 'utility'],
    fields: { value: 'float', seq: 'integer', stale: 'boolean' },
  },
  balance: {
    tags: ['prosumer', 'unit', 'utility'],
    fields: {
      production_units: 'float',
      consumption_units: 'float',
      storage_level_units: 'float',
      storage_capacity_units: 'float',
      net_units: 'float',
      step: 'integer',
    },
  },
  agreement: {
    tags: ['agreement_id', 'state', 'unit', 'utility'],
    fields: {
      tx_hash: 'string',
      block: 'integer',
      delivered_units: 'float',
      ...tokenFields,
      reason: 'string',
    },
  },
  delivery: {
    tags: ['agreement_id', 'buyer', 'seller', 'unit', 'utility'],
    fields: {
      contracted_units: 'float',
      delivered_units: 'float',
      ...tokenFields,
      tx_hashes: 'string',
    },
  },
  negotiation: {
    tags: ['counterpart', 'outcome', 'prosumer', 'reason', 'requester', 'role', 'utility'],
    fields: { negotiation_id: 'string', rounds: 'integer', duration_ms: 'integer' },
  },
} as const satisfies Record<string, MeasurementSchema>;

export type MeasurementName = keyof typeof SCHEMA;

type Fields<M extends MeasurementName> = (typeof SCHEMA)[M]['fields'];
type ValueOf<T> = T extends 'boolean' ? boolean : T extends 'string' ? string : number;

export interface PointOf<M extends MeasurementName> {
  readonly measurement: M;
  readonly tags: Readonly<Record<(typeof SCHEMA)[M]['tags'][number], string>>;
  /** At least one; which ones depends on the payload (an agreement's state). */
  readonly fields: { readonly [F in keyof Fields<M>]?: ValueOf<Fields<M>[F]> };
  /** Milliseconds since the Unix epoch: the time the payload says it happened. */
  readonly time_ms: number;
}

export type Point = { [M in MeasurementName]: PointOf<M> }[MeasurementName];

const units = (milli: number) => milli / MILLI_PER_UNIT;
const unitOf = (utility: UtilityId) => UTILITIES[utility].unit;

/** Number() of the exact decimal rounds once; Number(baseUnits) / 1e18 would round twice. */
const toTokens = (baseUnits: bigint) => Number(formatTokens(baseUnits));

/** Both forms of each token amount of a settlement: see the header. */
const settlement = (paid: bigint, refunded: bigint) => ({
  paid_base_units: paid.toString(),
  paid_tokens: toTokens(paid),
  refunded_base_units: refunded.toString(),
  refunded_tokens: toTokens(refunded),
});

export function readingPoint(reading: Payload<'meterReading'>): PointOf<'reading'> {
  const { prosumer, meter, utility, quantity, unit } = reading;
  return {
    measurement: 'reading',
    tags: { meter, prosumer, quantity, unit, utility },
    fields: { value: reading.value, seq: reading.seq, stale: reading.stale },
    time_ms: reading.measured_at_ms,
  };
}

export function balancePoint(balance: Payload<'balance'>): PointOf<'balance'> {
  return {
    measurement: 'balance',
    tags: { prosumer: balance.prosumer, unit: unitOf(balance.utility), utility: balance.utility },
    fields: {
      production_units: units(balance.production_milli),
      consumption_units: units(balance.consumption_milli),
      storage_level_units: units(balance.storage_level_milli),
      storage_capacity_units: units(balance.storage_capacity_milli),
      net_units: units(balance.net_milli),
      step: balance.step,
    },
    time_ms: balance.at_ms,
  };
}

export function agreementPoint(status: Payload<'agreementStatus'>): PointOf<'agreement'> {
  const fields = (() => {
    switch (status.state) {
      case 'submitted':
        return { tx_hash: status.tx_hash };
      case 'confirmed':
        return { tx_hash: status.tx_hash, block: status.block };
      case 'delivering':
        return { delivered_units: units(status.delivered_milli) };
      case 'settled':
        return {
          tx_hash: status.tx_hash,
          ...settlement(status.paid, status.refunded),
        };
      case 'failed':
        return { reason: status.reason };
    }
  })();
  return {
    measurement: 'agreement',
    tags: {
      agreement_id: status.agreement_id,
      state: status.state,
      unit: unitOf(status.utility),
      utility: status.utility,
    },
    fields,
    time_ms: status.at_ms,
  };
}

export function deliveryPoint(delivery: Payload<'deliveryConfirmation'>): PointOf<'delivery'> {
  return {
    measurement: 'delivery',
    tags: {
      agreement_id: delivery.agreement_id,
      buyer: delivery.buyer,
      seller: delivery.seller,
      unit: unitOf(delivery.utility),
      utility: delivery.utility,
    },
    fields: {
      contracted_units: units(delivery.contracted_milli),
      delivered_units: units(delivery.delivered_milli),
      ...settlement(delivery.paid, delivery.refunded),
      tx_hashes: delivery.transactions.join(','),
    },
    time_ms: delivery.at_ms,
  };
}

export function negotiationPoint(report: Payload<'negotiationOutcome'>): PointOf<'negotiation'> {
  return {
    measurement: 'negotiation',
    tags: {
      // Empty tags are left out of the line: no counterpart, no reason.
      counterpart: report.counterpart ?? '',
      outcome: report.outcome,
      prosumer: report.prosumer,
      reason: report.reason ?? '',
      requester: String(report.requester),
      role: report.role,
      utility: report.utility,
    },
    fields: {
      negotiation_id: report.negotiation_id,
      rounds: report.rounds,
      duration_ms: report.ended_at_ms - report.started_at_ms,
    },
    time_ms: report.ended_at_ms,
  };
}

/**
 * A line is one point, so a newline (which line protocol cannot escape in a tag, and which would
 * split a point in two in the spool) becomes a space.
 */
const oneLine = (text: string) => text.replace(/[\r\n]/g, ' ');

/**
 * Escaping per the InfluxDB 1.x line protocol reference ("Special characters"): commas, equals
 * signs and spaces in tag values; double quotes and backslashes in string fields. A tag value
 * cannot hold a backslash before one of those or at its end (1.x keeps `\\` as two characters
 * and refuses the line), so a backslash in a tag becomes a slash: no id or unit has one. Not
 * node-influx's `escape` helpers: they rewrite the first `\'` of any string to `\\'`, a quirk
 * meant for InfluxQL string literals that changes the stored value. Measurement, tag and field
 * names come from SCHEMA and need no escaping (a test checks that).
 */
const tagValue = (text: string) =>
  /[\\,= \r\n]/.test(text) ? oneLine(text).replace(/\\/g, '/').replace(/[,= ]/g, '\\$&') : text;
const stringField = (text: string) =>
  `"${/["\\\r\n]/.test(text) ? oneLine(text).replace(/["\\]/g, '\\$&') : text}"`;

/** Each measurement's [field, type] pairs, made once: toLine runs for every reading. */
const FIELD_TYPES = Object.fromEntries(
  Object.entries(SCHEMA).map(([measurement, schema]) => [
    measurement,
    Object.entries(schema.fields),
  ]),
) as Record<MeasurementName, [string, FieldType][]>;

function fieldText(
  type: FieldType,
  value: number | boolean | string,
  measurement: MeasurementName,
  key: string,
): string {
  if (type === 'string' && typeof value === 'string') return stringField(value);
  if (type === 'boolean' && typeof value === 'boolean') return value ? 'true' : 'false';
  // String(5) is "5", a float in line protocol; String(1e21) is "1e+21", which InfluxDB parses.
  if (type === 'float' && typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (type === 'integer' && Number.isSafeInteger(value)) return `${value}i`;
  const where = `${measurement}.${key}`;
  throw new EipError('INVALID_ARGUMENT', `${where} must be a finite ${type} (got ${value})`, {
    details: { field: where, type },
  });
}

/** The point in line protocol, time in milliseconds, without the trailing newline. */
export function toLine(point: Point): string {
  const schema: MeasurementSchema = SCHEMA[point.measurement];
  const tags: Readonly<Record<string, string>> = point.tags;
  const fields: Readonly<Record<string, number | boolean | string | undefined>> = point.fields;
  let line: string = point.measurement;
  for (const key of schema.tags) {
    // Line protocol has no empty tag value; InfluxDB reads a missing tag as empty.
    const value = tags[key];
    if (value) line += `,${key}=${tagValue(value)}`;
  }
  let separator = ' ';
  for (const [key, type] of FIELD_TYPES[point.measurement]) {
    const value = fields[key];
    if (value === undefined) continue;
    line += `${separator}${key}=${fieldText(type, value, point.measurement, key)}`;
    separator = ',';
  }
  if (separator === ' ' || !Number.isSafeInteger(point.time_ms)) {
    throw new EipError(
      'INVALID_ARGUMENT',
      `a ${point.measurement} point needs at least one field and a whole time in ms`,
      { details: { measurement: point.measurement, time_ms: point.time_ms } },
    );
  }
  return `${line} ${point.time_ms}`;
}
