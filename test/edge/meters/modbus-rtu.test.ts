/** Modbus RTU with real framing over a pseudo-terminal pair: the simulator on one end, the edge on the other. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isEipError } from '../../../core/errors.js';
import { type Link, ModbusReader } from '../../../edge/meters/modbus-client.js';
import { Poller } from '../../../edge/meters/poller.js';
import { loadProfile, profileNames } from '../../../edge/meters/profiles.js';
import { readProfile } from '../../../edge/meters/reader.js';
import { scanUnits } from '../../../edge/meters/scan.js';
import { MeterModel } from '../../../simulators/meters/meter-model.js';
import { type MeterServer, startMeterServer } from '../../../simulators/meters/meter-server.js';
import { openPtyPair, type PtyPair, RUN_PTY_SUITES } from '../../support/pty-pair.js';

const clock = () => 1_800_000_000_000;

describe.skipIf(!RUN_PTY_SUITES).each(profileNames())(
  '%s over Modbus RTU on a pseudo-terminal',
  (name) => {
    const profile = loadProfile(name);
    let pty: PtyPair;
    let server: MeterServer;
    let link: Link;

    beforeAll(async () => {
      pty = await openPtyPair();
      server = await startMeterServer({
        profile,
        link: { kind: 'rtu', path: pty.a, baudRate: 9600 },
        units: [1, 2],
        clock,
      });
      link = { kind: 'rtu', path: pty.b, baudRate: 9600 };
    });
    afterAll(async () => {
      await server?.close();
      await pty?.close();
    });

    it('reads every quantity from two meters on one bus', async () => {
      const bus = await ModbusReader.connect({ link, unit: 1, timeoutMs: 500 });
      try {
        const expected = new MeterModel(profile, clock);
        for (const unit of server.units) {
          const readings = await readProfile(bus.forUnit(unit), profile);
          expect(readings).toHaveLength(Object.keys(profile.quantities).length);
          for (const { quantity, value } of readings) {
            expect(value, `${name}.${quantity.name} of unit ${unit}`).toBeCloseTo(
              expected.value(quantity),
              1,
            );
          }
        }
      } finally {
        await bus.close();
      }
    });

    it('times out on a unit id that is not on the bus, and keeps serving the others', async () => {
      const bus = await ModbusReader.connect({ link, unit: 9, timeoutMs: 200 });
      try {
        const failure = await readProfile(bus, profile).catch((error: unknown) => error);
        expect(isEipError(failure, 'IO_ERROR')).toBe(true);
        expect((failure as Error).message).toMatch(
          new RegExp(
            `^unit 9 at ${pty.b} at 9600 baud 8N1, \\w+ registers \\d+\\.\\.\\d+: no answer within 200 ms$`,
          ),
        );
        expect(await readProfile(bus.forUnit(2), profile)).toHaveLength(
          Object.keys(profile.quantities).length,
        );
      } finally {
        await bus.close();
      }
    });

    it('polls on, with a silent meter backing off, and marks only it stale', async () => {
      const bus = await ModbusReader.connect({ link, unit: 1, timeoutMs: 150 });
      try {
        const poller = new Poller({
          meters: [
            { id: 'absent', profile, reader: bus.forUnit(9) },
            { id: 'present', profile, reader: bus.forUnit(1) },
          ],
          retries: 0,
        });
        expect(await poller.cycle()).toEqual(['present']);
        expect(await poller.cycle()).toEqual(['present']);
        // The absent meter was skipped in the second cycle (backing off), not waited for again.
        expect(poller.counters.skippedBackingOff).toBe(1);
        expect(poller.counters.errors).toBe(1);
        expect(poller.staleMeters()).toEqual(['absent']);
      } finally {
        await bus.close();
      }
    });

    it('finds the unit ids on the bus', async () => {
      expect(await scanUnits({ link, units: [1, 2, 3, 4], timeoutMs: 200 })).toEqual([1, 2]);
    });
  },
);
