/**
 * Every shipped meter profile loads and validates, and a golden RTU frame for each (written out
 * by hand from the datasheet's encoding, CRC included) decodes to the values it carries.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isEipError } from '../../../core/errors.js';
import { decodeQuantity, encodeQuantity } from '../../../core/meters/decode.js';
import { planReads } from '../../../core/meters/plan.js';
import { quantities } from '../../../core/meters/profile.js';
import { appendCrc, buildReadResponse, parseReadResponse } from '../../../core/meters/rtu-frame.js';
import {
  defaultProfileDir,
  loadProfile,
  parseProfile,
  profileNames,
} from '../../../edge/meters/profiles.js';

/** A response to one planned request of the profile, and what it must decode to. */
const GOLDEN: Record<string, { frame: string; start: number; expected: Record<string, number> }> = {
  // total_energy = 1234.5 kWh: float32 0x449A5000, high word first.
  'eastron-sdm120': { frame: '010404449a5000', start: 0x0156, expected: { total_energy: 1234.5 } },
  // L1..L3 voltage 230, 231.5, 229 V; currents 10, 10.5, 9.5 A; powers 2300, 2430.75, -2232.75 W.
  'eastron-sdm630': {
    frame: '010424436600004367800043650000412000004128000041180000450fc0004517ec00c50b8c00',
    start: 0x0000,
    expected: {
      voltage_l1: 230,
      voltage_l2: 231.5,
      voltage_l3: 229,
      current_l1: 10,
      current_l2: 10.5,
      current_l3: 9.5,
      active_power_l1: 2300,
      active_power_l2: 2430.75,
      active_power_l3: -2232.75,
    },
  },
  // Hz 500 (50.0 Hz) uint16; kWh(+) 123456 (12345.6 kWh) int32 low word first: e240 0001.
  'carlo-gavazzi-em24': {
    frame: '01030601f4e2400001',
    start: 0x0033,
    expected: { frequency: 50, import_energy: 12345.6 },
  },
  // Holding registers 0-9, every 32-bit value LOW word first (manual p. 42): 37.5 °C = 0x42160000
  // as 0000 4216; 1.05 bar = 0x3F866666 as 6666 3f86; the unnamed velocity 12.5 m/s = 0x41480000
  // as 0000 4148; the manual's own example 0A 11 42 C5 = 0x42C50A11 = 98.51966 m3/h; consumption
  // 123456 m3 = 0x0001E240 as e240 0001.
  'suto-s430': {
    frame: '0103140000421666663f86000041480a1142c5e2400001',
    start: 0,
    expected: {
      gas_temperature: 37.5,
      pressure: 1.05,
      flow: 98.51966094970703,
      consumption: 123456,
    },
  },
  // Holding registers 100-101: 12345.5 kWh = float32 0x4640E600, high word first (assumed, the
  // supplement does not say).
  'aquametro-calec-st': {
    frame: '0103044640e600',
    start: 100,
    expected: { heat_energy: 12345.5 },
  },
};

function withCrc(hex: string): Buffer {
  return appendCrc(Buffer.from(hex, 'hex'));
}

