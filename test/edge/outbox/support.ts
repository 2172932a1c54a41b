/**
 * What the outbox tests and the outbox benchmark share: temporary stores, meter readings that
 * carry their seq, an in-process aedes broker, and a receiver that dedupes the way the gateway
 * does, by (prosumer, meter, seq).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Aedes, type AedesOptions } from 'aedes';
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

/** Whatever takes the messages the broker receives: a Receiver, or a counter. */
export interface Sink {
  take(concreteTopic: string, raw: string | Uint8Array): void;
}

export interface Broker {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/**
 * aedes on loopback, handing every client's publish to `sink` the way the gateway, which
 * embeds aedes, sees it. aedes emits `publish` before it sends the PUBACK.
 */
export async function startBroker(
  sink: Sink,
  port = 0,
  options: AedesOptions = {},
): Promise<Broker> {
  const broker = await Aedes.createBroker(options);
  broker.on('publish', (packet, client) => {
    if (client) sink.take(packet.topic, packet.payload);
  });
  const server: Server = createServer(broker.handle);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return {
    url: `mqtt://127.0.0.1:${address.port}`,
    port: address.port,
    // broker.close() drops every client connection; server.close() only stops accepting.
    close: async () => {
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** Polls until `condition` holds; fails after `timeoutMs` with `what`. */
export async function until(what: string, condition: () => boolean, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
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
