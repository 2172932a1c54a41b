/** Retries, per-meter exponential back-off and stale values, on a fake clock and fake readers. */
import { describe, expect, it } from 'vitest';
import { Poller } from '../../../edge/meters/poller.js';
import { loadProfile } from '../../../edge/meters/profiles.js';
import type { RegisterReader } from '../../../edge/meters/reader.js';

const profile = loadProfile('eastron-sdm120');

/** Answers zeros, or fails while `failing` is set; counts requests. */
class FakeReader implements RegisterReader {
  failing = false;
  requests = 0;
  async read(_space: 'holding' | 'input', _start: number, count: number): Promise<number[]> {
    this.requests++;
    if (this.failing) throw new Error('no answer within 1000 ms');
    return new Array(count).fill(0);
  }
}

function setup() {
  let now = 0;
  const good = new FakeReader();
  const bad = new FakeReader();
  bad.failing = true;
  const poller = new Poller({
    meters: [
      { id: 'bad', profile, reader: bad },
      { id: 'good', profile, reader: good },
    ],
    retries: 1,
    backoffInitialMs: 1000,
    backoffMaxMs: 4000,
    now: () => now,
  });
  return { poller, good, bad, advance: (ms: number) => (now += ms) };
}

describe('Poller', () => {
  it('keeps polling the healthy meter while the failing one backs off 1 s, 2 s, 4 s, 4 s', async () => {
    const { poller, good, bad, advance } = setup();
    const attempts: number[] = [];
    for (let second = 0; second < 12; second++) {
      const before = bad.requests;
      expect(await poller.cycle()).toEqual(['good']);
      if (bad.requests > before) attempts.push(second);
      advance(1000);
    }
    // Each failed cycle makes two attempts (one retry); then the gap doubles up to the cap.
    expect(attempts).toEqual([0, 1, 3, 7, 11]);
    expect(good.requests).toBeGreaterThanOrEqual(12);
    expect(poller.state('bad')).toMatchObject({ stale: true, failures: 5 });
    expect(poller.state('bad')?.lastError?.message).toBe('no answer within 1000 ms');
    expect(poller.staleMeters()).toEqual(['bad']);
  });

  it('marks values stale after a failed cycle and fresh again on recovery', async () => {
    const { poller, bad, advance } = setup();
    bad.failing = false;
    await poller.cycle();
    const fresh = poller.state('bad');
    expect(fresh).toMatchObject({ stale: false, failures: 0, readAt: 0 });
    expect(fresh?.readings).toHaveLength(Object.keys(profile.quantities).length);

    bad.failing = true;
    advance(1000);
    await poller.cycle();
    // The last values stay known, marked stale.
    expect(poller.state('bad')).toMatchObject({ stale: true, failures: 1, readAt: 0 });
    expect(poller.state('bad')?.readings).toEqual(fresh?.readings);

    bad.failing = false;
    advance(1000);
    await poller.cycle();
    expect(poller.state('bad')).toMatchObject({ stale: false, failures: 0, readAt: 2000 });
  });

  it('retries within a cycle before giving up', async () => {
    const { poller, bad } = setup();
    let calls = 0;
    bad.read = async (_space, _start, count) => {
      calls++;
      if (calls === 1) throw new Error('CRC error');
      return new Array(count).fill(0);
    };
    expect(await poller.cycle()).toEqual(['bad', 'good']);
    expect(poller.counters.errors).toBe(1);
  });
});
