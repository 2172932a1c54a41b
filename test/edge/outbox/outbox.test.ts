/** The outbox against the real classic-level, in a temporary directory per test. */
import { ClassicLevel } from 'classic-level';
import { afterEach, describe, expect, it } from 'vitest';
import { isEipError } from '../../../core/errors.js';
import { recordKey } from '../../../edge/outbox/codec.js';
import { Outbox, type OutboxOptions } from '../../../edge/outbox/outbox.js';
import { captureLogger, reading, tempDir } from './support.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function openTemp(options: Omit<OutboxOptions, 'dir'> = {}): Promise<{
  outbox: Outbox;
  dir: string;
  reopen: (o?: Omit<OutboxOptions, 'dir'>) => Promise<Outbox>;
}> {
  const temp = tempDir('unit');
  cleanups.push(temp.remove);
  let current = await Outbox.open({ ...options, dir: temp.dir });
  cleanups.push(() => current.close());
  return {
    outbox: current,
    dir: temp.dir,
    reopen: async (more = options) => {
      await current.close();
      current = await Outbox.open({ ...more, dir: temp.dir });
      return current;
    },
  };
}

const fixed = (text: string) => () => text;
const payloadOf = (seq: number) => `payload of ${String(seq).padStart(20, '0')}`;

describe('Outbox', () => {
  it('stores records in seq order, peeks the oldest and acks a prefix', async () => {
    let clock = 1_700_000_000_000;
    const { outbox } = await openTemp({ now: () => clock++ });
    const seqs: number[] = [];
    for (let i = 0; i < 5; i++) seqs.push(await outbox.append(`t/${i}`, payloadOf));

    // A new outbox numbers from its clock, so a wiped one never starts below what it sent.
    expect(seqs[0]).toBe(1_700_000_000_000 * 1000);
    expect(seqs).toEqual(seqs.map((_, i) => (seqs[0] ?? 0) + i));
    const all = await outbox.peek(10);
    expect(all).toEqual(
      seqs.map((seq, i) => ({
        seq,
        topic: `t/${i}`,
        payload: payloadOf(seq),
        enqueued_at_ms: 1_700_000_000_001 + i, // the first tick went to the seed
      })),
    );
    expect((await outbox.peek(2)).map((r) => r.seq)).toEqual(seqs.slice(0, 2));
    expect((await outbox.peek(2, seqs[1])).map((r) => r.seq)).toEqual(seqs.slice(2, 4));

    await outbox.ack(seqs[2] ?? 0);
    expect((await outbox.peek(10)).map((r) => r.seq)).toEqual(seqs.slice(3));
    expect(outbox.stats()).toMatchObject({
      depth: 2,
      appended: 5,
      acked: 3,
      dropped: 0,
      oldestSeq: seqs[3],
      nextSeq: (seqs[4] ?? 0) + 1,
    });
    await outbox.ack(seqs[1] ?? 0); // already gone: nothing happens
    expect(outbox.stats().depth).toBe(2);
    await outbox.ack(seqs[4] ?? 0);
    expect(await outbox.peek(10)).toEqual([]);
    expect(outbox.stats()).toMatchObject({ depth: 0, bytes: 0, oldestSeq: undefined });
  });

  it('never hands out a seq twice: not after a restart, nor once everything was acked', async () => {
    const { outbox, reopen } = await openTemp();
    const first = [await outbox.append('t', fixed('a')), await outbox.append('t', fixed('b'))];
    let again = await reopen();
    const afterRestart = await again.append('t', fixed('c'));
    expect(afterRestart).toBe((first[1] ?? 0) + 1);
    await again.ack(afterRestart);
    again = await reopen({ now: () => 0 }); // even with the clock set back
    expect(again.stats()).toMatchObject({ depth: 0, appended: 3, acked: 3 });
    expect(await again.append('t', fixed('d'))).toBe(afterRestart + 1);
  });

  it('drops the oldest records when full, counts them, and keeps the counts across a restart', async () => {
    const probe = await openTemp();
    await probe.outbox.append('t', payloadOf);
    const size = probe.outbox.stats().bytes;

    const { outbox, reopen } = await openTemp({ maxBytes: 10 * size + Math.floor(size / 2) });
    const seqs: number[] = [];
    for (let i = 0; i < 25; i++) seqs.push(await outbox.append('t', payloadOf));
    expect(outbox.stats()).toMatchObject({ depth: 10, bytes: 10 * size, dropped: 15 });
    expect((await outbox.peek(100)).map((r) => r.seq)).toEqual(seqs.slice(15));

    const again = await reopen();
    expect(again.stats()).toMatchObject({
      depth: 10,
      bytes: 10 * size,
      dropped: 15,
      appended: 25,
      oldestSeq: seqs[15],
    });
    const next = await again.append('t', payloadOf);
    expect(next).toBe((seqs[24] ?? 0) + 1); // dropped numbers are not used again
    expect(again.stats()).toMatchObject({ depth: 10, dropped: 16, oldestSeq: seqs[16] });
  });

  it('drops the oldest of one batch that alone overflows the outbox', async () => {
    const probe = await openTemp();
    await probe.outbox.append('t', payloadOf);
    const size = probe.outbox.stats().bytes;

    const { outbox } = await openTemp({ maxBytes: 5 * size });
    const seqs = await Promise.all(Array.from({ length: 12 }, () => outbox.append('t', payloadOf)));
    expect(outbox.stats()).toMatchObject({ depth: 5, dropped: 7, bytes: 5 * size, commits: 1 });
    expect((await outbox.peek(100)).map((r) => r.seq)).toEqual(seqs.slice(7));
  });

  it('refuses a record larger than the whole outbox, without using up a seq', async () => {
    const { outbox } = await openTemp({ maxBytes: 200 });
    const nextSeq = outbox.stats().nextSeq;
    const refusal = await outbox.append('t', fixed('x'.repeat(500))).catch((e: unknown) => e);
    expect(isEipError(refusal, 'INVALID_ARGUMENT')).toBe(true);
    expect((refusal as Error).message).toMatch(
      /^an outbox record of 5\d\d bytes for t is larger than the whole outbox \(200 bytes\)$/,
    );
    expect(outbox.stats()).toMatchObject({ depth: 0, appended: 0, nextSeq });
    expect(await outbox.append('t', fixed('small'))).toBe(nextSeq);
  });

  it('commits concurrent appends together, in call order', async () => {
    const { outbox } = await openTemp();
    const count = 2000;
    const seqs = await Promise.all(
      Array.from({ length: count }, (_, i) => outbox.append('t', (seq) => `${i}:${seq}`)),
    );
    expect(seqs).toEqual(seqs.map((_, i) => (seqs[0] ?? 0) + i));
    const records = await outbox.peek(count);
    expect(records.map((r) => r.payload)).toEqual(seqs.map((seq, i) => `${i}:${seq}`));
    expect(outbox.stats().commits).toBe(1);

    // While a batch is on its way to disk, the next appends gather for the following one.
    const waves = await Promise.all(
      Array.from({ length: 20 }, async (_, wave) => {
        await new Promise((resolve) => setImmediate(resolve));
        return Promise.all(
          Array.from({ length: 50 }, (_, i) => outbox.append('t', () => `${wave}/${i}`)),
        );
      }),
    );
    expect(waves.flat()).toEqual(waves.flat().map((_, i) => (seqs.at(-1) ?? 0) + 1 + i));
    expect(outbox.stats().commits).toBeLessThan(1 + 20);
  });

  it('skips and removes a corrupt record with a clear log line, and counts it', async () => {
    const { outbox, dir, reopen } = await openTemp();
    const seqs: number[] = [];
    for (let i = 0; i < 5; i++) seqs.push(await outbox.append('t', payloadOf));
    const size = outbox.stats().bytes / 5;
    await outbox.close();

    const raw = new ClassicLevel<Buffer, Buffer>(dir, {
      keyEncoding: 'buffer',
      valueEncoding: 'buffer',
    });
    const key = recordKey(seqs[2] ?? 0);
    const value = (await raw.get(key)) ?? Buffer.alloc(0);
    const digit = value.length - 3; // a digit of the payload: still valid text, a wrong number
    value[digit] = value[digit] === 0x37 ? 0x38 : 0x37;
    await raw.put(key, value);
    await raw.close();

    const logger = captureLogger();
    const again = await reopen({ logger });
    const records = await again.peek(10);
    expect(records.map((r) => r.seq)).toEqual([seqs[0], seqs[1], seqs[3], seqs[4]]);
    expect(logger.lines).toEqual([
      `outbox record ${seqs[2]} is corrupt: checksum mismatch; removed`,
    ]);
    expect(again.stats()).toMatchObject({ depth: 4, bytes: 4 * size, corrupt: 1 });
    expect((await reopen()).stats()).toMatchObject({ depth: 4, corrupt: 1 });
  });

  it('rebuilds its bookkeeping from the records when that entry is unreadable', async () => {
    const { outbox, dir, reopen } = await openTemp();
    const seqs: number[] = [];
    for (let i = 0; i < 4; i++) seqs.push(await outbox.append('t', payloadOf));
    const { bytes } = outbox.stats();
    await outbox.close();
    const raw = new ClassicLevel(dir);
    await raw.put('m', '{"nextSeq":');
    await raw.close();

    const logger = captureLogger();
    const again = await reopen({ logger });
    expect(logger.lines).toEqual([
      "the outbox's bookkeeping entry is unreadable (Unexpected end of JSON input): rebuilding it from the records; its counters start again at 0",
    ]);
    expect(again.stats()).toMatchObject({ depth: 4, bytes, oldestSeq: seqs[0] });
    expect(again.stats().nextSeq).toBeGreaterThan(seqs[3] ?? 0);
    expect((await again.peek(10)).map((r) => r.seq)).toEqual(seqs);
  });

  it('refuses bad arguments, a second opening and use after close, with codes', async () => {
    const { outbox, dir } = await openTemp();
    const seq = await outbox.append('t', fixed('a'));
    await expect(outbox.ack(seq + 1)).rejects.toSatisfy((e) => isEipError(e, 'INVALID_ARGUMENT'));
    await expect(outbox.peek(0)).rejects.toSatisfy((e) => isEipError(e, 'INVALID_ARGUMENT'));
    await expect(Outbox.open({ dir, maxBytes: 0 })).rejects.toSatisfy((e) =>
      isEipError(e, 'INVALID_ARGUMENT'),
    );

    const locked = await Outbox.open({ dir }).catch((e: unknown) => e);
    expect(isEipError(locked, 'IO_ERROR') && locked.retryable).toBe(true);
    expect((locked as Error).message).toMatch(/^opening the outbox at .* failed: /);

    await outbox.close();
    await expect(outbox.append('t', fixed('b'))).rejects.toThrow(`the outbox at ${dir} is closed`);
  });

  it('answers every append of a reading with a payload that carries its seq', async () => {
    const { outbox } = await openTemp();
    const { topic, render } = reading(7);
    const seq = await outbox.append(topic, render);
    const [record] = await outbox.peek(1);
    expect(record?.topic).toBe('eip/v1/meters/p0/gas-1/reading');
    expect(JSON.parse(record?.payload ?? '')).toMatchObject({ seq, value: 7 });
  });
});
