/**
 * A smart meter's P1 port as a meter source: the meter pushes a telegram every second (DSMR 5;
 * every 10 s before), the source assembles it from the `/` header line to the `!CRC` line and
 * keeps the latest values. What a real line delivers is expected, counted and named with the
 * device, never a crash: starting mid-telegram, noise, CRC failures (the values stay as they
 * were), telegrams cut off or without end (bounded, never buffered without limit), and a port
 * that fails or goes away (reopened with back-off; the values go stale after a silence).
 * Clause numbers are those of the DSMR 5.0.2 P1 companion standard.
 */
import { ReadlineParser } from '@serialport/parser-readline';
import { SerialPort } from 'serialport';
import { EipError, isEipError } from '../../core/errors.js';
import { type P1Telegram, parseP1Telegram, parseP1Time } from '../../core/meters/p1.js';

/** How the serial line is set up. */
export interface P1SerialSettings {
  readonly path: string;
  readonly baudRate: number;
  readonly dataBits: 7 | 8;
  readonly parity: 'none' | 'even' | 'odd';
}

/** The part of an open serial port the source needs; serialport's SerialPort fits. */
export interface P1Port {
  readonly isOpen: boolean;
  on(event: 'data', listener: (chunk: Buffer) => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  /** Also emitted when the device goes away, with the reason. */
  on(event: 'close', listener: (error?: Error | null) => void): unknown;
  close(callback?: (error?: Error | null) => void): unknown;
}

export type P1PortFactory = (settings: P1SerialSettings) => Promise<P1Port>;

/** The line a P1 port runs at its baud rate: 9600 is DSMR 2.2/3 (7E1), 115200 DSMR 4/5 (8N1). */
export function p1Line(baudRate: number) {
  return baudRate === 9600
    ? { baudRate, dataBits: 7 as const, parity: 'even' as const }
    : { baudRate, dataBits: 8 as const, parity: 'none' as const };
}

/** Opens a serial port with serialport (one stop bit, as every DSMR version uses). */
export const openSerialP1Port: P1PortFactory = async (settings) => {
  const port = new SerialPort({ ...settings, stopBits: 1, autoOpen: false });
  await new Promise<void>((resolve, reject) =>
    port.open((error) => (error ? reject(error) : resolve())),
  );
  return port;
};

export interface P1SourceOptions {
  /** The serial device the P1 cable is on, e.g. /dev/ttyUSB0. */
  readonly path: string;
  /**
   * Line settings. DSMR 4 and 5 send at 115200 baud 8N1 (§6.1), the defaults; DSMR 2.2 and 3
   * meters at 9600 baud 7E1 (baudRate 9600, dataBits 7, parity 'even').
   */
  readonly baudRate?: number;
  readonly dataBits?: 7 | 8;
  readonly parity?: 'none' | 'even' | 'odd';
  /** How often the meter sends: 1000 ms in DSMR 5 (the default), 10000 ms before. */
  readonly telegramIntervalMs?: number;
  /** Silence after which the latest values are stale; three telegram intervals by default. */
  readonly staleAfterMs?: number;
  /** A telegram (or a line) longer than this is discarded; 8 KiB by default. */
  readonly maxTelegramBytes?: number;
  /** Back-off of reopening a lost port: doubles from the first delay up to the last. */
  readonly reopenInitialMs?: number;
  readonly reopenMaxMs?: number;
  /** Called with every telegram that passed its CRC. */
  readonly onTelegram?: (reading: P1Reading) => void;
  /** Called with every telegram refused and every port failure, each naming the device. */
  readonly onError?: (error: EipError) => void;
  /** Opens the port; serialport by default, a fake in tests. */
  readonly openPort?: P1PortFactory;
  readonly now?: () => number;
}

export interface P1Reading {
  /** The meter's identification line after `/`. */
  readonly header: string;
  /** Values by name with their units: electricity_import_t1 (kWh), power_import (kW), gas (m3)... */
  readonly values: P1Telegram['values'];
  /** The telegram's own time (0-0:1.0.0) when it has one, else when it arrived; ms since epoch. */
  readonly measuredAt: number;
  readonly receivedAt: number;
  /** When the gas meter captured `gas` (0-n:24.2.1), ms since epoch. */
  readonly gasMeasuredAt?: number;
}

export interface P1Latest extends P1Reading {
  /** Nothing has arrived for longer than staleAfterMs: the values are old. */
  readonly stale: boolean;
}

export interface P1Counters {
  /** Telegrams that passed their CRC and were read. */
  telegrams: number;
  crc_errors: number;
  /** Telegrams cut off, longer than the bound, or with a value that cannot be read. */
  malformed: number;
  /** Times the port was opened again after it failed or went away. */
  reopens: number;
  /** Port failures: errors, the device going away, and attempts to open it that failed. */
  port_errors: number;
}

/** A meter's header: `/`, three letters naming the manufacturer, the baud-rate digit (§6.12). */
const HEADER = /\/[A-Za-z]{3}\d/g;

/**
 * Lines in, whole telegrams out: from the header line to the `!` line, within a byte bound. Lines
 * come with their CR LF, so the telegram is the bytes as they arrived, empty lines included, and
 * its CRC is checked over exactly what the meter sent.
 */
class TelegramAssembler {
  private text: string | undefined;

