/**
 * Turns registers into values: the bytes of a quantity's registers, put in big-endian order by
 * its word and byte order, read as its encoding and multiplied by its scale.
 */
import { type Encoding, type Quantity, REGISTERS } from './profile.js';

/**
 * The value of `quantity` from `registers`, which start at register `start` (as a Modbus read
 * response returns them: one unsigned 16-bit number per register).
 */
export function decodeQuantity(
  quantity: Quantity,
  registers: readonly number[],
  start: number,
): number {
  const size = REGISTERS[quantity.encoding];
  const offset = quantity.register - start;
  if (offset < 0 || offset + size > registers.length) {
    throw new RangeError(
      `${quantity.name} (register ${quantity.register}, ${size} registers) is outside the read of ${registers.length} registers from ${start}`,
    );
  }
  const words = registers.slice(offset, offset + size);
  if (quantity.wordOrder === 'low_first') words.reverse();
  const bytes = Buffer.alloc(size * 2);
  words.forEach((word, i) => {
    bytes.writeUInt16BE(word & 0xffff, i * 2);
  });
  if (quantity.byteOrder === 'little') bytes.swap16();
  return CODECS[quantity.encoding].read(bytes) * quantity.scale;
}

/** How each encoding reads from and writes to big-endian bytes. */
const CODECS: Readonly<
  Record<Encoding, { read(bytes: Buffer): number; write(bytes: Buffer, value: number): void }>
> = {
  int16: { read: (b) => b.readInt16BE(0), write: (b, v) => void b.writeInt16BE(v) },
  uint16: { read: (b) => b.readUInt16BE(0), write: (b, v) => void b.writeUInt16BE(v) },
  int32: { read: (b) => b.readInt32BE(0), write: (b, v) => void b.writeInt32BE(v) },
  uint32: { read: (b) => b.readUInt32BE(0), write: (b, v) => void b.writeUInt32BE(v) },
  float32: { read: (b) => b.readFloatBE(0), write: (b, v) => void b.writeFloatBE(v) },
};

/** The inverse, for simulators and tests: the registers that hold `value` for `quantity`. */
export function encodeQuantity(quantity: Quantity, value: number): number[] {
  const size = REGISTERS[quantity.encoding];
  const bytes = Buffer.alloc(size * 2);
  const scaled =
    quantity.encoding === 'float32' ? value / quantity.scale : Math.round(value / quantity.scale);
  CODECS[quantity.encoding].write(bytes, scaled);
  if (quantity.byteOrder === 'little') bytes.swap16();
  const words = Array.from({ length: size }, (_, i) => bytes.readUInt16BE(i * 2));
  return quantity.wordOrder === 'low_first' ? words.reverse() : words;
}
