/**
 * Simulated meters on an RS-485 bus, answering Modbus RTU on a serial device with the timing of
 * a real bus: every answer lands after the request's and the answer's transmission time at the
 * configured baud plus the 3.5-character silence that ends a frame, so a pseudo-terminal (which
 * has no baud rate of its own) behaves like a 9600-baud line. Faults can be injected: silence,
 * a corrupted CRC, a Modbus exception, an answer from the wrong unit id, or a frame delivered in
 * pieces.
 */
import { SerialPort } from 'serialport';
import type { Profile } from '../../core/meters/profile.js';
import { appendCrc, buildReadResponse, crc16Modbus } from '../../core/meters/rtu-frame.js';
import type { Curve } from './curve.js';
import { MeterModel } from './meter-model.js';

export const FAULTS = ['timeout', 'crc', 'exception', 'wrong-unit', 'split'] as const;
export type Fault = (typeof FAULTS)[number];

export interface RtuSlaveOptions {
  readonly profile: Profile;
  readonly path: string;
  readonly baudRate: number;
  readonly units: readonly number[];
  /** Faults to inject, each on a share `faultRate` of answers (1: every answer). */
  readonly faults?: readonly Fault[];
  readonly faultRate?: number;
  readonly random?: () => number;
  readonly clock?: () => number;
  /** The simulated load over the day (see curve.ts); the profile's typical load without one. */
  readonly curve?: Curve;
}

export interface RtuSlave {
  readonly requests: number;
  close(): Promise<void>;
}

/** Bits per character of 8N1 framing: start, 8 data, stop. */
const BITS_PER_CHAR = 10;
const REQUEST_BYTES = 8;

/** Seconds one character occupies the bus. */
export function charTime(baudRate: number): number {
  return BITS_PER_CHAR / baudRate;
}

export async function startRtuSlave(options: RtuSlaveOptions): Promise<RtuSlave> {
  const meters = new Map(
    options.units.map((unit) => [
      unit,
      new MeterModel(options.profile, options.clock, options.curve),
    ]),
  );
  const random = options.random ?? Math.random;
  const faultRate = options.faultRate ?? 1;
  const port = new SerialPort({ path: options.path, baudRate: options.baudRate, autoOpen: false });
  await new Promise<void>((resolve, reject) =>
    port.open((error) => (error ? reject(error) : resolve())),
  );
  const char = charTime(options.baudRate) * 1000;
  let pending = Buffer.alloc(0);
  let requests = 0;
  let busyUntil = 0;

  const fault = (kind: Fault) => (options.faults ?? []).includes(kind) && random() < faultRate;

  const answer = (request: Buffer): Buffer | undefined => {
    const unit = request[0] as number;
    const code = request[1] as number;
    const meter = meters.get(unit);
    if (!meter) return undefined; // not on this bus: silence
    if (fault('timeout')) return undefined;
    const start = request.readUInt16BE(2);
    const count = request.readUInt16BE(4);
    const space = code === 3 ? 'holding' : code === 4 ? 'input' : undefined;
    let frame: Buffer;
    if (!space || fault('exception')) {
      frame = appendCrc(Buffer.from([unit, code | 0x80, space ? 4 : 1]));
    } else {
      try {
        frame = buildReadResponse({
          unit: fault('wrong-unit') ? (unit % 247) + 1 : unit,
          function: space,
          registers: meter.registers(space, start, count),
        });
      } catch (error) {
        const exception = (error as { modbusErrorCode?: number }).modbusErrorCode ?? 4;
        frame = appendCrc(Buffer.from([unit, code | 0x80, exception]));
      }
    }
    if (fault('crc')) frame[frame.length - 1] = (frame[frame.length - 1] as number) ^ 0xff;
    return frame;
  };

  const send = (frame: Buffer) => {
    // The bus is busy for the request, the silence after it, and the answer itself.
    const now = Date.now();
    const at = Math.max(now, busyUntil) + (REQUEST_BYTES + 3.5 + frame.length) * char;
    busyUntil = at + 3.5 * char;
    const pieces = fault('split')
      ? [
          frame.subarray(0, Math.ceil(frame.length / 3)),
          frame.subarray(Math.ceil(frame.length / 3)),
        ]
      : [frame];
    pieces.forEach((piece, i) => {
      setTimeout(() => port.write(piece), Math.max(0, at - now) + i * 5 * char);
    });
  };

  port.on('data', (chunk: Buffer) => {
    pending = Buffer.concat([pending, chunk]);
    // Every request this simulator answers (functions 3 and 4) is eight bytes long.
    while (pending.length >= REQUEST_BYTES) {
      const request = pending.subarray(0, REQUEST_BYTES);
      pending = pending.subarray(REQUEST_BYTES);
      if (crc16Modbus(request.subarray(0, 6)) !== request.readUInt16LE(6)) {
        // A slave ignores a frame with a bad CRC; resynchronise on what follows.
        pending = Buffer.alloc(0);
        continue;
      }
      requests++;
      const frame = answer(Buffer.from(request));
      if (frame) send(frame);
    }
  });

  return {
    get requests() {
      return requests;
    },
    close: () =>
      new Promise<void>((resolve) => {
        if (!port.isOpen) resolve();
        else port.close(() => resolve());
      }),
  };
}