  constructor(private readonly maxBytes: number) {}

  /**
   * Takes one line. Returns a whole telegram, the reason a begun one was dropped, or nothing. A
   * header is looked for anywhere in the line, the last one counting: noise or a telegram cut
   * off without a line end runs straight into the next header.
   */
  push(line: string): { telegram: string } | { dropped: string } | undefined {
    const header = [...line.matchAll(HEADER)].at(-1);
    if (header) {
      const cutOff =
        this.text !== undefined &&
        `telegram cut off after ${this.text.length} bytes by the next one`;
      this.text = line.slice(header.index);
      return cutOff ? { dropped: cutOff } : undefined;
    }
    if (this.text === undefined) return undefined; // mid-telegram at start, or noise
    this.text += line;
    if (this.text.length > this.maxBytes) {
      this.reset();
      return { dropped: `telegram longer than ${this.maxBytes} bytes` };
    }
    if (!line.startsWith('!')) return undefined;
    const telegram = this.text;
    this.reset();
    return { telegram };
  }

  reset(): void {
    this.text = undefined;
  }
}

export class P1Source {
  readonly counters: P1Counters = {
    telegrams: 0,
    crc_errors: 0,
    malformed: 0,
    reopens: 0,
    port_errors: 0,
  };
  private readonly settings: P1SerialSettings;
  private readonly staleAfterMs: number;
  private readonly maxTelegramBytes: number;
  private readonly reopenInitialMs: number;
  private readonly reopenMaxMs: number;
  private readonly openPort: P1PortFactory;
  private readonly now: () => number;
  private readonly assembler: TelegramAssembler;
  private port: P1Port | undefined;
  private reading: P1Reading | undefined;
  private reopenTimer: NodeJS.Timeout | undefined;
  private failedOpens = 0;
  private stopped = false;

  constructor(private readonly options: P1SourceOptions) {
    this.settings = {
      path: options.path,
      baudRate: options.baudRate ?? 115200,
      dataBits: options.dataBits ?? 8,
      parity: options.parity ?? 'none',
    };
    this.staleAfterMs = options.staleAfterMs ?? 3 * (options.telegramIntervalMs ?? 1000);
    this.maxTelegramBytes = options.maxTelegramBytes ?? 8192;
    this.reopenInitialMs = options.reopenInitialMs ?? 1000;
    this.reopenMaxMs = options.reopenMaxMs ?? 30_000;
    this.openPort = options.openPort ?? openSerialP1Port;
    this.now = options.now ?? Date.now;
    this.assembler = new TelegramAssembler(this.maxTelegramBytes);
  }

  /**
   * Opens the port. A first open that fails rejects, as a retryable IO_ERROR, so a wrong device
   * path shows at once; like every later loss of the port it is retried with back-off until
   * stop(), so a USB adapter that appears late at boot is still picked up.
   */
  async start(): Promise<void> {
    this.stopped = false;
    try {
      this.attach(await this.open());
    } catch (error) {
      this.scheduleReopen();
      throw error;
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.reopenTimer);
    const port = this.port;
    this.port = undefined;
    if (port?.isOpen) await new Promise<void>((resolve) => port.close(() => resolve()));
  }

