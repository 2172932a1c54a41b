/** Reading every profile over real Modbus TCP framing from the simulator, on loopback. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isEipError } from '../../../core/errors.js';
import { describeLink, ModbusReader } from '../../../edge/meters/modbus-client.js';
import { loadProfile, profileNames } from '../../../edge/meters/profiles.js';
import { readProfile } from '../../../edge/meters/reader.js';
import { MeterModel } from '../../../simulators/meters/meter-model.js';
import { type MeterServer, startMeterServer } from '../../../simulators/meters/meter-server.js';

const NOW = 1_800_000_000_000;
const clock = () => NOW;

describe.each(profileNames())('%s over Modbus TCP', (name) => {
  const profile = loadProfile(name);
  let server: MeterServer;

  beforeAll(async () => {
    // Two meters behind one address, like an RS-485-to-TCP converter.
    server = await startMeterServer({
      profile,
      link: { kind: 'tcp', host: '127.0.0.1', port: 0 },
      units: [1, 7],
      clock,
    });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('reads every quantity as the meter holds it, from each unit id', async () => {
    const expected = new MeterModel(profile, clock);
    for (const unit of server.units) {
      const reader = await ModbusReader.connect({
        link: server.link,
        unit,
      });
      try {
        const readings = await readProfile(reader, profile);
        expect(readings.map((r) => r.quantity.name).sort()).toEqual(
          Object.keys(profile.quantities).sort(),
        );
        for (const { quantity, value } of readings) {
          expect(value, `${name}.${quantity.name}`).toBeCloseTo(expected.value(quantity), 1);
        }
      } finally {
        await reader.close();
      }
    }
  });

  it('says which unit does not answer behind the converter', async () => {
    const reader = await ModbusReader.connect({
      link: server.link,
      unit: 3,
    });
    try {
      const failure = await readProfile(reader, profile).catch((error: unknown) => error);
      expect(isEipError(failure, 'IO_ERROR')).toBe(true);
      expect((failure as Error).message).toMatch(
        new RegExp(
          `^unit 3 at ${describeLink(server.link).replaceAll('.', '\\.')}, \\w+ registers \\d+\\.\\.\\d+: Modbus exception 11, gateway target failed to respond`,
        ),
      );
    } finally {
      await reader.close();
    }
  });
});

describe('Modbus TCP failures', () => {
  it('names the address it could not connect to', async () => {
    const failure = await ModbusReader.connect({
      link: { kind: 'tcp', host: '127.0.0.1', port: 1 },
      unit: 1,
    }).catch((error: unknown) => error);
    expect(isEipError(failure, 'IO_ERROR')).toBe(true);
    expect((failure as Error).message).toMatch(/^cannot open Modbus TCP 127\.0\.0\.1:1: /);
  });

  it('reports a register the meter refuses as exception 2, naming the registers', async () => {
    const profile = loadProfile('carlo-gavazzi-em24');
    const server = await startMeterServer({
      profile,
      link: { kind: 'tcp', host: '127.0.0.1', port: 0 },
      clock,
    });
    const reader = await ModbusReader.connect({
      link: server.link,
      unit: 1,
    });
    try {
      const failure = await reader.read('holding', 0x0100, 2).catch((error: unknown) => error);
      expect((failure as Error).message).toBe(
        `unit 1 at ${describeLink(server.link)}, holding registers 256..257: Modbus exception 2, illegal data address (is the profile right for this meter?)`,
      );
    } finally {
      await reader.close();
      await server.close();
    }
  });
});
