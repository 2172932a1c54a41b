/**
 * A Modbus bus as the agent keeps it: opened on first use and opened again after it fails, so a
 * USB adapter unplugged at boot or a converter that reboots costs polls, not the agent. Every
 * meter on the bus reads through the one connection, one request in flight (modbus-client.ts).
 */
import { isEipError } from '../../core/errors.js';
import { type Link, ModbusReader } from '../meters/modbus-client.js';
import type { RegisterReader } from '../meters/reader.js';

export class Bus {
  private connection: Promise<ModbusReader> | undefined;

  constructor(
    private readonly link: Link,
    private readonly timeoutMs: number,
  ) {}

  reader(unit: number): RegisterReader {
    return {
      read: async (space, start, count) => {
        const base = await this.connect();
        try {
          return await base.forUnit(unit).read(space, start, count);
        } catch (error) {
          // A port that went away fails every request the same way: reopen next time.
          if (isEipError(error, 'IO_ERROR') && /closed|not open|ENOENT|EIO/i.test(error.message)) {
            await this.reset();
          }
          throw error;
        }
      },
    };
  }

  async close(): Promise<void> {
    await this.reset();
  }

  private connect(): Promise<ModbusReader> {
    if (!this.connection) {
      const opening = ModbusReader.connect({ link: this.link, unit: 1, timeoutMs: this.timeoutMs });
      this.connection = opening;
      opening.catch(() => {
        if (this.connection === opening) this.connection = undefined;
      });
    }
    return this.connection;
  }

  private async reset(): Promise<void> {
    const connection = this.connection;
    this.connection = undefined;
    const reader = await connection?.catch(() => undefined);
    await reader?.close().catch(() => undefined);
  }
}
