/**
 * The P1 reader against the simulated DSMR 5 meter over a pseudo-terminal pair (socat): values
 * arrive with the meter's time stamps, and every fault of a real P1 line (pieces, wrong CRCs,
 * telegrams cut off, noise, overlong input, silence, a port that goes away) is counted and
 * recovered from, never a crash and never a wrong value.
 */
import { once } from 'node:events';
import { SerialPort } from 'serialport';
import { afterEach, describe, expect, it } from 'vitest';
import { type EipError, isEipError } from '../../../core/errors.js';
import { buildP1Telegram, parseP1Telegram } from '../../../core/meters/p1.js';
import {
  openSerialP1Port,
  type P1Port,
  type P1Reading,
  type P1SerialSettings,
  P1Source,
  type P1SourceOptions,
} from '../../../edge/meters/p1-reader.js';
import {
  P1MeterModel,
  type P1MeterSetup,
  type P1SimOptions,
  startP1Sim,
} from '../../../simulators/meters/p1-sim.js';
import { openPtyPair, type PtyPair, RUN_PTY_SUITES } from '../../support/pty-pair.js';

/** 15 January 2026, 11:00 UTC: winter time, 12:00 on the meter's clock. */
const AT = Date.UTC(2026, 0, 15, 11, 0, 0);
const SETUP: P1MeterSetup = { powerW: 2300, gasFlowM3PerH: 1.5 };

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Waits for a condition, polling; fails with what it waited for after `timeoutMs`. */
async function until(condition: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`no ${what} within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A repeatable sequence in [0, 1) (Park-Miller), so fault draws are the same on every run. */
function seeded(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 16807) % 2147483647;
    return state / 2147483647;
  };
}

/** What the reader must show for a meter of `setup` at a fixed time. */
function expectedValues(setup: P1MeterSetup, at = AT) {
  return parseP1Telegram(buildP1Telegram(new P1MeterModel(setup, () => at).telegram())).values;
}

async function pty(): Promise<PtyPair> {
  const pair = await openPtyPair();
  cleanups.push(() => pair.close());
  return pair;
}

async function meter(path: string, options: Partial<P1SimOptions> = {}) {
  const sim = await startP1Sim({ path, ...SETUP, intervalMs: 50, clock: () => AT, ...options });
  cleanups.push(() => sim.close());
  return sim;
}

async function reader(path: string, options: Partial<P1SourceOptions> = {}) {
  const errors: EipError[] = [];
  const readings: P1Reading[] = [];
  const source = new P1Source({
    path,
    onError: (error) => errors.push(error),
    onTelegram: (reading) => readings.push(reading),
    ...options,
  });
  await source.start();
  cleanups.push(() => source.stop());
  return { source, errors, readings };
}

/** Writes raw bytes on the meter's end of the line. */
async function rawLine(path: string): Promise<(text: string) => Promise<void>> {
  const port = new SerialPort({ path, baudRate: 115200 });
  await once(port, 'open');
  cleanups.push(() => new Promise((resolve) => port.close(() => resolve())));
  return (text) =>
    new Promise((resolve) => port.write(Buffer.from(text, 'latin1'), () => resolve()));
}

describe('the simulated P1 meter', () => {
  it('counts energy with its power and gas with its flow, gas at 5-minute captures', () => {
    let now = AT;
    const model = new P1MeterModel({ powerW: 2000, gasFlowM3PerH: 1.5 }, () => now);
    now = AT + 2 * 3_600_000 + 7 * 60_000;
    const telegram = model.telegram();
    expect(telegram.measuredAt).toBe(now);
    expect(telegram.electricity.electricity_import_t2).toBeCloseTo(1000 + 2 * (127 / 60), 9);
    expect(telegram.electricity.power_import).toBe(2);
    // Captured at 13:05 (2 h 5 min of flow), relayed at 13:07.
    expect(telegram.gas?.measuredAt).toBe(AT + 125 * 60_000);
    expect(telegram.gas?.m3).toBeCloseTo(100 + 1.5 * (125 / 60), 9);
  });
});

describe.skipIf(!RUN_PTY_SUITES)('P1 reader on a pseudo-terminal', () => {
  it('reads the values and the time stamps the meter sends', async () => {
    const line = await pty();
    const { source, readings, errors } = await reader(line.b);
    await meter(line.a);
    await until(() => source.counters.telegrams >= 2, 'two telegrams');
    const latest = source.latest();
    expect(latest?.values).toEqual(expectedValues(SETUP));
    expect(latest).toMatchObject({
      header: 'EIP5SIM-P1',
      measuredAt: AT,
      gasMeasuredAt: AT,
      stale: false,
    });
    expect(readings[0]?.values).toEqual(expectedValues(SETUP));
    expect(errors).toEqual([]);
    expect(source.counters).toMatchObject({ crc_errors: 0, malformed: 0, port_errors: 0 });
  });

  it('decodes telegrams that arrive in small pieces', async () => {
    const line = await pty();
    const { source, errors } = await reader(line.b);
    await meter(line.a, { faults: ['split'], random: seeded(7) });
    await until(() => source.counters.telegrams >= 3, 'three split telegrams');
    expect(source.latest()?.values).toEqual(expectedValues(SETUP));
    expect(errors).toEqual([]);
  });

  it('counts a CRC failure, names the device, and keeps the values it had', async () => {
    const line = await pty();
    const { source, errors } = await reader(line.b);
    const good = await meter(line.a);
    await until(() => source.counters.telegrams >= 1, 'a good telegram');
    await good.close();
    const telegrams = source.counters.telegrams;
    await meter(line.a, { faults: ['crc'], powerW: 5000, clock: () => AT + 60_000 });
    await until(() => source.counters.crc_errors >= 2, 'two CRC failures');
    expect(source.counters.telegrams).toBe(telegrams);
    expect(source.latest()?.values).toEqual(expectedValues(SETUP));
    expect(source.latest()?.measuredAt).toBe(AT);
    expect(isEipError(errors[0], 'INVALID_MESSAGE')).toBe(true);
    expect(errors[0]?.message).toMatch(
      new RegExp(
        `^P1 meter at ${line.b}: P1 telegram: CRC [0-9A-F]{4} does not match the telegram's [0-9A-F]{4}$`,
      ),
    );
  });

  it('drops a telegram cut off and reads the next one', async () => {
    const line = await pty();
    const { source, errors } = await reader(line.b);
    await meter(line.a, { faults: ['truncated'], faultRate: 0.5, random: seeded(11) });
    await until(
      () => source.counters.telegrams >= 3 && source.counters.malformed >= 2,
      'three telegrams and two cut off',
    );
    expect(source.counters.crc_errors).toBe(0);
    expect(source.latest()?.values).toEqual(expectedValues(SETUP));
    expect(errors[0]?.message).toMatch(
      new RegExp(`^P1 meter at ${line.b}: telegram cut off after \\d+ bytes by the next one$`),
    );
  });

  it('skips noise between telegrams', async () => {
    const line = await pty();
    const { source, errors } = await reader(line.b);
    const sim = await meter(line.a, { faults: ['garbage'], random: seeded(5) });
    await until(() => source.counters.telegrams >= 4, 'four telegrams behind noise');
    await sim.close();
    // Every telegram sent was read, but for one that closing the line may have cut short.
    await until(() => source.counters.telegrams >= sim.telegrams - 1, 'every telegram sent');
    expect(source.latest()?.values).toEqual(expectedValues(SETUP));
    expect(errors).toEqual([]);
  });

  it('starts mid-telegram, ignores stray lines and discards input longer than the bound', async () => {
    const line = await pty();
    const { source, errors } = await reader(line.b, { maxTelegramBytes: 2048 });
    const write = await rawLine(line.a);
    const telegram = buildP1Telegram(new P1MeterModel(SETUP, () => AT).telegram());
    await write(`${telegram.slice(telegram.length / 2)}a stray line\r\n!1234\r\n${telegram}`);
    await until(() => source.counters.telegrams === 1, 'the first whole telegram');
    expect(errors).toEqual([]);

    const long = `1-0:99.97.0(${'0'.repeat(100)})\r\n`.repeat(25);
    await write(telegram.replace('\r\n\r\n', `\r\n\r\n${long}`));
    await until(() => source.counters.malformed === 1, 'the overlong telegram');
    expect(errors[0]?.message).toBe(`P1 meter at ${line.b}: telegram longer than 2048 bytes`);

    await write('~'.repeat(3000));
    await until(() => source.counters.malformed === 2, 'the line without end');
    expect(errors[1]?.message).toBe(`P1 meter at ${line.b}: a line longer than 2048 bytes`);
    await write(telegram);
    await until(() => source.counters.telegrams === 2, 'the telegram after it');
    expect(source.counters.crc_errors).toBe(0);
  });

  it('marks the values stale after a silence, and fresh with the next telegram', async () => {
    const line = await pty();
    const { source } = await reader(line.b, { telegramIntervalMs: 50 });
    const sim = await meter(line.a);
    await until(() => source.counters.telegrams >= 1, 'a telegram');
    expect(source.latest()?.stale).toBe(false);
    await sim.close();
    // Three intervals of 50 ms without a telegram.
    await until(() => source.latest()?.stale === true, 'stale values', 1000);
    expect(source.latest()?.values).toEqual(expectedValues(SETUP));
    await meter(line.a);
    await until(() => source.latest()?.stale === false, 'fresh values');
  });

  it('reopens the port with back-off when the device goes away and comes back', async () => {
    let line = await pty();
    const { source, errors } = await reader(line.b, {
      // The device comes back as a new pseudo-terminal; a USB adapter would come back as itself.
      openPort: (settings) => openSerialP1Port({ ...settings, path: line.b }),
      reopenInitialMs: 20,
      reopenMaxMs: 100,
    });
    const first = await meter(line.a);
    await until(() => source.counters.telegrams >= 1, 'a telegram');
    const path = line.b;
    await first.close();
    await line.close();
    await until(() => source.counters.port_errors >= 2, 'the loss and a failed reopen');
    expect(errors[0]?.message).toMatch(new RegExp(`^P1 meter at ${path}: P1 port lost: `));
    expect(errors[1]?.message).toMatch(
      new RegExp(`^P1 meter at ${path}: cannot open the P1 port: `),
    );
    expect(errors.every((error) => isEipError(error, 'IO_ERROR') && error.retryable)).toBe(true);

    line = await pty();
    const telegrams = source.counters.telegrams;
    await meter(line.a, { powerW: 1000 });
    await until(() => source.counters.telegrams > telegrams, 'a telegram after the reopen');
    expect(source.counters.reopens).toBe(1);
    expect(source.latest()?.values).toEqual(expectedValues({ ...SETUP, powerW: 1000 }));
  });
});

