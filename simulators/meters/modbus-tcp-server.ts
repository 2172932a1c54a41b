/**
 * Serves simulated meters over Modbus TCP on loopback (or any host), like an RS-485-to-TCP
 * converter: several unit ids behind one port, each a meter of the same profile. A unit id
 * nobody answers to gets exception 11 (gateway target failed to respond), as converters do.
 */
import { createServer } from 'node:net';
import modbusSerial from 'modbus-serial';
import { EipError } from '../../core/errors.js';
import type { Profile } from '../../core/meters/profile.js';
import { MeterModel } from './meter-model.js';

const { ServerTCP } = modbusSerial;

export interface MeterServerOptions {
  readonly profile: Profile;
  readonly host?: string;
  /** 0 picks a free port. */
  readonly port?: number;
  readonly units?: readonly number[];
  readonly clock?: () => number;
}

export interface MeterServer {
  readonly host: string;
  readonly port: number;
  readonly units: readonly number[];
  close(): Promise<void>;
}

/** A free TCP port on `host`: modbus-serial's server reads port 0 as "the default, 502". */
async function freePort(host: string): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve, reject) => {
    probe.once('error', reject);
    probe.listen(0, host, resolve);
  });
  const address = probe.address();
  await new Promise((resolve) => probe.close(resolve));
  if (address === null || typeof address === 'string') throw new Error('no port from the probe');
  return address.port;
}

export async function startMeterServer(options: MeterServerOptions): Promise<MeterServer> {
  const host = options.host ?? '127.0.0.1';
  const port = options.port || (await freePort(host));
  const units = options.units ?? [1];
  const meters = new Map(
    units.map((unit) => [unit, new MeterModel(options.profile, options.clock)]),
  );
  const answer = (space: 'holding' | 'input') => (addr: number, length: number, unit: number) => {
    const meter = meters.get(unit);
    if (!meter) throw Object.assign(new Error(`no unit ${unit}`), { modbusErrorCode: 11 });
    return meter.registers(space, addr, length);
  };
  const server = new ServerTCP(
    {
      getMultipleHoldingRegisters: answer('holding'),
      getMultipleInputRegisters: answer('input'),
      // modbus-serial asks the single-register form for reads of one register.
      getHoldingRegister: (addr: number, unit: number) => answer('holding')(addr, 1, unit)[0] ?? 0,
      getInputRegister: (addr: number, unit: number) => answer('input')(addr, 1, unit)[0] ?? 0,
    },
    // 255: answer every unit id, and let the vector decide which exist.
    { host, port, unitID: 255 },
  );
  await new Promise<void>((resolve, reject) => {
    server.once('initialized', () => resolve());
    server.once('serverError', (error: Error) =>
      reject(
        new EipError('IO_ERROR', `cannot serve Modbus TCP on ${host}:${port}: ${error.message}`, {
          cause: error,
        }),
      ),
    );
  });
  return {
    host,
    port,
    units,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
