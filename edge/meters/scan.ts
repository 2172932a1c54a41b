/**
 * Which unit ids answer at one Modbus TCP address. A unit answers if it returns registers or any
 * Modbus exception of its own (an exception proves a device is there); a converter's "target
 * failed to respond" (10, 11) and silence mean nobody is. One unit at a time, like the bus.
 */
import { isEipError } from '../../core/errors.js';
import { ModbusTcpReader } from './modbus-tcp.js';

export interface ScanOptions {
  readonly host: string;
  readonly port: number;
  readonly units: readonly number[];
  readonly timeoutMs: number;
  readonly onProgress?: (tried: number, total: number) => void;
}

export async function scanUnits(options: ScanOptions): Promise<number[]> {
  const found: number[] = [];
  let tried = 0;
  for (const unit of options.units) {
    const reader = await ModbusTcpReader.connect({ ...options, unit });
    try {
      await reader.read('holding', 0, 1);
      found.push(unit);
    } catch (error) {
      const exception = isEipError(error) ? error.details.exception : undefined;
      if (typeof exception === 'number' && exception !== 10 && exception !== 11) found.push(unit);
    } finally {
      await reader.close();
    }
    options.onProgress?.(++tried, options.units.length);
  }
  return found;
}
