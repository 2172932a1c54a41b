/**
 * What the outbox tests and the outbox benchmark share: temporary stores, meter readings that
 * carry their seq, and a receiver that dedupes the way the gateway does, by (prosumer, meter, seq).
 * The broker is test/support/broker.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '../../../core/logger.js';
import { decodeMessage, encodePayload, topic } from '../../../core/messages/topics.js';

/** A fresh directory and its removal. */
export function tempDir(prefix: string): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `eip-outbox-${prefix}-`));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Reading number `i` of one of three meters: its topic, and its payload made with the seq. */
export function reading(i: number, measuredAtMs = 1_700_000_000_000 + i) {
  const meter = `gas-${i % 3}`;
  return {
    topic: topic('meterReading', { prosumer: 'p0', meter }),
    render: (seq: number) =>
      encodePayload('meterReading', {
        prosumer: 'p0',
        meter,
        utility: 'biogas',
        quantity: 'volume',
        value: i,
        unit: 'm3',
        measured_at_ms: measuredAtMs,
        seq,
        stale: false,
      }),
  };
}

export interface Arrival {
  readonly topic: string;
  readonly payload: string;
  readonly seq: number;
}

/**
 * Keeps the first arrival of each (prosumer, meter, seq) and counts the rest as duplicates. It
 * drops a seq at or below the highest seen for its meter, as a gateway keeping one number per
 * meter would: an arrival out of order would be lost here, so the tests see it.
 */
export class Receiver {
  readonly kept: Arrival[] = [];
  duplicates = 0;
  private readonly highest = new Map<string, number>();

  take(concreteTopic: string, raw: string | Uint8Array): void {
    const message = decodeMessage(concreteTopic, raw);
    if (message.name !== 'meterReading') throw new Error(`unexpected ${message.name}`);
    const { prosumer, meter, seq } = message.payload;
    const key = `${prosumer}/${meter}`;
    if (seq <= (this.highest.get(key) ?? -1)) {
      this.duplicates++;
      return;
    }
    this.highest.set(key, seq);
    const payload = typeof raw === 'string' ? raw : Buffer.from(raw).toString('utf8');
    this.kept.push({ topic: concreteTopic, payload, seq });
  }
}

/** A logger that keeps each line's message. */
export function captureLogger(): Logger & { readonly lines: string[] } {
  const lines: string[] = [];
  const log = (first: object | string, message?: string) => {
    lines.push(typeof first === 'string' ? first : (message ?? ''));
  };
  const logger = {
    lines,
    trace: log,
    debug: log,
    info: log,
    warn: log,
    error: log,
    fatal: log,
    child: () => logger,
  };
  return logger;
}
