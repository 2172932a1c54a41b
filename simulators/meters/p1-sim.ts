/**
 * A simulated DSMR 5 smart meter writing P1 telegrams on a serial device (a pseudo-terminal in
 * tests): one telegram every interval, 1 s by default as DSMR 5 sends them (P1 companion standard
 * 5.0.2, §6.2), with the import counter growing with a set power and a gas meter whose volume
 * grows with a set flow. Faults a real P1 line shows can be injected: a wrong CRC, a telegram
 * cut off, noise between telegrams, and a telegram arriving in small pieces.
 */
import { SerialPort } from 'serialport';
import { buildP1Telegram, type P1TelegramInput } from '../../core/meters/p1.js';

export const P1_FAULTS = ['crc', 'truncated', 'garbage', 'split'] as const;
export type P1SimFault = (typeof P1_FAULTS)[number];

export interface P1MeterSetup {
  /** Power drawn from the grid, W: the normal-tariff import counter grows with it. */
  readonly powerW: number;
  /** Gas flow through the gas meter, m3/h. */
  readonly gasFlowM3PerH: number;
}

/** Where the counters start: a meter that has been in service for a while. */
const START_KWH = 1000;
const START_M3 = 100;
const HOUR_MS = 3_600_000;
/** DSMR 5 gas meters report their volume every 5 minutes; the telegram relays the last one. */
const GAS_CAPTURE_MS = 5 * 60_000;

/** The meter's registers over time, on an injected clock. */
export class P1MeterModel {
  private readonly startedAt: number;

  constructor(
    private readonly setup: P1MeterSetup,
    private readonly clock: () => number = Date.now,
  ) {
    this.startedAt = clock();
  }

  /** What the meter sends now. */
  telegram(): P1TelegramInput {
    const now = this.clock();
    const gasCapturedAt = Math.floor(now / GAS_CAPTURE_MS) * GAS_CAPTURE_MS;
    const gasHours = Math.max(0, gasCapturedAt - this.startedAt) / HOUR_MS;
    return {
      header: 'EIP5SIM-P1',
      measuredAt: now,
      equipmentId: 'E0000000000000001',
      tariff: 2,
      electricity: {
        electricity_import_t1: START_KWH,
        electricity_import_t2:
          START_KWH + ((this.setup.powerW / 1000) * (now - this.startedAt)) / HOUR_MS,
        electricity_export_t1: 0,
        electricity_export_t2: 0,
        power_import: this.setup.powerW / 1000,
        power_export: 0,
      },
      gas: {
        m3: START_M3 + this.setup.gasFlowM3PerH * gasHours,
        measuredAt: gasCapturedAt,
        equipmentId: 'G0000000000000001',
      },
    };
  }
}

export interface P1SimOptions extends P1MeterSetup {
  readonly path: string;
  /** 115200 for DSMR 4 and 5; a pseudo-terminal ignores it. */
  readonly baudRate?: number;
  readonly intervalMs?: number;
  /** Faults to inject, each on a share `faultRate` of telegrams (1: every telegram). */
  readonly faults?: readonly P1SimFault[];
  readonly faultRate?: number;
  readonly random?: () => number;
  readonly clock?: () => number;
}

export interface P1Sim {
  /** Telegrams begun so far, faulty ones included. */
  readonly telegrams: number;
  close(): Promise<void>;
}

/** Pieces of a split telegram: a few bytes each, a couple of milliseconds apart. */
const SPLIT_MAX_BYTES = 24;
const SPLIT_GAP_MS = 2;

/** The same telegram with its CRC off by one: the block still reads, only its check fails. */
function corruptCrc(telegram: string): string {
  return telegram.replace(
    /([0-9A-F]{4})\r\n$/,
    (crc) =>
      `${((Number.parseInt(crc, 16) + 1) & 0xffff).toString(16).toUpperCase().padStart(4, '0')}\r\n`,
  );
}

/** The bytes the meter puts on the line for one telegram, with the faults drawn for it. */
function lineBytes(
  telegram: string,
  fault: (kind: P1SimFault) => boolean,
  random: () => number,
): Buffer[] {
  let text = fault('crc') ? corruptCrc(telegram) : telegram;
  // Cut anywhere between the header and the end: the next telegram follows on the same line.
  if (fault('truncated')) text = text.slice(0, Math.floor(text.length * (0.1 + 0.8 * random())));
  let bytes = Buffer.from(text, 'latin1');
  if (fault('garbage')) {
    const noise = Array.from({ length: 8 + Math.floor(random() * 56) }, () =>
      Math.floor(random() * 256),
    );
    bytes = Buffer.concat([Buffer.from(noise), bytes]);
  }
  if (!fault('split')) return [bytes];
  const pieces: Buffer[] = [];
  for (let at = 0; at < bytes.length; ) {
    const size = 1 + Math.floor(random() * SPLIT_MAX_BYTES);
    pieces.push(bytes.subarray(at, at + size));
    at += size;
  }
  return pieces;
}

export async function startP1Sim(options: P1SimOptions): Promise<P1Sim> {
  const port = new SerialPort({
    path: options.path,
    baudRate: options.baudRate ?? 115200,
    autoOpen: false,
  });
  await new Promise<void>((resolve, reject) =>
    port.open((error) => (error ? reject(error) : resolve())),
  );
  // A write nobody can take (the other end gone) is lost, as on a real P1 line; never a crash.
  port.on('error', () => undefined);
  const model = new P1MeterModel(options, options.clock);
  const random = options.random ?? Math.random;
  const faultRate = options.faultRate ?? 1;
  const fault = (kind: P1SimFault) => (options.faults ?? []).includes(kind) && random() < faultRate;
  let telegrams = 0;
  let sending = false;
  let closed = false;

  const write = (piece: Buffer) =>
    new Promise<void>((resolve) => port.write(piece, () => resolve()));
  const send = async () => {
    telegrams++;
    const pieces = lineBytes(buildP1Telegram(model.telegram()), fault, random);
    for (const [i, piece] of pieces.entries()) {
      if (closed) return;
      if (i > 0) await new Promise((resolve) => setTimeout(resolve, SPLIT_GAP_MS));
      await write(piece);
    }
  };
  const tick = () => {
    // A meter does not queue telegrams: one still being written makes the next wait a turn.
    if (sending || closed) return;
    sending = true;
    void send().finally(() => {
      sending = false;
    });
  };
  tick();
  const timer = setInterval(tick, options.intervalMs ?? 1000);

  return {
    get telegrams() {
      return telegrams;
    },
    close: () => {
      closed = true;
      clearInterval(timer);
      return new Promise<void>((resolve) => {
        if (!port.isOpen) resolve();
        else port.close(() => resolve());
      });
    },
  };
}
