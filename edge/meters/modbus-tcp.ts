/**
 * Modbus TCP, also through RS-485-to-TCP converters that put several unit ids behind one address:
 * one connection per address, the unit id chosen per request. Errors say which meter and why.
 */
import modbusSerial from 'modbus-serial';
import { EipError } from '../../core/errors.js';
import type { RegisterReader } from './reader.js';

// A CommonJS package: its class is the module's `default` property under Node's ESM loader.
const { default: ModbusRTU } = modbusSerial;
type ModbusClient = InstanceType<typeof ModbusRTU>;

export interface TcpTarget {
  readonly host: string;
  readonly port: number;
  readonly unit: number;
  /** Per request; a converter in front of a slow RS-485 bus needs more than a LAN meter. */
  readonly timeoutMs?: number;
}

/** Modbus exception codes, as an installer reads them in a manual. */
const EXCEPTIONS: Partial<Record<number, string>> = {
  1: 'illegal function',
  2: 'illegal data address (is the profile right for this meter?)',
  3: 'illegal data value',
  4: 'device failure',
  10: 'gateway path unavailable',
  11: 'gateway target failed to respond (no meter with this unit id behind the converter?)',
};

export class ModbusTcpReader implements RegisterReader {
  private constructor(
    private readonly client: ModbusClient,
    private readonly target: TcpTarget,
  ) {}

  static async connect(target: TcpTarget): Promise<ModbusTcpReader> {
    const client = new ModbusRTU();
    client.setTimeout(target.timeoutMs ?? 1000);
    try {
      await client.connectTCP(target.host, { port: target.port });
    } catch (error) {
      throw new EipError(
        'IO_ERROR',
        `cannot connect to Modbus TCP ${target.host}:${target.port}: ${(error as Error).message}`,
        { cause: error, retryable: true },
      );
    }
    client.setID(target.unit);
    return new ModbusTcpReader(client, target);
  }

  async read(space: 'holding' | 'input', start: number, count: number): Promise<number[]> {
    try {
      const result =
        space === 'holding'
          ? await this.client.readHoldingRegisters(start, count)
          : await this.client.readInputRegisters(start, count);
      return result.data;
    } catch (error) {
      throw this.explain(error, space, start, count);
    }
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.client.isOpen) {
        resolve();
        return;
      }
      this.client.close(() => resolve());
    });
  }

  private explain(error: unknown, space: string, start: number, count: number): EipError {
    const { host, port, unit } = this.target;
    const where = `unit ${unit} at ${host}:${port}, ${space} registers ${start}..${start + count - 1}`;
    const code = (error as { modbusCode?: number }).modbusCode;
    if (code !== undefined) {
      return new EipError(
        'IO_ERROR',
        `${where}: Modbus exception ${code}, ${EXCEPTIONS[code] ?? 'unknown'}`,
        {
          cause: error,
          details: { exception: code },
        },
      );
    }
    const timedOut = (error as { errno?: string }).errno === 'ETIMEDOUT';
    return new EipError(
      'IO_ERROR',
      `${where}: ${timedOut ? `no answer within ${this.target.timeoutMs ?? 1000} ms` : (error as Error).message}`,
      { cause: error, retryable: true },
    );
  }
}
