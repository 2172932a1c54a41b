/**
 * A real Mosquitto (Debian's `mosquitto`, /usr/sbin/mosquitto) on a free loopback port, with its
 * files in a directory of the caller's, for the suites that check the park on an external broker.
 * Where mosquitto is missing those suites skip, except in CI (CI=true), where a missing service
 * is a failure. The broker is killed when this process exits, however it exits.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { exited, freePort, killWithThisProcess } from './processes.js';

export const MOSQUITTO = '/usr/sbin/mosquitto';
export const MOSQUITTO_PASSWD = '/usr/bin/mosquitto_passwd';
export const HAS_MOSQUITTO = existsSync(MOSQUITTO) && existsSync(MOSQUITTO_PASSWD);
/** Run the suite when mosquitto is here, and also in CI, where its absence must fail loudly. */
export const RUN_MOSQUITTO_SUITES = HAS_MOSQUITTO || process.env.CI === 'true';

const START_TIMEOUT_MS = 10_000;

function requireMosquitto(): void {
  if (!HAS_MOSQUITTO) {
    throw new Error(
      `${MOSQUITTO} is not installed (apt-get install mosquitto); CI must install it`,
    );
  }
}

/** Writes a password file with Mosquitto's own hash of each password, as an operator would. */
export function writePasswordFile(file: string, logins: Readonly<Record<string, string>>): void {
  requireMosquitto();
  writeFileSync(file, '');
  for (const [user, password] of Object.entries(logins)) {
    execFileSync(MOSQUITTO_PASSWD, ['-b', file, user, password], { stdio: 'pipe' });
  }
}

export interface MosquittoOptions {
  /** Where the configuration is written; the files it names are the caller's. */
  readonly dir: string;
  /** The configuration for one listener on loopback, at a port chosen here. */
  readonly conf: (listener: { readonly host: string; readonly port: number }) => string;
}

export interface Mosquitto {
  readonly url: string;
  /** SIGTERM, and waits for the exit (Mosquitto saves its database on the way out). */
  stop(): Promise<void>;
}

async function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export async function startMosquitto(options: MosquittoOptions): Promise<Mosquitto> {
  requireMosquitto();
  const listener = { host: '127.0.0.1', port: await freePort() };
  const file = join(options.dir, 'mosquitto.conf');
  // Started as root (CI containers), Mosquitto drops to the `mosquitto` user, which cannot read
  // a private temporary directory; `user root` keeps it as it was started.
  const asRoot = process.getuid?.() === 0 ? '\n# tests started as root\nuser root\n' : '';
  writeFileSync(file, `${options.conf(listener)}${asRoot}`);
  let output = '';
  const child: ChildProcess = spawn(MOSQUITTO, ['-c', file], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  killWithThisProcess(child);
  child.stderr?.on('data', (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-20_000);
  });
  const stop = async () => {
    const done = exited(child);
    child.kill('SIGTERM');
    await done;
  };
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (!(await accepts(listener.port))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`mosquitto did not listen on ${listener.port}:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return { url: `mqtt://127.0.0.1:${listener.port}`, stop };
}