describe('P1 reader without a line', () => {
  it('refuses to start on a device that is not there, naming it, and keeps trying', async () => {
    const errors: EipError[] = [];
    const source = new P1Source({
      path: '/dev/no-such-p1',
      reopenInitialMs: 10,
      onError: (error) => errors.push(error),
    });
    cleanups.push(() => source.stop());
    const failure = await source.start().catch((error: unknown) => error);
    expect(isEipError(failure, 'IO_ERROR')).toBe(true);
    expect((failure as EipError).retryable).toBe(true);
    expect((failure as Error).message).toMatch(
      /^P1 meter at \/dev\/no-such-p1: cannot open the P1 port: /,
    );
    // The retries back off (10, 20, 40 ms ...) and report each failure.
    await until(() => source.counters.port_errors >= 3, 'two retries');
    expect(errors[0]?.message).toBe((failure as Error).message);
    expect(source.counters.reopens).toBe(0);
  });

  it('opens DSMR 5 lines at 115200 8N1 and DSMR 3 lines as told (9600 7E1)', async () => {
    const opened: P1SerialSettings[] = [];
    const fake: P1Port = { isOpen: false, on: () => undefined, close: () => undefined };
    const openPort = async (settings: P1SerialSettings) => {
      opened.push(settings);
      return fake;
    };
    const dsmr5 = new P1Source({ path: '/dev/ttyUSB0', openPort });
    const dsmr3 = new P1Source({
      path: '/dev/ttyUSB1',
      baudRate: 9600,
      dataBits: 7,
      parity: 'even',
      openPort,
    });
    await dsmr5.start();
    await dsmr3.start();
    await dsmr5.stop();
    await dsmr3.stop();
    expect(opened).toEqual([
      { path: '/dev/ttyUSB0', baudRate: 115200, dataBits: 8, parity: 'none' },
      { path: '/dev/ttyUSB1', baudRate: 9600, dataBits: 7, parity: 'even' },
    ]);
  });
});
