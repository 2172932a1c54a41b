/**
 * Faults a real RS-485 bus produces, injected by the simulated meter on a pseudo-terminal: the
 * edge decodes a frame that arrives in pieces and turns every other fault into an error that
 * names the meter, never a crash and never a wrong value.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { isEipError } from '../../../core/errors.js';
import { ModbusReader } from '../../../edge/meters/modbus-client.js';
import { loadProfile } from '../../../edge/meters/profiles.js';
import { readProfile } from '../../../edge/meters/reader.js';
import { MeterModel } from '../../../simulators/meters/meter-model.js';
import { startMeterServer } from '../../../simulators/meters/meter-server.js';
import type { Fault } from '../../../simulators/meters/rtu-slave.js';
import { openPtyPair, RUN_PTY_SUITES } from '../../support/pty-pair.js';

const profile = loadProfile('eastron-sdm120');
const clock = () => 0;
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function readWithFault(fault: Fault) {
  const pty = await openPtyPair();
  cleanups.push(() => pty.close());
  const server = await startMeterServer({
    profile,
    link: { kind: 'rtu', path: pty.a, baudRate: 19200 },
    faults: [fault],
    clock,
  });
  cleanups.push(() => server.close());
  const reader = await ModbusReader.connect({
    link: { kind: 'rtu', path: pty.b, baudRate: 19200 },
    unit: 1,
    timeoutMs: 300,
  });
  cleanups.push(() => reader.close());
  return readProfile(reader, profile).catch((error: unknown) => error);
}

describe.skipIf(!RUN_PTY_SUITES)('RTU faults', () => {
  it('decodes a frame that arrives in pieces', async () => {
    const readings = await readWithFault('split');
    if (!Array.isArray(readings)) throw readings;
    const model = new MeterModel(profile, clock);
    for (const { quantity, value } of readings) expect(value).toBeCloseTo(model.value(quantity), 3);
  });

  it.each([
    ['timeout', /no answer within 300 ms$/],
    ['exception', /Modbus exception 4, device failure$/],
    ['crc', /: CRC error$/],
    // A bus master ignores an answer from another unit id, so it sees silence.
    [
      'wrong-unit',
      /^unit 1 at .* at 19200 baud 8N1, input registers \d+\.\.\d+: no answer within 300 ms$/,
    ],
  ] as const)('turns %s into an error naming the meter', async (fault, message) => {
    const failure = await readWithFault(fault);
    expect(isEipError(failure, 'IO_ERROR')).toBe(true);
    expect((failure as Error).message).toMatch(/^unit 1 at /);
    expect((failure as Error).message).toMatch(message);
  });
});
