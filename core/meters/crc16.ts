/**
 * The reflected CRC-16 with polynomial 0xA001 that both meter links use: Modbus RTU starts it at
 * 0xFFFF (CRC-16/MODBUS), DSMR P1 at 0 (CRC-16/ARC).
 */
export function crc16(bytes: Uint8Array, init: 0 | 0xffff): number {
  let crc: number = init;
  for (const byte of bytes) {
    crc ^= byte;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0xa001 : crc >>> 1;
  }
  return crc;
}
