/**
 * Turns registers into values: the bytes of a quantity's registers, put in big-endian order by
 * its word and byte order, read as its encoding and multiplied by its scale.
 */
import { type Quantity, REGISTERS } from './profile.js';

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
  return raw(quantity, bytes) * quantity.scale;
}

function raw(quantity: Quantity, bytes: Buffer): number {
  switch (quantity.encoding) {
    case 'int16':
      return bytes.readInt16BE(0);
    case 'uint16':
      return bytes.readUInt16BE(0);
    case 'int32':
      return bytes.readInt32BE(0);
    case 'uint32':
      return bytes.readUInt32BE(0);
    case 'float32':
      return bytes.readFloatBE(0);
  }
}

/** The inverse, for simulators and tests: the registers that hold `value` for `quantity`. */
export function encodeQuantity(quantity: Quantity, value: number): number[] {
  const size = REGISTERS[quantity.encoding];
  const bytes = Buffer.alloc(size * 2);
  const scaled =
    quantity.encoding === 'float32' ? value / quantity.scale : Math.round(value / quantity.scale);
  switch (quantity.encoding) {
    case 'int16':
      bytes.writeInt16BE(scaled);
      break;
    case 'uint16':
      bytes.writeUInt16BE(scaled);
      break;
    case 'int32':
      bytes.writeInt32BE(scaled);
      break;
    case 'uint32':
      bytes.writeUInt32BE(scaled);
      break;
    case 'float32':
      bytes.writeFloatBE(scaled);
      break;
  }
  if (quantity.byteOrder === 'little') bytes.swap16();
  const words = Array.from({ length: size }, (_, i) => bytes.readUInt16BE(i * 2));
  return quantity.wordOrder === 'low_first' ? words.reverse() : words;
}
