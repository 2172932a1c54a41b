/**
 * Modbus reads over TCP (meters, and RS-485-to-TCP converters with several unit ids behind one
 * address) or RTU on a serial line (RS-485). One connection serves every unit id on it, and only
 * one request is ever in flight on it: a bus cannot carry two. Errors say which meter and why.
 */
import modbusSerial from 'modbus-serial';
import { EipError } from '../../core/errors.js';
import type { RegisterReader } from './reader.js';
import { type Framing, serialFraming } from './serial-line.js';

// A CommonJS package: its class is the module's `default` property under Node's ESM loader.
const { default: ModbusRTU } = modbusSerial;
type ModbusClient = InstanceType<typeof ModbusRTU>;

export type Link =
  | { readonly kind: 'tcp'; readonly host: string; readonly port: number }
  | {
      readonly kind: 'rtu';
      readonly path: string;
      readonly baudRate: number;
      /** 8N1 when not given; many meters (Aquametro CALEC ST, for one) ship with 8E1. */
      readonly framing?: Framing;
    };

export interface ModbusTarget {
  readonly link: Link;
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

export function describeLink(link: Link): string {
  return link.kind === 'tcp'
    ? `${link.host}:${link.port}`
    : `${link.path} at ${link.baudRate} baud ${link.framing ?? '8N1'}`;
}

/** The connection and the queue that keeps one request in flight, shared by every unit on it. */
interface Connection {
  readonly client: ModbusClient;
  readonly link: Link;
  readonly timeoutMs: number;
  queue: Promise<unknown>;
}

export class ModbusReader implements RegisterReader {
  private constructor(
    private readonly connection: Connection,
    readonly unit: number,
  ) {}

  static async connect(target: ModbusTarget): Promise<ModbusReader> {
    const client = new ModbusRTU();
    const timeoutMs = target.timeoutMs ?? 1000;
    client.setTimeout(timeoutMs);
    const { link } = target;
    try {
      if (link.kind === 'tcp') await client.connectTCP(link.host, { port: link.port });
      else
        await client.connectRTUBuffered(link.path, {
          baudRate: link.baudRate,
          ...serialFraming(link.framing ?? '8N1'),
        });
    } catch (error) {
      throw new EipError(
        'IO_ERROR',
        `cannot open Modbus ${link.kind.toUpperCase()} ${describeLink(link)}: ${(error as Error).message}`,
        { cause: error, retryable: true },
      );
    }
    return new ModbusReader({ client, link, timeoutMs, queue: Promise.resolve() }, target.unit);
  }

  /** A reader of another unit id on the same connection (the same bus). */
  forUnit(unit: number): ModbusReader {
    return new ModbusReader(this.connection, unit);
  }

  read(space: 'holding' | 'input', start: number, count: number): Promise<number[]> {
    const { client } = this.connection;
    const request = this.connection.queue.then(async () => {
      client.setID(this.unit);
      try {
        const result =
          space === 'holding'
            ? await client.readHoldingRegisters(start, count)
            : await client.readInputRegisters(start, count);
        return result.data;
      } catch (error) {
        throw this.explain(error, space, start, count);
      }
    });
    // The next request waits for this one, whatever its outcome.
    this.connection.queue = request.catch(() => undefined);
    return request;
  }

  close(): Promise<void> {
    const { client } = this.connection;
    return new Promise((resolve) => {
      if (!client.isOpen) {
        resolve();
        return;
      }
      client.close(() => resolve());
    });
  }

  private explain(error: unknown, space: string, start: number, count: number): EipError {
    const where = `unit ${this.unit} at ${describeLink(this.connection.link)}, ${space} registers ${start}..${start + count - 1}`;
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
      `${where}: ${timedOut ? `no answer within ${this.connection.timeoutMs} ms` : (error as Error).message}`,
      { cause: error, retryable: true },
    );
  }
}
