/** `eip-edge` as an installer uses it, against simulated meters over real Modbus TCP. */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../edge/cli/program.js';
import { describeLink, ModbusReader } from '../../edge/meters/modbus-client.js';
import { loadProfile } from '../../edge/meters/profiles.js';
import { readProfile } from '../../edge/meters/reader.js';
import { type MeterServer, startMeterServer } from '../../simulators/meters/meter-server.js';
import { startP1Sim } from '../../simulators/meters/p1-sim.js';
import { capture } from '../support/capture.js';
import { openPtyPair, RUN_PTY_SUITES } from '../support/pty-pair.js';

function run(argv: string[]) {
  return capture((io) => main(argv, io));
}

let server: MeterServer;
let address: string;

beforeAll(async () => {
  server = await startMeterServer({
    profile: loadProfile('eastron-sdm120'),
    link: { kind: 'tcp', host: '127.0.0.1', port: 0 },
    units: [1, 5],
    clock: () => 0,
  });
  address = describeLink(server.link);
});
afterAll(async () => {
  await server?.close();
});

describe('eip-edge read', () => {
  it('prints every quantity with its unit', async () => {
    const { code, stdout } = await run([
      'read',
      '--profile',
      'eastron-sdm120',
      '--tcp',
      address,
      '--unit',
      '5',
    ]);
    expect(code).toBe(0);
    expect(stdout).toMatch(new RegExp(`^Eastron SDM120-Modbus, unit 5 at ${address}\\n`));
    expect(stdout).toMatch(/\nvoltage +230 +V\n/);
    expect(stdout).toMatch(/\ntotal_energy +1000 +kWh\n$/);
  });

  it('prints {quantity: value} with --json, in the profile units', async () => {
    const { code, stdout } = await run([
      'read',
      '--profile',
      'eastron-sdm120',
      '--tcp',
      address,
      '--json',
    ]);
    expect(code).toBe(0);
    const values = JSON.parse(stdout) as Record<string, number>;
    expect(Object.keys(values)).toHaveLength(10);
    expect(values.voltage).toBe(230);
    expect(values.frequency).toBe(50);
  });

  it('refuses bad input with one line naming it', async () => {
    for (const [argv, message, exit] of [
      [
        ['--profile', 'sdm9', '--tcp', address],
        /^eip-edge: unknown meter profile "sdm9"; known: /,
        2,
      ],
      [
        ['--profile', 'eastron-sdm120', '--tcp', 'meter'],
        /^eip-edge: --tcp: "meter" is not HOST:PORT/,
        2,
      ],
      [
        ['--profile', 'eastron-sdm120', '--tcp', address, '--unit', '0'],
        /--unit: "0" is not a Modbus unit id from 1 to 247/,
        2,
      ],
      [
        ['--profile', 'eastron-sdm120', '--tcp', address, '--unit', '9'],
        /^eip-edge: unit 9 at .*: Modbus exception 11, gateway target failed to respond/,
        1,
      ],
      [
        ['--profile', 'eastron-sdm120', '--tcp', '127.0.0.1:1'],
        /^eip-edge: cannot open Modbus TCP 127\.0\.0\.1:1: /,
        1,
      ],
    ] as const) {
      const result = await run(['read', ...argv]);
      expect(result.stderr).toMatch(message);
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
      expect(result.code).toBe(exit);
    }
  });
});

describe('eip-edge scan and profiles', () => {
  it('lists the unit ids that answer', async () => {
    const { code, stdout, stderr } = await run(['scan', '--tcp', address, '--units', '1-8']);
    expect(code).toBe(0);
    expect(stdout).toBe('1\n5\n');
    expect(stderr).toMatch(/2 unit id\(s\) answered/);
  });

  it('lists the shipped profiles', async () => {
    const { stdout } = await run(['profiles']);
    expect(stdout).toMatch(/eastron-sdm630 +Eastron SDM630-Modbus V2 +electricity +14\n/);
  });
});

describe('eip-sim meter', () => {
  it('serves a profile until stopped, on the port it names', async () => {
    const bin = join(import.meta.dirname, '../../dist/simulators/cli/main.js');
    const child = spawn(bin, [
      'meter',
      '--profile',
      'carlo-gavazzi-em24',
      '--tcp',
      '0',
      '--units',
      '1-2',
    ]);
    try {
      const line = await new Promise<string>((resolve, reject) => {
        child.once('exit', (code) => reject(new Error(`exited ${code}`)));
        createInterface({ input: child.stderr }).once('line', resolve);
      });
      const match =
        /^eip-sim: carlo-gavazzi-em24 units 1,2 on 127\.0\.0\.1:(\d+) \(Ctrl-C stops\)$/.exec(line);
      expect(match).not.toBeNull();
      const reader = await ModbusReader.connect({
        link: { kind: 'tcp', host: '127.0.0.1', port: Number(match?.[1]) },
        unit: 2,
      });
      const readings = await readProfile(reader, loadProfile('carlo-gavazzi-em24'));
      await reader.close();
      expect(readings.find((r) => r.quantity.name === 'frequency')?.value).toBeCloseTo(50, 6);
    } finally {
      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    }
  });
});

