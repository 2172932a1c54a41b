/**
 * The time-series writer against a real InfluxDB 1.x (test/support/influxd.ts): points at their
 * own times and with their schema's types, batches as configured, and nothing lost or written
 * twice across an InfluxDB outage, a gateway restart, a full spool and a refused batch.
 *
 * The writer talks to InfluxDB through a recording proxy, which keeps every line of every write
 * InfluxDB accepted: "written once" is checked there, since InfluxDB itself would store a point
 * sent twice only once.
 */
import { readdirSync, statSync } from 'node:fs';
import { appendFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { InfluxDB } from 'influx';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Payload } from '../../core/messages/topics.js';
import { SCHEMA } from '../../gateway/timeseries/points.js';
import { InfluxWriter, type InfluxWriterOptions } from '../../gateway/timeseries/writer.js';
import { captureLogger, tempDir } from '../edge/outbox/support.js';
import { type Influxd, RUN_INFLUX_SUITES, startInfluxd } from '../support/influxd.js';
import { until } from '../support/until.js';

const T0 = Date.UTC(2026, 0, 5, 12); // a Monday: shards of the default policy last a week
const ID = `0x${'ab'.repeat(32)}`;
const TX = `0x${'cd'.repeat(32)}`;

interface AcceptedWrite {
  readonly status: number;
  readonly lines: readonly string[];
}

