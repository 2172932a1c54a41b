/**
 * kill -9 in the middle of appending: every append that had resolved is on disk after the
 * restart, in order, and is then delivered through a real broker.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { Forwarder } from '../../../edge/outbox/forwarder.js';
import { MqttPublisher } from '../../../edge/outbox/mqtt-publish.js';
import { Outbox } from '../../../edge/outbox/outbox.js';
import { startBroker } from '../../support/broker.js';
import { until } from '../../support/until.js';
import { Receiver, reading, tempDir } from './support.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const FIXTURE = join(import.meta.dirname, 'fixtures', 'append-until-killed.ts');

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/**
 * Runs the fixture until it has printed `killAfter` lines, then SIGKILLs it. Node runs the
 * TypeScript itself (`--import tsx`), not through `npx tsx`: the tsx command starts the script in
 * a second process, which a SIGKILL to the first would leave running with the store still locked.
 */
async function appendUntilKilled(dir: string, killAfter: number): Promise<string[]> {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', FIXTURE, dir, '100000'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString('utf8');
    if (stdout.split('\n').length > killAfter && child.signalCode === null) child.kill('SIGKILL');
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  await Promise.race([
    exited,
    new Promise((_, reject) =>
      setTimeout(() => reject(new Error(`the appender did not get far: ${stderr}`)), 30_000),
    ),
  ]);
  expect(child.signalCode, stderr).toBe('SIGKILL');
  return stdout.split('\n').filter((line) => line !== '');
}

describe('outbox after kill -9', () => {
  it('keeps every append that had resolved, in order, and forwards them all', async () => {
    const temp = tempDir('killed');
    cleanups.push(temp.remove);
    const lines = await appendUntilKilled(temp.dir, 400);
    const printed = lines.map((line) => line.split(' ').map(Number) as [number, number]);
    expect(printed.length).toBeGreaterThanOrEqual(400);

    const outbox = await Outbox.open({ dir: temp.dir });
    cleanups.push(() => outbox.close());
    const stored = await outbox.peek(100_000);
    const storedSeqs = stored.map((r) => r.seq);
    const bySeq = new Map(stored.map((r) => [r.seq, r]));
    for (const [seq, index] of printed) {
      const { topic, render } = reading(index);
      expect(bySeq.get(seq), `seq ${seq}`).toMatchObject({ topic, payload: render(seq) });
    }
    // In order and without a hole; past the last printed line only appends whose batch reached
    // the disk before the kill.
    expect(storedSeqs).toEqual(storedSeqs.map((_, i) => (storedSeqs[0] ?? 0) + i));
    expect(storedSeqs[0]).toBe(printed[0]?.[0]);
    expect(outbox.stats()).toMatchObject({ depth: stored.length, appended: stored.length });

    const receiver = new Receiver();
    const broker = await startBroker({
      onPublish: (topic, payload) => receiver.take(topic, payload),
    });
    cleanups.push(() => broker.close());
    const client = mqtt.connect(broker.url, { reconnectPeriod: 0 });
    cleanups.push(() => new Promise<void>((resolve) => client.end(true, {}, () => resolve())));
    await new Promise((resolve) => client.once('connect', resolve));
    const forwarder = new Forwarder({ outbox, publish: new MqttPublisher(client).publish });
    forwarder.start();
    cleanups.push(() => forwarder.stop());
    await until('every stored reading delivered', () => outbox.stats().depth === 0);
    expect(receiver.kept.map((a) => a.payload)).toEqual(stored.map((r) => r.payload));
    expect(receiver.duplicates).toBe(0);

    // Numbering goes on above everything handed out before the kill.
    expect(await outbox.append('t', () => 'after')).toBe((storedSeqs.at(-1) ?? 0) + 1);
  });
});
