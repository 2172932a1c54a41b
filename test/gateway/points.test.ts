/**
 * The time-series schema as code: payloads to points, points to line protocol, types from the
 * schema and never from the value, escaping, and SCHEMA.md saying the same as the code.
 */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isEipError } from '../../core/errors.js';
import type { Payload } from '../../core/messages/topics.js';
import {
  agreementPoint,
  balancePoint,
  deliveryPoint,
  negotiationPoint,
  type Point,
  readingPoint,
  SCHEMA,
  toLine,
} from '../../gateway/timeseries/points.js';
import { brokenOff, counterpartReport, outcomeReport } from '../support/negotiation-reports.js';

const AT = 1_700_000_000_123;
const ID = `0x${'ab'.repeat(32)}`;
const TX = `0x${'cd'.repeat(32)}`;
const TOKEN = 10n ** 18n;

const reading = (overrides: Partial<Payload<'meterReading'>> = {}): Payload<'meterReading'> => ({
  prosumer: 'plant-a',
  meter: 'chp',
  utility: 'electricity',
  quantity: 'import_energy',
  value: 5,
  unit: 'kWh',
  measured_at_ms: AT,
  seq: 7,
  stale: false,
  ...overrides,
});

/**
 * Splits a line at its unescaped spaces and commas outside quoted strings, and undoes the
 * escaping: what InfluxDB's parser does, enough to read back what toLine wrote.
 */
function parseLine(line: string) {
  const sections: string[][] = [[]];
  let token = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i] as string;
    if (c === '\\' && i + 1 < line.length) {
      token += c + line[++i];
    } else if (c === '"' && sections.length === 2) {
      // Quotes delimit string fields only; in a tag value a quote is a quote.
      quoted = !quoted;
      token += c;
    } else if (!quoted && (c === ' ' || c === ',')) {
      sections.at(-1)?.push(token);
      token = '';
      if (c === ' ') sections.push([]);
    } else {
      token += c;
    }
  }
  sections.at(-1)?.push(token);
  const unescapeTag = (text: string) => text.replace(/\\(.)/g, '$1');
  const pair = (text: string) => {
    const at = text.search(/(?<!\\)=/);
    return [text.slice(0, at), text.slice(at + 1)] as const;
  };
  const [[measurement = '', ...tags] = [], fields = [], [time = ''] = []] = sections;
  return {
    sections: sections.length,
    measurement,
    tags: Object.fromEntries(tags.map((t) => pair(t)).map(([k, v]) => [k, unescapeTag(v)])),
    fields: Object.fromEntries(fields.map((f) => pair(f))),
    time,
  };
}