  /** The values of the last good telegram, or undefined before the first one. */
  latest(): P1Latest | undefined {
    if (!this.reading) return undefined;
    return { ...this.reading, stale: this.now() - this.reading.receivedAt > this.staleAfterMs };
  }

  private async open(): Promise<P1Port> {
    try {
      return await this.openPort(this.settings);
    } catch (error) {
      this.counters.port_errors++;
      throw this.ioError(`cannot open the P1 port: ${(error as Error).message}`, error);
    }
  }

  private attach(port: P1Port): void {
    this.port = port;
    this.assembler.reset();
    const lines = new ReadlineParser({
      delimiter: '\r\n',
      includeDelimiter: true,
      encoding: 'latin1',
    });
    // Lines still in the splitter of a port that was lost belong to no telegram.
    lines.on('data', (line: string) => this.port === port && this.line(line));
    port.on('data', (chunk) => {
      lines.write(chunk);
      // The line splitter keeps what has no CR LF yet; on a line of noise that never ends it
      // would grow without limit.
      if (lines.buffer.length > this.maxTelegramBytes) {
        lines.buffer = Buffer.alloc(0);
        this.assembler.reset();
        this.refuse('malformed', `a line longer than ${this.maxTelegramBytes} bytes`);
      }
    });
    port.on('error', (error) => this.lost(port, error));
    port.on('close', (error) => this.lost(port, error ?? undefined));
  }

  private line(line: string): void {
    const result = this.assembler.push(line);
    if (!result) return;
    if ('dropped' in result) {
      this.refuse('malformed', result.dropped);
      return;
    }
    try {
      this.reading = this.read(result.telegram);
    } catch (error) {
      if (!isEipError(error)) throw error;
      this.refuse(error.details.fault === 'crc' ? 'crc_errors' : 'malformed', error.message, error);
      return;
    }
    this.counters.telegrams++;
    this.options.onTelegram?.(this.reading);
  }

  private read(text: string): P1Reading {
    // DSMR 2.2/3 meters (9600 baud) send no CRC; at 115200 (DSMR 4/5) one is required.
    const telegram = parseP1Telegram(text, { withoutCrc: this.settings.baudRate === 9600 });
    const receivedAt = this.now();
    return {
      header: telegram.header,
      values: telegram.values,
      measuredAt: telegram.measuredAt ? parseP1Time(telegram.measuredAt) : receivedAt,
      receivedAt,
      ...(telegram.gasMeasuredAt !== undefined && {
        gasMeasuredAt: parseP1Time(telegram.gasMeasuredAt),
      }),
    };
  }

  private refuse(counter: 'crc_errors' | 'malformed', why: string, cause?: unknown): void {
    this.counters[counter]++;
    this.options.onError?.(
      new EipError('INVALID_MESSAGE', `P1 meter at ${this.settings.path}: ${why}`, {
        cause,
        details: { path: this.settings.path },
      }),
    );
  }

  /** The port failed or went away: drop it and whatever telegram was half read, reopen later. */
  private lost(port: P1Port, error: Error | undefined): void {
    if (port !== this.port) return; // already handled, or stopped
    this.port = undefined;
    this.counters.port_errors++;
    if (port.isOpen) port.close();
    this.assembler.reset();
    this.options.onError?.(this.ioError(`P1 port lost: ${error?.message ?? 'closed'}`, error));
    this.scheduleReopen();
  }

  private scheduleReopen(): void {
    if (this.stopped) return;
    const delay = Math.min(this.reopenMaxMs, this.reopenInitialMs * 2 ** this.failedOpens);
    this.reopenTimer = setTimeout(async () => {
      try {
        const port = await this.open();
        if (this.stopped) {
          port.close();
          return;
        }
        this.failedOpens = 0;
        this.counters.reopens++;
        this.attach(port);
      } catch (error) {
        this.failedOpens++;
        this.options.onError?.(error as EipError);
        this.scheduleReopen();
      }
    }, delay);
  }

  private ioError(message: string, cause: unknown): EipError {
    return new EipError('IO_ERROR', `P1 meter at ${this.settings.path}: ${message}`, {
      retryable: true,
      cause,
      details: { path: this.settings.path },
    });
  }
}
