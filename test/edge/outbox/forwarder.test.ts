/** The forwarder over a real outbox and a scripted publish seam. */
import { afterEach, describe, expect, it } from 'vitest';
import { EipError } from '../../../core/errors.js';
import { Forwarder, type ForwarderOptions, type Publish } from '../../../edge/outbox/forwarder.js';
import { Outbox } from '../../../edge/outbox/outbox.js';
import { until } from '../../support/until.js';
import { Receiver, reading, tempDir } from './support.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup(count: number) {
  const temp = tempDir('forwarder');
  cleanups.push(temp.remove);
  const outbox = await Outbox.open({ dir: temp.dir });
  cleanups.push(() => outbox.close());
  const expected: string[] = [];
  const append = async (n: number) => {
    for (let i = 0; i < n; i++) {
      const { topic, render } = reading(expected.length);
      const seq = await outbox.append(topic, render);
      expected.push(render(seq));
    }
  };
  await append(count);
  return { outbox, expected, append };
}

function start(options: ForwarderOptions): Forwarder {
  const forwarder = new Forwarder(options);
  forwarder.start();
  cleanups.push(() => forwarder.stop());
  return forwarder;
}

/** A broker stand-in: delivers to `receiver` a turn later, unless `script` says otherwise. */
function scripted(
  receiver: Receiver,
  script: (payload: string, call: number) => 'deliver' | 'lose' | 'lose-ack' | 'refuse' = () =>
    'deliver',
) {
  const state = { calls: 0, inFlight: 0, maxInFlight: 0 };
  const publish: Publish = async (topic, payload) => {
    const call = state.calls++;
    state.inFlight++;
    state.maxInFlight = Math.max(state.maxInFlight, state.inFlight);
    await new Promise((resolve) => setImmediate(resolve));
    state.inFlight--;
    const outcome = script(payload, call);
    if (outcome === 'deliver' || outcome === 'lose-ack') receiver.take(topic, payload);
    if (outcome === 'refuse') throw new EipError('IO_ERROR', 'refused', { retryable: false });
    if (outcome !== 'deliver') throw new EipError('IO_ERROR', 'no PUBACK', { retryable: true });
  };
  return { publish, state };
}

const seqOf = (payload: string) => (JSON.parse(payload) as { seq: number }).seq;

describe('Forwarder', () => {
  it('sends in seq order with at most a window in flight, and acks what was delivered', async () => {
    const { outbox, expected } = await setup(100);
    const receiver = new Receiver();
    const { publish, state } = scripted(receiver);
    const forwarder = start({ outbox, publish, window: 8 });

    await until('the outbox to drain', () => outbox.stats().depth === 0);
    expect(receiver.kept.map((a) => a.payload)).toEqual(expected);
    expect(receiver.duplicates).toBe(0);
    expect(state.maxInFlight).toBe(8);
    expect(forwarder.counters).toEqual({ sent: 100, failures: 0, retries: 0, refused: 0 });
    expect(outbox.stats().acked).toBe(100);
  });

  it('after a failure backs off and resends from the oldest not acked: once each after dedupe', async () => {
    const { outbox, expected } = await setup(100);
    const failAt = seqOf(expected[37] ?? '');
    const receiver = new Receiver();
    let failed = false;
    // Record 37 reaches the broker but its PUBACK is lost; those behind it in the window are
    // delivered, yet cannot be acked past the gap: all of them go again.
    const { publish } = scripted(receiver, (payload) => {
      if (failed || seqOf(payload) !== failAt) return 'deliver';
      failed = true;
      return 'lose-ack';
    });
    const forwarder = start({ outbox, publish, window: 8, backoffInitialMs: 20 });

    await until('the outbox to drain', () => outbox.stats().depth === 0);
    expect(receiver.kept.map((a) => a.payload)).toEqual(expected);
    expect(receiver.duplicates).toBeGreaterThanOrEqual(1);
    expect(receiver.duplicates).toBeLessThanOrEqual(8);
    expect(forwarder.counters).toMatchObject({ failures: 1, retries: 1, refused: 0 });
  });

  it('skips, counts and logs a record the broker refuses for good, so it cannot block the rest', async () => {
    const { outbox, expected } = await setup(20);
    const refused = seqOf(expected[5] ?? '');
    const receiver = new Receiver();
    const { publish } = scripted(receiver, (payload) =>
      seqOf(payload) === refused ? 'refuse' : 'deliver',
    );
    const forwarder = start({ outbox, publish, window: 4 });

    await until('the outbox to drain', () => outbox.stats().depth === 0);
    expect(receiver.kept.map((a) => a.payload)).toEqual(expected.filter((_, i) => i !== 5));
    expect(forwarder.counters).toEqual({ sent: 19, failures: 0, retries: 0, refused: 1 });
  });

  it('sends what is appended later when woken; a back-off ends on reconnected(), not on wake()', async () => {
    const { outbox, expected, append } = await setup(3);
    const receiver = new Receiver();
    let brokerUp = true;
    const { publish, state } = scripted(receiver, () => (brokerUp ? 'deliver' : 'lose'));
    const forwarder = start({ outbox, publish, backoffInitialMs: 60_000 });
    await until('the first records', () => receiver.kept.length === 3);

    await append(2);
    forwarder.wake();
    await until('the woken records', () => receiver.kept.length === 5);

    brokerUp = false;
    await append(1);
    forwarder.wake();
    await until('the failure', () => forwarder.counters.failures === 1);
    brokerUp = true;
    await append(1);
    forwarder.wake(); // during the minute of back-off: no effect
    const calls = state.calls;
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(state.calls).toBe(calls);

    forwarder.reconnected();
    await until('the outbox to drain', () => outbox.stats().depth === 0);
    expect(receiver.kept.map((a) => a.payload)).toEqual(expected);
    expect(forwarder.counters).toMatchObject({ failures: 1, retries: 1 });
  });

  it('stop() waits for the messages in flight and acks them first', async () => {
    const { outbox } = await setup(2);
    const releases: (() => void)[] = [];
    const publish: Publish = () => new Promise((resolve) => releases.push(resolve));
    const forwarder = start({ outbox, publish });
    await until('both in flight', () => releases.length === 2);

    let stopped = false;
    const stopping = forwarder.stop().then(() => {
      stopped = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(stopped).toBe(false);
    for (const release of releases) release();
    await stopping;
    expect(outbox.stats()).toMatchObject({ depth: 0, acked: 2 });
    expect(forwarder.counters.sent).toBe(2);
  });
});
