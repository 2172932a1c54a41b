/**
 * Which unit ids answer on one link. A unit answers if it returns registers or any Modbus
 * exception of its own (an exception proves a device is there); a converter's "target failed to
 * respond" (10, 11) and silence mean nobody is. One unit at a time, on one connection.
 */
import { isEipError } from '../../core/errors.js';
import { type Link, ModbusReader } from './modbus-client.js';

export interface ScanOptions {
  readonly link: Link;
  readonly units: readonly number[];
  readonly timeoutMs: number;
  readonly onProgress?: (tried: number, total: number) => void;
}

export async function scanUnits(options: ScanOptions): Promise<number[]> {
  const found: number[] = [];
  const first = options.units[0];
  if (first === undefined) return found;
  const bus = await ModbusReader.connect({
    link: options.link,
    unit: first,
    timeoutMs: options.timeoutMs,
  });
  try {
    let tried = 0;
    for (const unit of options.units) {
      try {
        await bus.forUnit(unit).read('holding', 0, 1);
        found.push(unit);
      } catch (error) {
        const exception = isEipError(error) ? error.details.exception : undefined;
        if (typeof exception === 'number' && exception !== 10 && exception !== 11) found.push(unit);
      }
      options.onProgress?.(++tried, options.units.length);
    }
  } finally {
    await bus.close();
  }
  return found;
}
