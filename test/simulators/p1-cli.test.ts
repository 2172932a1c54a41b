/**
 * `eip-sim p1`: bad flags end in one line with exit code 2, a device it cannot open in one line
 * with exit code 1; the built binary serves DSMR 5 telegrams on a pseudo-terminal that the edge's
 * P1 reader reads, until SIGTERM.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { EventEmitter, once } from 'node:events';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type P1Reading, P1Source } from '../../edge/meters/p1-reader.js';
import { main } from '../../simulators/cli/program.js';
import { capture } from '../support/capture.js';
import { openPtyPair, RUN_PTY_SUITES } from '../support/pty-pair.js';

const BIN = join(import.meta.dirname, '../../dist/simulators/cli/main.js');

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe('eip-sim p1 flags', () => {
  it.each([
    [[], /^eip-sim: required option '--device <path>' not specified \(see eip-sim --help\)\n$/],
    [['--interval', '0'], /^eip-sim: --interval must be > 0 \(got "0"\)\n$/],
    [['--power', 'lots'], /^eip-sim: --power must be a decimal number \(got "lots"\)\n$/],
    [['--fault-rate', '1.5'], /^eip-sim: --fault-rate: "1.5" is not a share from 0 to 1\n$/],
    [['--fault', 'noise'], /^eip-sim: option '--fault <kind...>' argument 'noise' is invalid/],
    [['--baud', '57600'], /^eip-sim: option '--baud <rate>' argument '57600' is invalid/],
  ])('refuses %j in one line with exit code 2', async (flags, message) => {
    const device = flags.length === 0 ? [] : ['--device', '/dev/null'];
    const { code, stdout, stderr } = await capture((io) => main(['p1', ...device, ...flags], io));
    expect({ code, stdout }).toEqual({ code: 2, stdout: '' });
    expect(stderr).toMatch(message);
  });

  it('names a device it cannot open, with exit code 1', async () => {
    const { code, stderr } = await capture((io) => main(['p1', '--device', '/dev/no-such-p1'], io));
    expect(code).toBe(1);
    expect(stderr).toMatch(/^eip-sim: cannot write P1 telegrams on \/dev\/no-such-p1: .+\n$/);
  });
});

describe.skipIf(!RUN_PTY_SUITES)('eip-sim p1 on a pseudo-terminal', () => {
  it('serves DSMR 5 telegrams that the P1 reader reads, until SIGTERM', async () => {
    const pty = await openPtyPair();
    cleanups.push(() => pty.close());
    const telegrams = new EventEmitter();
    const source = new P1Source({
      path: pty.b,
      onTelegram: (reading) => telegrams.emit('telegram', reading),
    });
    await source.start();
    cleanups.push(() => source.stop());

    const child: ChildProcess = spawn(
      process.execPath,
      [BIN, 'p1', '--device', pty.a, '--interval', '0.2', '--power', '1000', '--gas-flow', '0.5'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    cleanups.push(async () => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const [{ values, header }] = (await once(telegrams, 'telegram', {
      signal: AbortSignal.timeout(10_000),
    })) as [P1Reading];
    expect(header).toBe('EIP5SIM-P1');
    expect(values.power_import).toEqual({ value: 1, unit: 'kW' });
    expect(values.gas?.unit).toBe('m3');

    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    expect(await exited).toEqual([0, null]);
    expect(stderr).toBe(
      `eip-sim: DSMR 5 P1 meter on ${pty.a} at 115200 baud, a telegram every 0.2 s, 1000 W, gas 0.5 m3/h (Ctrl-C stops)\n`,
    );
  });
});
