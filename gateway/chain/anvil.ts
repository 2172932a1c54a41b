/**
 * Starts the default chain: anvil from the npm package `@foundry-rs/anvil`, whose per-platform
 * package carries the binary (nothing is downloaded). Tests and benchmarks run it in memory on a
 * free loopback port; `stateFile` keeps the chain on disk across restarts, for the gateway to come.
 * An anvil started here never outlives this process.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { EipError } from '../../core/errors.js';

export interface AnvilOptions {
  /** 0 (the default) picks a free port. */
  readonly port?: number;
  readonly chainId?: number;
  /** Keep the chain in this file across restarts (anvil --state). */
  readonly stateFile?: string;
  /**
   * Also write the state file every this many seconds (anvil --state-interval): without it the
   * state is written only on a clean stop, and a `kill -9` loses the chain since the last start.
   */
  readonly stateIntervalS?: number;
  /** Seconds between blocks; by default a block is mined per transaction. */
  readonly blockTime?: number;
  /** How long to wait for anvil to listen. */
  readonly startTimeoutMs?: number;
}

export interface Anvil {
  readonly url: string;
  readonly chainId: number;
  stop(): Promise<void>;
}

/** Anvil's chain id, and the first of its well-known development keys (public knowledge). */
export const ANVIL_CHAIN_ID = 31337;
export const ANVIL_DEV_KEY = '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80';
/**
 * Anvil's second development key, for demo plants' own transactions (gas, approvals): the
 * first is the gateway's, whose nonces the gateway's sender keeps to itself.
 */
export const ANVIL_SECOND_KEY =
  '0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d';

const ARCH: Partial<Record<string, string>> = { x64: 'amd64', arm64: 'arm64' };

/** The anvil binary inside the platform package that npm installed as an optional dependency. */
export function anvilBinary(): string {
  const name = `@foundry-rs/anvil-${process.platform}-${ARCH[process.arch] ?? process.arch}`;
  try {
    const manifest = createRequire(import.meta.url).resolve(`${name}/package.json`);
    return join(dirname(manifest), 'bin', process.platform === 'win32' ? 'anvil.exe' : 'anvil');
  } catch (error) {
    throw new EipError(
      'IO_ERROR',
      `anvil is not installed for this platform (${name}); run npm ci`,
      {
        cause: error,
      },
    );
  }
}

export async function startAnvil(options: AnvilOptions = {}): Promise<Anvil> {
  const chainId = options.chainId ?? ANVIL_CHAIN_ID;
  const args = [
    '--host',
    '127.0.0.1',
    '--port',
    String(options.port ?? 0),
    '--chain-id',
    String(chainId),
  ];
  if (options.stateFile !== undefined) args.push('--state', options.stateFile);
  if (options.stateIntervalS !== undefined)
    args.push('--state-interval', String(options.stateIntervalS));
  if (options.blockTime !== undefined) args.push('--block-time', String(options.blockTime));
  const child = spawn(anvilBinary(), args, { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  child.once('exit', () => running.delete(child));
  const url = await listeningUrl(child, options.startTimeoutMs ?? 15_000);
  return { url, chainId, stop: () => stop(child) };
}

/** Anvils this process started, killed if it exits without stopping them (a crashed test run). */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

function listeningUrl(child: ChildProcess, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    // Only the lines before anvil listens are kept, for the error message if it never does.
    let output: string[] = [];
    const fail = (message: string, cause?: unknown) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      const tail = output.slice(-5).join('\n');
      reject(new EipError('IO_ERROR', `anvil ${message}${tail ? `:\n${tail}` : ''}`, { cause }));
    };
    const timer = setTimeout(() => fail(`did not listen within ${timeoutMs} ms`), timeoutMs);
    child.once('error', (error) => fail('could not start', error));
    child.once('exit', (code, signal) =>
      fail(`exited ${signal ? `on ${signal}` : `with code ${code}`} before listening`),
    );
    let listening = false;
    const keep = (line: string) => {
      if (!listening) output.push(line);
    };
    createInterface({ input: child.stderr as NodeJS.ReadableStream }).on('line', keep);
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      keep(line);
      const match = /^Listening on (\S+)$/.exec(line.trim());
      if (match) {
        clearTimeout(timer);
        listening = true;
        output = [];
        child.removeAllListeners('exit');
        child.removeAllListeners('error');
        // Keep draining stdout so anvil never blocks on a full pipe.
        child.stdout?.resume();
        resolve(`http://${match[1]}`);
      }
    });
  });
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    // SIGTERM lets anvil write its state file; SIGKILL if it hangs.
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