describe('points', () => {
  it('writes a reading with its time, the float value as a float and seq as an integer', () => {
    expect(toLine(readingPoint(reading()))).toBe(
      `reading,meter=chp,prosumer=plant-a,quantity=import_energy,unit=kWh,utility=electricity value=5,seq=7i,stale=false ${AT}`,
    );
    expect(toLine(readingPoint(reading({ value: 0.1, stale: true })))).toContain(
      ' value=0.1,seq=7i,stale=true ',
    );
    // Number's shortest form with an exponent, which InfluxDB reads as a float.
    expect(toLine(readingPoint(reading({ value: -1.5e21 })))).toContain(' value=-1.5e+21,');
  });

  it('writes a balance in units of the utility, tagged with the unit', () => {
    const line = toLine(
      balancePoint({
        prosumer: 'plant-a',
        utility: 'biogas',
        step: 12,
        at_ms: AT,
        production_milli: 35_000,
        consumption_milli: 1_250,
        storage_level_milli: 2_000_500,
        storage_capacity_milli: 5_000_000,
        net_milli: -1_001,
      }),
    );
    expect(line).toBe(
      `balance,prosumer=plant-a,unit=m3,utility=biogas production_units=35,consumption_units=1.25,storage_level_units=2000.5,storage_capacity_units=5000,net_units=-1.001,step=12i ${AT}`,
    );
  });

  it('writes each agreement state with the fields it has', () => {
    const base = { agreement_id: ID, utility: 'heat', at_ms: AT } as const;
    const lines = (
      [
        { ...base, state: 'submitted', tx_hash: TX },
        { ...base, state: 'confirmed', tx_hash: TX, block: 42 },
        { ...base, state: 'delivering', delivered_milli: 1_500 },
        { ...base, state: 'settled', tx_hash: TX, paid: 3n * TOKEN + 1n, refunded: TOKEN / 2n },
        { ...base, state: 'failed', reason: 'buyer said "no", twice\nthen left' },
      ] satisfies Payload<'agreementStatus'>[]
    ).map((status) => toLine(agreementPoint(status)));
    const tags = `agreement,agreement_id=${ID},state=`;
    expect(lines).toEqual([
      `${tags}submitted,unit=kWh,utility=heat tx_hash="${TX}" ${AT}`,
      `${tags}confirmed,unit=kWh,utility=heat tx_hash="${TX}",block=42i ${AT}`,
      `${tags}delivering,unit=kWh,utility=heat delivered_units=1.5 ${AT}`,
      // Exact base units as a string, tokens as the float nearest 3.000000000000000001.
      `${tags}settled,unit=kWh,utility=heat tx_hash="${TX}",paid_base_units="3000000000000000001",paid_tokens=3,refunded_base_units="500000000000000000",refunded_tokens=0.5 ${AT}`,
      `${tags}failed,unit=kWh,utility=heat reason="buyer said \\"no\\", twice then left" ${AT}`,
    ]);
  });

  it('writes a delivery confirmation with both forms of each amount and its transactions', () => {
    const line = toLine(
      deliveryPoint({
        agreement_id: ID,
        utility: 'biogas',
        seller: 'plant-a',
        buyer: 'plant-b',
        contracted_milli: 100_000,
        delivered_milli: 87_500,
        paid: 7_000n * TOKEN,
        refunded: 1_000n * TOKEN,
        transactions: [TX, ID],
        at_ms: AT,
      }),
    );
    expect(line).toBe(
      `delivery,agreement_id=${ID},buyer=plant-b,seller=plant-a,unit=m3,utility=biogas contracted_units=100,delivered_units=87.5,paid_base_units="7000000000000000000000",paid_tokens=7000,refunded_base_units="1000000000000000000000",refunded_tokens=1000,tx_hashes="${TX},${ID}" ${AT}`,
    );
  });

  it("writes a party's report of a negotiation at its end, leaving out the tags it has not", () => {
    const report = counterpartReport(
      outcomeReport({ negotiation_id: ID, utility: 'heat', rounds: 7, ended_at_ms: AT }),
      brokenOff('counterpart', 'reserves-apart'),
    );
    expect(toLine(negotiationPoint(report))).toBe(
      `negotiation,counterpart=plant-a,outcome=no-agreement,prosumer=plant-b,reason=reserves-apart,requester=false,role=buyer,utility=heat negotiation_id="${ID}",rounds=7i,duration_ms=4000i ${AT}`,
    );
    const unanswered = outcomeReport({
      prosumer: 'plant-b',
      role: 'buyer',
      negotiation_id: ID,
      utility: 'heat',
      counterpart: null,
      outcome: 'no-counterpart',
      rounds: 0,
      ended_at_ms: AT,
    });
    expect(toLine(negotiationPoint(unanswered))).toBe(
      `negotiation,outcome=no-counterpart,prosumer=plant-b,requester=true,role=buyer,utility=heat negotiation_id="${ID}",rounds=0i,duration_ms=4000i ${AT}`,
    );
  });

  it('escapes any unit and reason so that they read back as one point', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 16 }), fc.string(), (unit, reason) => {
        const readingLine = toLine(readingPoint(reading({ unit })));
        const failedLine = toLine(
          agreementPoint({ agreement_id: ID, utility: 'heat', at_ms: AT, state: 'failed', reason }),
        );
        for (const line of [readingLine, failedLine]) {
          expect(line).not.toMatch(/[\r\n]/);
          const parsed = parseLine(line);
          expect(parsed.sections).toBe(3);
          expect(parsed.time).toBe(String(AT));
        }
        const parsedReading = parseLine(readingLine);
        // Only newlines (to spaces) and backslashes (to slashes) change: see points.ts.
        expect(parsedReading.tags.unit).toBe(unit.replace(/[\r\n]/g, ' ').replaceAll('\\', '/'));
        expect(Object.keys(parsedReading.fields)).toEqual(['value', 'seq', 'stale']);
        const stored = parseLine(failedLine).fields.reason ?? '';
        expect(stored.slice(1, -1).replace(/\\(["\\])/g, '$1')).toBe(
          reason.replace(/[\r\n]/g, ' '),
        );
      }),
    );
  });

  it('refuses a point its schema cannot type, naming the field', () => {
    const refusals: [Point, RegExp][] = [
      [readingPoint(reading({ value: Number.NaN })), /reading\.value must be a finite float/],
      [readingPoint(reading({ seq: 1.5 })), /reading\.seq must be a finite integer/],
      [{ ...readingPoint(reading()), fields: {} }, /needs at least one field/],
      [{ ...readingPoint(reading()), time_ms: 1.5 }, /whole time in ms/],
    ];
    for (const [point, message] of refusals) {
      let caught: unknown;
      try {
        toLine(point);
      } catch (error) {
        caught = error;
      }
      expect(isEipError(caught, 'INVALID_ARGUMENT')).toBe(true);
      expect((caught as Error).message).toMatch(message);
    }
  });

  it('has names that need no escaping and tags sorted, as InfluxDB stores them', () => {
    for (const [measurement, schema] of Object.entries(SCHEMA)) {
      for (const name of [measurement, ...schema.tags, ...Object.keys(schema.fields)]) {
        expect(name).toMatch(/^[a-z][a-z_]*$/);
      }
      expect([...schema.tags]).toEqual([...schema.tags].sort());
    }
  });

  it('is documented in SCHEMA.md, row for row', () => {
    const markdown = readFileSync(
      new URL('../../gateway/timeseries/SCHEMA.md', import.meta.url),
      'utf8',
    );
    const documented = markdown
      .split('\n')
      .map((row) => row.split('|').map((cell) => cell.trim()))
      .filter((cells) => cells.length === 7 && (cells[1] ?? '') in SCHEMA)
      .map(([, measurement, key, kind, type]) => `${measurement} ${key} ${kind} ${type}`)
      .sort();
    const coded = Object.entries(SCHEMA)
      .flatMap(([measurement, schema]) => [
        ...schema.tags.map((tag) => `${measurement} ${tag} tag string`),
        ...Object.entries(schema.fields).map(
          ([key, type]) => `${measurement} ${key} field ${type}`,
        ),
      ])
      .sort();
    expect(documented).toEqual(coded);
  });
});