/** An HTTP proxy to InfluxDB that records each write and its answer. */
async function recordingProxy(target: string) {
  const writes: AcceptedWrite[] = [];
  const server: Server = createServer(async (request, response) => {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    try {
      const upstream = await fetch(`${target}${request.url}`, {
        method: request.method ?? 'GET',
        headers: Object.fromEntries(
          ['content-type', 'authorization'].flatMap((name) => {
            const value = request.headers[name];
            return typeof value === 'string' ? [[name, value]] : [];
          }),
        ),
        ...(body.length > 0 && { body }),
      });
      const answer = await upstream.text();
      if (request.url?.startsWith('/write')) {
        writes.push({ status: upstream.status, lines: body.toString().split('\n') });
      }
      response.writeHead(upstream.status, { 'content-type': 'application/json' }).end(answer);
    } catch {
      // InfluxDB is down: the writer sees its connection fail, as it would without the proxy.
      response.destroy();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('proxy has no port');
  return {
    url: `http://127.0.0.1:${address.port}`,
    writes,
    /** Lines InfluxDB accepted (204), in the order they were sent. */
    accepted: () => writes.filter((w) => w.status === 204).flatMap((w) => w.lines),
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

type Proxy = Awaited<ReturnType<typeof recordingProxy>>;

const reading = (seq: number, overrides: Partial<Payload<'meterReading'>> = {}) =>
  ({
    prosumer: 'plant-a',
    meter: `m${seq % 4}`,
    utility: 'electricity',
    quantity: 'import_energy',
    value: seq,
    unit: 'kWh',
    measured_at_ms: T0 + seq,
    seq,
    stale: false,
    ...overrides,
  }) satisfies Payload<'meterReading'>;

describe.runIf(RUN_INFLUX_SUITES)('the time-series writer with InfluxDB 1.x', () => {
  let influxd: Influxd;
  let proxy: Proxy;
  let databases = 0;
  const cleanups: (() => unknown)[] = [];

  beforeAll(async () => {
    influxd = await startInfluxd();
    proxy = await recordingProxy(influxd.url);
  });
  afterAll(async () => {
    await proxy?.close();
    await influxd?.close();
  });
  afterEach(async () => {
    // A test that failed with InfluxDB stopped must not fail the ones after it.
    if (!influxd.running) await influxd.restart();
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    proxy.writes.length = 0;
  });

  /** A fresh database and spool, and a writer for them that the test's end closes. */
  async function setup(options: Partial<InfluxWriterOptions> = {}) {
    const database = `t${++databases}`;
    const spool = tempDir('influx-spool');
    cleanups.push(spool.remove);
    const logger = captureLogger();
    const settings = {
      url: proxy.url,
      database,
      spoolDir: spool.dir,
      logger,
      retryMs: { first: 50, max: 400 },
      ...options,
    };
    const open = async () => {
      const writer = await InfluxWriter.open(settings);
      cleanups.push(() => writer.close());
      return writer;
    };
    const client = new InfluxDB({
      host: '127.0.0.1',
      port: Number(new URL(influxd.url).port),
      database,
    });
    const select = async (query: string): Promise<Record<string, unknown>[]> =>
      (await client.query<Record<string, unknown>>(query, { precision: 'ms' })).map((row) => ({
        ...row,
        time: (row.time as Date).getTime(),
      }));
    return { database, spoolDir: spool.dir, logger, open, client, select };
  }

  /** Every reading's seq in InfluxDB, in time order, with its time. */
  async function storedReadings(select: (query: string) => Promise<Record<string, unknown>[]>) {
    return (await select('SELECT "seq" FROM "reading"')).map((row) => ({
      seq: row.seq,
      time: row.time,
    }));
  }

  it('creates the database and stores each kind of point at its own time with its types', async () => {
    const { database, open, client, select } = await setup();
    const writer = await open();
    expect(await client.getDatabaseNames()).toContain(database);
    writer.writeReading(reading(0, { value: 5 })); // a whole number, still a float
    writer.writeReading(reading(1, { value: 2.5, unit: 'k W,h="x"\\', stale: true }));
    writer.writeBalance({
      prosumer: 'plant-a',
      utility: 'biogas',
      step: 3,
      at_ms: T0 + 10,
      production_milli: 35_000,
      consumption_milli: 1_250,
      storage_level_milli: 2_000,
      storage_capacity_milli: 5_000,
      net_milli: -500,
    });
    const base = { agreement_id: ID, utility: 'biogas', at_ms: T0 + 20 } as const;
    writer.writeAgreementStatus({ ...base, state: 'confirmed', tx_hash: TX, block: 7 });
    writer.writeAgreementStatus({
      ...base,
      at_ms: T0 + 21,
      state: 'settled',
      tx_hash: TX,
      paid: 7_000n * 10n ** 18n + 1n,
      refunded: 0n,
    });
    writer.writeAgreementStatus({
      ...base,
      at_ms: T0 + 22,
      state: 'failed',
      reason: 'a "quoted" \\ reason',
    });
    writer.writeDeliveryConfirmation({
      agreement_id: ID,
      utility: 'biogas',
      seller: 'plant-a',
      buyer: 'plant-b',
      contracted_milli: 100_000,
      delivered_milli: 87_500,
      paid: 7_000n * 10n ** 18n,
      refunded: 1_000n * 10n ** 18n,
      transactions: [TX],
      at_ms: T0 + 30,
    });
    await writer.flush();
    expect(writer.stats()).toMatchObject({ written: 7, spooled: 0, rejected: 0, dropped: 0 });

    // Every field InfluxDB knows has the schema's type: `value` is a float though it was 5.
    const known = (await client.queryRaw('SHOW FIELD KEYS')) as {
      results: { series: { name: keyof typeof SCHEMA; values: [string, string][] }[] }[];
    };
    const types = known.results[0]?.series.flatMap((series) =>
      series.values.map(([key, type]) => `${series.name}.${key} ${type}`),
    );
    const schemaTypes = Object.entries(SCHEMA).flatMap(([measurement, schema]) =>
      Object.entries(schema.fields).map(([key, type]) => `${measurement}.${key} ${type}`),
    );
    expect(types).toContain('reading.value float');
    for (const type of types ?? []) expect(schemaTypes).toContain(type);

    const readings = await select('SELECT * FROM "reading"');
    expect(readings).toEqual([
      expect.objectContaining({ time: T0, value: 5, seq: 0, stale: false, unit: 'kWh' }),
      expect.objectContaining({
        time: T0 + 1,
        value: 2.5,
        seq: 1,
        stale: true,
        unit: 'k W,h="x"/',
      }),
    ]);
    const agreements = await select('SELECT * FROM "agreement"');
    expect(agreements).toEqual([
      expect.objectContaining({ time: T0 + 20, state: 'confirmed', block: 7, tx_hash: TX }),
      expect.objectContaining({
        time: T0 + 21,
        state: 'settled',
        paid_base_units: '7000000000000000000001',
        paid_tokens: 7000,
        refunded_base_units: '0',
      }),
      expect.objectContaining({ time: T0 + 22, state: 'failed', reason: 'a "quoted" \\ reason' }),
    ]);
    expect(await select('SELECT * FROM "balance"')).toEqual([
      expect.objectContaining({ time: T0 + 10, unit: 'm3', net_units: -0.5, step: 3 }),
    ]);
    expect(await select('SELECT * FROM "delivery"')).toEqual([
      expect.objectContaining({ time: T0 + 30, delivered_units: 87.5, refunded_tokens: 1000 }),
    ]);
  });

  it('sends a full batch at once and the rest when the oldest has waited flushMs', async () => {
    const { open } = await setup({ flushMs: 1000 });
    const writer = await open();
    for (let seq = 0; seq < 12_000; seq++) writer.writeReading(reading(seq));
    await until('all of them', () => proxy.accepted().length === 12_000);
    expect(proxy.writes.map((w) => w.lines.length)).toEqual([5000, 5000, 2000]);

    proxy.writes.length = 0;
    for (let seq = 12_000; seq < 12_010; seq++) writer.writeReading(reading(seq));
    // Too few for a batch: they wait for the flush timer (1 s), then go by themselves.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(proxy.writes).toEqual([]);
    await until('the flush timer', () => writer.stats().written === 12_010);
    expect(proxy.writes.map((w) => w.lines.length)).toEqual([10]);
    expect(writer.stats().spooled).toBe(0);
  });

  it('keeps points on disk while InfluxDB is down and writes each once, at its time, after', async () => {
    const { open, select, spoolDir } = await setup({ maxBatch: 300, flushMs: 50 });
    const writer = await open();
    for (let seq = 0; seq < 1000; seq++) writer.writeReading(reading(seq));
    await until('the first points', () => proxy.accepted().length > 0);
    await influxd.stop();
    for (let seq = 1000; seq < 2000; seq++) writer.writeReading(reading(seq));
    await expect(writer.flush()).rejects.toMatchObject({ code: 'IO_ERROR', retryable: true });
    expect(writer.stats().lastError?.message).toContain(proxy.url);
    const spooled = writer.stats().spooled;
    expect(spooled).toBeGreaterThanOrEqual(1000);
    const onDisk = readdirSync(spoolDir)
      .filter((name) => name.endsWith('.lp'))
      .reduce((sum, name) => sum + statSync(join(spoolDir, name)).size, 0);
    expect(onDisk).toBeGreaterThan(spooled * 100);

    await influxd.restart();
    await until('the spool to drain by itself', () => writer.stats().spooled === 0, 15_000);
    const sent = proxy.accepted().map((line) => Number(/seq=(\d+)i/.exec(line)?.[1]));
    expect(sent.sort((a, b) => a - b)).toEqual(Array.from({ length: 2000 }, (_, seq) => seq));
    const stored = await storedReadings(select);
    expect(stored).toEqual(Array.from({ length: 2000 }, (_, seq) => ({ seq, time: T0 + seq })));
    expect(writer.stats()).toMatchObject({ written: 2000, dropped: 0, rejected: 0 });
  });

  it('loses nothing when the gateway stops while InfluxDB is down, nor on a torn line', async () => {
    const { open, select, spoolDir, logger } = await setup();
    const first = await open();
    for (let seq = 0; seq < 300; seq++) first.writeReading(reading(seq));
    await first.flush();
    await influxd.stop();
    for (let seq = 300; seq < 1000; seq++) first.writeReading(reading(seq));
    await first.close();
    expect(logger.lines.at(-1)).toMatch(/closed with 700 points spooled/);
    // A crash in the middle of a write leaves half a line behind.
    const segment = readdirSync(spoolDir)
      .filter((name) => name.endsWith('.lp'))
      .sort()
      .at(-1);
    await appendFile(join(spoolDir, segment ?? ''), 'reading,meter=m0 value=1');

    await influxd.restart();
    const second = await open();
    expect(second.stats().spooled).toBe(700);
    expect(logger.lines).toContainEqual(expect.stringMatching(/cut a torn last line/));
    await until('the spooled points', () => second.stats().spooled === 0);
    const stored = await storedReadings(select);
    expect(stored).toEqual(Array.from({ length: 1000 }, (_, seq) => ({ seq, time: T0 + seq })));
    expect(proxy.accepted()).toHaveLength(1000);
  });

  it('drops the oldest points when the spool is full, and counts and logs them', async () => {
    const { open, select, logger } = await setup({ maxSpoolBytes: 64 * 1024 });
    await influxd.stop();
    const writer = await open();
    expect(writer.stats().lastError).toMatchObject({ code: 'IO_ERROR' });
    expect(writer.stats().lastError?.message).toMatch(
      /InfluxDB at http:\/\/127\.0\.0\.1:\d+ cannot/,
    );
    for (let seq = 0; seq < 2000; seq++) writer.writeReading(reading(seq));
    await expect(writer.flush()).rejects.toMatchObject({ code: 'IO_ERROR' });
    const { dropped, spooled, spooledBytes } = writer.stats();
    expect(dropped).toBeGreaterThan(0);
    expect(dropped + spooled).toBe(2000);
    expect(spooledBytes).toBeLessThanOrEqual(64 * 1024);
    expect(logger.lines).toContainEqual(
      expect.stringMatching(/spool full .*dropped its \d+ oldest/),
    );

    await influxd.restart();
    await writer.flush();
    const stored = await storedReadings(select);
    // The newest survive, in one piece.
    expect(stored.map((r) => r.seq)).toEqual(
      Array.from({ length: spooled }, (_, i) => 2000 - spooled + i),
    );
  });

  it('counts points InfluxDB refuses and goes on with the rest', async () => {
    const { database, open, select } = await setup({ maxBatch: 100 });
    const writer = await open();
    // Another writer got there first and made `value` an integer in this week's shard.
    const other = await fetch(`${influxd.url}/write?db=${database}&precision=ms`, {
      method: 'POST',
      body: `reading,meter=other value=1i ${T0 - 1}`,
    });
    expect(other.status).toBe(204);
    for (let seq = 0; seq < 50; seq++) writer.writeReading(reading(seq)); // refused
    const later = T0 + 30 * 86_400_000; // a shard of its own
    for (let seq = 50; seq < 100; seq++) {
      writer.writeReading(reading(seq, { measured_at_ms: later + seq }));
    }
    await writer.flush();
    expect(proxy.writes.map((w) => w.status)).toEqual([400]);
    expect(writer.stats()).toMatchObject({ written: 50, rejected: 50, spooled: 0 });
    expect(writer.stats().lastError?.message).toMatch(
      /refused 50 of 100 points: .*field type conflict/,
    );
    // Not sent again, and not in the way of what follows.
    for (let seq = 100; seq < 110; seq++) {
      writer.writeReading(reading(seq, { measured_at_ms: later + seq }));
    }
    await writer.flush();
    expect(proxy.writes.map((w) => w.status)).toEqual([400, 204]);
    expect(writer.stats()).toMatchObject({ written: 60, rejected: 50 });
    const stored = await select('SELECT "seq" FROM "reading"');
    expect(stored.map((row) => row.seq)).toEqual(Array.from({ length: 60 }, (_, i) => 50 + i));
  });
});

describe('InfluxWriter.open', () => {
  it('refuses settings it cannot work with, without leaking a password', async () => {
    const spool = tempDir('influx-options');
    try {
      const open = (options: Partial<InfluxWriterOptions>) =>
        InfluxWriter.open({
          url: 'http://127.0.0.1:8086',
          database: 'eip',
          spoolDir: spool.dir,
          ...options,
        });
      const refusals: [Partial<InfluxWriterOptions>, RegExp][] = [
        [{ url: 'ftp://admin:hunter2@example.com' }, /must be http\(s\):\/\/.*got a ftp: URL/],
        [{ url: 'not a url' }, /got no URL/],
        [{ database: '' }, /database name is empty/],
        [{ maxBatch: 0 }, /maxBatch must be a positive whole number/],
        [{ maxSpoolBytes: 1000 }, /maxBytes must be a whole number of at least 65536/],
      ];
      for (const [options, message] of refusals) {
        const refusal = open(options);
        await expect(refusal).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
        await expect(refusal).rejects.toThrow(message);
        await expect(refusal).rejects.not.toThrow(/hunter2/);
      }
    } finally {
      spool.remove();
    }
  });
});