describe.skipIf(!RUN_PTY_SUITES)('eip-edge on an RS-485 bus (pseudo-terminal)', () => {
  it('reads a meter with --rtu and refuses a baud rate meters do not use', async () => {
    const pty = await openPtyPair();
    const bus = await startMeterServer({
      profile: loadProfile('carlo-gavazzi-em24'),
      link: { kind: 'rtu', path: pty.a, baudRate: 19200 },
      units: [3],
    });
    try {
      const argv = [
        'read',
        '--profile',
        'carlo-gavazzi-em24',
        '--rtu',
        pty.b,
        '--baud',
        '19200',
        '--unit',
        '3',
      ];
      const { code, stdout } = await run([...argv, '--json']);
      expect(code).toBe(0);
      expect(JSON.parse(stdout)).toMatchObject({ frequency: 50, voltage_l1: 230 });
      // A pseudo-terminal carries no parity bit, so this shows the framing reaches the port, as
      // the table's heading says; on a real line it must match the meter's.
      const even = await run([...argv, '--framing', '8e1']);
      expect(even.code).toBe(0);
      expect(even.stdout).toContain(`unit 3 at ${pty.b} at 19200 baud 8E1`);
      const odd = await run([...argv, '--framing', '7E1']);
      expect(odd.stderr).toBe('eip-edge: --framing: "7E1" is not one of 8N1, 8E1, 8O1, 8N2\n');
      const bad = await run([
        'read',
        '--profile',
        'carlo-gavazzi-em24',
        '--rtu',
        pty.b,
        '--baud',
        '9601',
      ]);
      expect(bad.stderr).toMatch(/^eip-edge: --baud: "9601" is not one of 1200, 2400/);
      const both = await run([
        'read',
        '--profile',
        'carlo-gavazzi-em24',
        '--rtu',
        pty.b,
        '--tcp',
        address,
      ]);
      expect(both.stderr).toBe(
        'eip-edge: give the meter as either --tcp HOST:PORT or --rtu DEVICE\n',
      );
    } finally {
      await bus.close();
      await pty.close();
    }
  });
});

describe.skipIf(!RUN_PTY_SUITES)('eip-edge read-p1 (pseudo-terminal)', () => {
  it('shows one telegram, names the refused ones, and says what to check when none comes', async () => {
    const pty = await openPtyPair();
    try {
      const missing = await run(['read-p1', '--device', '/dev/no-such-p1']);
      expect(missing.code).toBe(1);
      expect(missing.stderr).toMatch(
        /^eip-edge: P1 meter at \/dev\/no-such-p1: cannot open the P1 port: .+\n$/,
      );
      const quiet = await run(['read-p1', '--device', pty.b, '--timeout', '300']);
      expect(quiet.code).toBe(1);
      expect(quiet.stderr).toBe(
        `eip-edge: no valid P1 telegram on ${pty.b} within 0.3 s: nothing arrived: is the cable in and the port enabled? a DSMR 2.2/3 meter sends at --baud 9600\n`,
      );
      // The first five telegrams with a broken CRC: the reader names them and waits for a good one.
      let sent = 0;
      const sim = await startP1Sim({
        path: pty.a,
        intervalMs: 100,
        powerW: 1500,
        gasFlowM3PerH: 0.5,
        faults: ['crc'],
        faultRate: 0.5,
        random: () => (sent++ < 5 ? 0 : 0.9),
      });
      try {
        const { code, stdout, stderr } = await run(['read-p1', '--device', pty.b, '--json']);
        expect(code).toBe(0);
        expect(JSON.parse(stdout)).toMatchObject({ power_import: 1.5 });
        expect(stderr).toMatch(/CRC/);
        const table = await run(['read-p1', '--device', pty.b]);
        expect(table.stdout).toMatch(/^P1 meter EIP5SIM-P1 on .+, \d{4}-\d\d-\d\dT/);
        expect(table.stdout).toMatch(/power_import +1\.5 +kW/);
      } finally {
        await sim.close();
      }
    } finally {
      await pty.close();
    }
  });
});
