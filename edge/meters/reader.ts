/**
 * Reading a meter: the planned requests go out one at a time (one request in flight per
 * connection, as a bus requires), and the answers are decoded into the profile's quantities.
 * The transport is a seam: Modbus TCP here, RTU and fakes elsewhere.
 */
import { decodeQuantity } from '../../core/meters/decode.js';
import { planReads } from '../../core/meters/plan.js';
import { type Profile, type Quantity, quantities } from '../../core/meters/profile.js';

export interface RegisterReader {
  /** `count` registers from `start` of the given space, as unsigned 16-bit numbers. */
  read(space: 'holding' | 'input', start: number, count: number): Promise<number[]>;
}

export interface Reading {
  readonly quantity: Quantity;
  readonly value: number;
}

export async function readProfile(reader: RegisterReader, profile: Profile): Promise<Reading[]> {
  const readings: Reading[] = [];
  for (const request of planReads(
    quantities(profile),
    profile.max_registers_per_request,
    profile.max_gap_registers,
  )) {
    const registers = await reader.read(request.function, request.start, request.count);
    for (const quantity of request.quantities) {
      readings.push({ quantity, value: decodeQuantity(quantity, registers, request.start) });
    }
  }
  return readings;
}