describe('meter profiles', () => {
  const names = profileNames();

  it('ships the profiles the installers are told about', () => {
    expect(names).toEqual([
      'aquametro-calec-st',
      'carlo-gavazzi-em24',
      'eastron-sdm120',
      'eastron-sdm630',
      'suto-s430',
    ]);
  });

  it('lists every profile, and only those, in the table of hardware/meters/README.md', () => {
    const readme = readFileSync(join(defaultProfileDir(), 'README.md'), 'utf8');
    const rows = readme.split('\n').filter((line) => line.startsWith('|'));
    const header = (rows[0] ?? '').split('|').map((cell) => cell.trim());
    const column = header.indexOf('profile');
    expect(column).toBeGreaterThan(0);
    const listed = rows
      .slice(2)
      .map((row) => row.split('|')[column]?.trim().replace(/`/g, ''))
      .sort();
    expect(listed).toEqual(names);
  });

  it.each(names)('%s loads, plans its reads and decodes its golden frame', (name) => {
    const profile = loadProfile(name);
    const all = quantities(profile);
    const requests = planReads(all, profile.max_registers_per_request, profile.max_gap_registers);
    // Every quantity is read exactly once, and no request exceeds the meter's limit.
    expect(requests.flatMap((r) => r.quantities.map((q) => q.name)).sort()).toEqual(
      all.map((q) => q.name).sort(),
    );
    for (const request of requests)
      expect(request.count).toBeLessThanOrEqual(profile.max_registers_per_request);

    const golden = GOLDEN[name];
    if (!golden) throw new Error(`no golden frame for ${name}`);
    const response = parseReadResponse(withCrc(golden.frame));
    const request = requests.find((r) => r.start === golden.start);
    if (!request) throw new Error(`${name}: no planned request starts at ${golden.start}`);
    expect(response.function).toBe(request.function);
    expect(response.registers).toHaveLength(request.count);
    for (const [quantity, value] of Object.entries(golden.expected)) {
      const q = request.quantities.find((x) => x.name === quantity);
      if (!q) throw new Error(`${name}: ${quantity} is not in the request at ${golden.start}`);
      expect(decodeQuantity(q, response.registers, request.start)).toBeCloseTo(value, 6);
    }
  });

  it('round-trips every quantity of every profile through its encoding', () => {
    for (const name of names) {
      for (const q of quantities(loadProfile(name))) {
        // A value the encoding can hold exactly at the quantity's scale: 123.4 at 0.1, 1234 at 1.
        const magnitude = 1234 * q.scale;
        const value = q.encoding === 'uint16' || q.encoding === 'uint32' ? magnitude : -magnitude;
        const decoded = decodeQuantity(q, encodeQuantity(q, value), q.register);
        expect(decoded, `${name}.${q.name}`).toBeCloseTo(value, q.encoding === 'float32' ? 3 : 2);
      }
    }
  });
});

describe('profile validation', () => {
  const valid = {
    model: 'M',
    manufacturer: 'X',
    utility: 'electricity',
    datasheet: { title: 'T', source: 'S' },
    defaults: {
      function: 'input',
      encoding: 'float32',
      word_order: 'high_first',
      byte_order: 'big',
    },
    quantities: { power: { register: 0, unit: 'W', measures: 'active_power', description: 'P' } },
  };

  it('lists every problem with its path', () => {
    const bad = JSON.stringify({
      ...valid,
      defaults: { ...valid.defaults, encoding: 'float64' },
      quantities: {
        power: { register: 0, unit: 'W', measures: 'active_power', description: 'P' },
        energy: { register: 1, unit: 'kWh', measures: 'energy', description: 'E' },
      },
    });
    try {
      parseProfile(bad, 'meters/bad.yaml');
      expect.unreachable();
    } catch (error) {
      expect(isEipError(error, 'INVALID_ARGUMENT')).toBe(true);
      const message = (error as Error).message;
      expect(message).toMatch(/^meters\/bad\.yaml: invalid meter profile:/);
      expect(message).toMatch(/defaults\.encoding: /);
      expect(message).toMatch(/quantities\.energy\.measures: /);
    }
  });

  it('refuses a quantity name that is not snake_case', () => {
    const named = JSON.stringify({
      ...valid,
      quantities: { Power: { register: 0, unit: 'W', measures: 'active_power', description: 'P' } },
    });
    expect(() => parseProfile(named, 'x.yaml')).toThrow(
      /quantities\.Power: a quantity name must be snake_case/,
    );
  });

  it('refuses two quantities on the same register', () => {
    const overlapping = JSON.stringify({
      ...valid,
      quantities: {
        power: { register: 0, unit: 'W', measures: 'active_power', description: 'P' },
        energy: { register: 1, unit: 'kWh', measures: 'energy_import', description: 'E' },
      },
    });
    expect(() => parseProfile(overlapping, 'x.yaml')).toThrow(
      /quantities\.energy\.register: overlaps power at input register 1/,
    );
  });

  it('names an unknown profile and lists the known ones', () => {
    expect(() => loadProfile('sdm999')).toThrow(
      /unknown meter profile "sdm999"; known: aquametro-calec-st, carlo-gavazzi-em24, eastron-sdm120/,
    );
  });

  it('refuses broken RTU frames: CRC, length, exception', () => {
    const good = buildReadResponse({ unit: 1, function: 'input', registers: [1, 2] });
    expect(parseReadResponse(good).registers).toEqual([1, 2]);
    const corrupted = Buffer.from(good);
    corrupted[4] = (corrupted[4] ?? 0) ^ 0xff;
    expect(() => parseReadResponse(corrupted)).toThrow(/fails its CRC/);
    expect(() => parseReadResponse(good.subarray(0, 6))).toThrow(/fails its CRC|says 4 data bytes/);
    expect(() => parseReadResponse(withCrc('018402'))).toThrow(
      /unit 1 answered Modbus exception 2 to function 4/,
    );
  });
});
