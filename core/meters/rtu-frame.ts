/**
 * Modbus RTU read responses, checked byte by byte: CRC-16/MODBUS, function code, exception
 * responses and byte count. Used to check what arrives on a bus and by the simulators to build
 * frames.
 */
import { EipError } from '../errors.js';
import { crc16 } from './crc16.js';

/** CRC-16/MODBUS, sent low byte first. */
export function crc16Modbus(bytes: Uint8Array): number {
  return crc16(bytes, 0xffff);
}

export const FUNCTION_CODES = { holding: 3, input: 4 } as const;

export interface ReadResponse {
  readonly unit: number;
  readonly function: 'holding' | 'input';
  readonly registers: number[];
}

/** A frame body with its CRC appended, low byte first. */
export function appendCrc(body: Uint8Array): Buffer {
  const crc = Buffer.alloc(2);
  crc.writeUInt16LE(crc16Modbus(body));
  return Buffer.concat([body, crc]);
}

export function buildReadResponse(response: ReadResponse): Buffer {
  const body = Buffer.alloc(3 + response.registers.length * 2);
  body[0] = response.unit;
  body[1] = FUNCTION_CODES[response.function];
  body[2] = response.registers.length * 2;
  response.registers.forEach((word, i) => {
    body.writeUInt16BE(word, 3 + i * 2);
  });
  return appendCrc(body);
}

function frameError(message: string, frame: Uint8Array): EipError {
  return new EipError(
    'INVALID_MESSAGE',
    `${message} (frame ${Buffer.from(frame).toString('hex')})`,
    {
      details: { frame: Buffer.from(frame).toString('hex') },
    },
  );
}

/** Parses a complete read response, refusing anything that is not exactly one. */
export function parseReadResponse(frame: Uint8Array): ReadResponse {
  if (frame.length < 5) throw frameError(`RTU frame of ${frame.length} bytes is too short`, frame);
  const body = frame.subarray(0, frame.length - 2);
  const sent = Buffer.from(frame.subarray(frame.length - 2)).readUInt16LE(0);
  if (crc16Modbus(body) !== sent) throw frameError('RTU frame fails its CRC', frame);
  const unit = frame[0] as number;
  const code = frame[1] as number;
  if (code & 0x80) {
    throw new EipError(
      'IO_ERROR',
      `unit ${unit} answered Modbus exception ${frame[2]} to function ${code & 0x7f}`,
      {
        details: { unit, exception: frame[2], function: code & 0x7f },
      },
    );
  }
  const fn = code === 3 ? 'holding' : code === 4 ? 'input' : undefined;
  if (!fn) throw frameError(`RTU frame has function ${code}, not a register read`, frame);
  const byteCount = frame[2] as number;
  if (byteCount % 2 !== 0 || frame.length !== byteCount + 5) {
    throw frameError(
      `RTU frame says ${byteCount} data bytes but carries ${frame.length - 5}`,
      frame,
    );
  }
  const registers = Array.from({ length: byteCount / 2 }, (_, i) =>
    Buffer.from(frame).readUInt16BE(3 + i * 2),
  );
  return { unit, function: fn, registers };
}
