/**
 * Random sequences of appends (several at once), acks and restarts against the real store, each
 * step checked against a plain in-memory model: the records in seq order with their payloads, a
 * bound that drops the oldest, and the counters.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeRecord, recordKey, storedSize } from '../../../edge/outbox/codec.js';
import { Outbox } from '../../../edge/outbox/outbox.js';
import { tempDir } from './support.js';

// Payloads of one length make every record the same size, so the model's bound is a count.
const payloadOf = (seq: number) => `reading ${String(seq).padStart(20, '0')}`;
const SIZE = storedSize(
  recordKey(0),
  encodeRecord(recordKey(0), { topic: 't', payload: payloadOf(0), enqueued_at_ms: 0 }),
);
const CAPACITY = 6;

type Command =
  | { readonly kind: 'append'; readonly count: number }
  | { readonly kind: 'ack'; readonly index: number }
  | { readonly kind: 'restart' };

const command: fc.Arbitrary<Command> = fc.oneof(
  {
    arbitrary: fc.record({ kind: fc.constant('append'), count: fc.integer({ min: 1, max: 9 }) }),
    weight: 3,
  },
  { arbitrary: fc.record({ kind: fc.constant('ack'), index: fc.nat(9) }), weight: 2 },
  { arbitrary: fc.constant({ kind: 'restart' }), weight: 1 },
);

class Model {
  records: number[] = [];
  lastSeq = -1;
  appended = 0;
  acked = 0;
  dropped = 0;

  appendedAll(seqs: readonly number[]): void {
    for (const seq of seqs) {
      expect(seq).toBeGreaterThan(this.lastSeq);
      this.lastSeq = seq;
      this.records.push(seq);
      this.appended++;
    }
    while (this.records.length > CAPACITY) {
      this.records.shift();
      this.dropped++;
    }
  }

  ackedUpTo(seq: number): void {
    const kept = this.records.filter((s) => s > seq);
    this.acked += this.records.length - kept.length;
    this.records = kept;
  }
}

async function matches(outbox: Outbox, model: Model): Promise<void> {
  expect(outbox.stats()).toMatchObject({
    depth: model.records.length,
    bytes: model.records.length * SIZE,
    appended: model.appended,
    acked: model.acked,
    dropped: model.dropped,
    oldestSeq: model.records[0],
  });
  const stored = await outbox.peek(100);
  expect(stored.map((r) => [r.seq, r.payload])).toEqual(
    model.records.map((seq) => [seq, payloadOf(seq)]),
  );
}

describe('Outbox against a model', () => {
  it('matches the model after every append, ack and restart', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(command, { maxLength: 20 }), async (commands) => {
        const { dir, remove } = tempDir('model');
        let outbox = await Outbox.open({ dir, maxBytes: CAPACITY * SIZE });
        const model = new Model();
        try {
          for (const c of commands) {
            if (c.kind === 'append') {
              model.appendedAll(
                await Promise.all(
                  Array.from({ length: c.count }, () => outbox.append('t', payloadOf)),
                ),
              );
            } else if (c.kind === 'ack') {
              // Past the end: a seq below the oldest stored, already gone: it must change nothing.
              const seq = model.records[c.index] ?? (model.records[0] ?? model.lastSeq + 1) - 1;
              if (seq < 0) continue; // nothing appended yet
              await outbox.ack(seq);
              model.ackedUpTo(seq);
            } else {
              await outbox.close();
              outbox = await Outbox.open({ dir, maxBytes: CAPACITY * SIZE });
            }
            await matches(outbox, model);
          }
        } finally {
          await outbox.close();
          remove();
        }
      }),
      { numRuns: 40 },
    );
  });
});
