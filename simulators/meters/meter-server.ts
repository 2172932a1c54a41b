/**
 * Serves simulated meters of one profile over Modbus TCP (like an RS-485-to-TCP converter:
 * several unit ids behind one port) or Modbus RTU on a serial device (a pseudo-terminal in
 * tests; see rtu-slave.ts for its bus timing and faults). A unit id nobody answers to gets
 * exception 11 over TCP, as converters answer, and silence on RTU, as a real bus gives.
 */
import { createServer } from 'node:net';
import modbusSerial from 'modbus-serial';
import { EipError } from '../../core/errors.js';
import type { Profile } from '../../core/meters/profile.js';
import { describeLink, type Link } from '../../edge/meters/modbus-client.js';
import type { Curve } from './curve.js';
import { MeterModel } from './meter-model.js';
import { type Fault, startRtuSlave } from './rtu-slave.js';

const { ServerTCP } = modbusSerial;

export interface MeterServerOptions {
  readonly profile: Profile;
  /** TCP port 0 picks a free port. */
  readonly link: Link;
  readonly units?: readonly number[];
  readonly clock?: () => number;
  /** RTU only: faults to inject on a share `faultRate` of answers. */
  readonly faults?: readonly Fault[];
  readonly faultRate?: number;
  /** The meters' rate over the day (see MeterModel), over TCP and RTU alike. */
  readonly curve?: Curve;
}

export interface MeterServer {
  /** The link as served: with the port chosen when 0 was asked. */
  readonly link: Link;
  readonly units: readonly number[];
  close(): Promise<void>;
}

type Callback<T> = (error: Error | null, value: T) => void;

/** A free TCP port on `host`: modbus-serial's server reads port 0 as "the default, 502". */
export async function freePort(host = '127.0.0.1'): Promise<number> {
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
  const units = options.units ?? [1];
  if (options.link.kind === 'rtu') {
    const { link } = options;
    const slave = await startRtuSlave({
      profile: options.profile,
      path: link.path,
      baudRate: link.baudRate,
      units,
      ...(options.faults && { faults: options.faults }),
      ...(options.faultRate !== undefined && { faultRate: options.faultRate }),
      ...(options.clock && { clock: options.clock }),
      ...(options.curve && { curve: options.curve }),
    }).catch((error: unknown) => {
      throw new EipError(
        'IO_ERROR',
        `cannot serve Modbus on ${describeLink(link)}: ${(error as Error).message}`,
        {
          cause: error,
        },
      );
    });
    return { link, units, close: () => slave.close() };
  }
  const meters = new Map(
    units.map((unit) => [unit, new MeterModel(options.profile, options.clock, options.curve)]),
  );
  const answer =
    (space: 'holding' | 'input') =>
    (addr: number, length: number, unit: number, callback: Callback<number[]>) => {
      const meter = meters.get(unit);
      if (!meter) {
        callback(Object.assign(new Error(`no unit ${unit}`), { modbusErrorCode: 11 }), []);
        return;
      }
      try {
        callback(null, meter.registers(space, addr, length));
      } catch (error) {
        callback(error as Error, []);
      }
    };
  const one =
    (space: 'holding' | 'input') => (addr: number, unit: number, callback: Callback<number>) =>
      answer(space)(addr, 1, unit, (error, values) => callback(error, values[0] ?? 0));
  const vector = {
    getMultipleHoldingRegisters: answer('holding'),
    getMultipleInputRegisters: answer('input'),
    // modbus-serial asks the single-register form for reads of one register.
    getHoldingRegister: one('holding'),
    getInputRegister: one('input'),
  };

  const link: Link =
    options.link.port === 0
      ? { ...options.link, port: await freePort(options.link.host) }
      : options.link;
  // 255: answer every unit id, and let the vector decide which exist.
  const server = new ServerTCP(vector, { host: link.host, port: link.port, unitID: 255 });
  await new Promise<void>((resolve, reject) => {
    server.once('initialized', () => resolve());
    const fail = (error: Error) =>
      reject(
        new EipError('IO_ERROR', `cannot serve Modbus on ${describeLink(link)}: ${error.message}`, {
          cause: error,
        }),
      );
    server.once('serverError', fail);
    server.once('error', fail);
  });
  return {
    link,
    units,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
