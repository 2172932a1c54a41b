/**
 * A real InfluxDB 1.x (Debian's `influxdb`, /usr/bin/influxd) on loopback, with its data in a
 * temporary directory and free ports, for the time-series suites. It can be stopped, killed and
 * started again on the same port and data, as an outage looks to the gateway. Where influxd is
 * missing the suites that need it skip, except in CI (CI=true), where a missing service is a
 * failure. influxd is killed when this process exits, however it exits (processes.ts).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exited, freePort, killWithThisProcess } from './processes.js';

export const INFLUXD = '/usr/bin/influxd';
export const HAS_INFLUXD = existsSync(INFLUXD);
/** Run the suite when influxd is here, and also in CI, where its absence must fail loudly. */
export const RUN_INFLUX_SUITES = HAS_INFLUXD || process.env.CI === 'true';

const START_TIMEOUT_MS = 20_000;

export interface Influxd {
  /** http://127.0.0.1:PORT, the same across restarts. */
  readonly url: string;
  readonly running: boolean;
  /** SIGTERM, and waits for the exit: InfluxDB closes its shards and WAL cleanly. */
  stop(): Promise<void>;
  /** SIGKILL, and waits for the exit: a crash or a power cut of the database host. */
  kill(): Promise<void>;
  /** Starts it again (stopping it first if it runs) on the same port and data; waits for /ping. */
  restart(): Promise<void>;
  /** Stops it and removes its data. */
  close(): Promise<void>;
}

/**
 * The 1.6 configuration, every listener but HTTP off. 1.6 has no [admin] section any more (the
 * admin UI went in 1.3); graphite, collectd, opentsdb and udp are off by default and stay off.
 */
function config(dir: string, httpPort: number, rpcPort: number): string {
  return `reporting-enabled = false
bind-address = "127.0.0.1:${rpcPort}"

[meta]
  dir = "${join(dir, 'meta')}"

[data]
  dir = "${join(dir, 'data')}"
  wal-dir = "${join(dir, 'wal')}"
  query-log-enabled = false

[monitor]
  store-enabled = false

[subscriber]
  enabled = false

[continuous_queries]
  enabled = false

[http]
  bind-address = "127.0.0.1:${httpPort}"
  log-enabled = false

[[graphite]]
  enabled = false

[[collectd]]
  enabled = false

[[opentsdb]]
  enabled = false

[[udp]]
  enabled = false

[logging]
  level = "warn"
`;
}

async function pings(url: string): Promise<boolean> {
  try {
    const response = await fetch(`${url}/ping`, { signal: AbortSignal.timeout(1000) });
    return response.status === 204;
  } catch {
    return false;
  }
}

export async function startInfluxd(): Promise<Influxd> {
  if (!HAS_INFLUXD) {
    throw new Error(`${INFLUXD} is not installed (apt-get install influxdb); CI must install it`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'eip-influxd-'));
  const [httpPort, rpcPort] = [await freePort(), await freePort()];
  const configFile = join(dir, 'influxdb.conf');
  writeFileSync(configFile, config(dir, httpPort, rpcPort));
  const url = `http://127.0.0.1:${httpPort}`;
  let child: ChildProcess | undefined;
  const removeDir = () => rmSync(dir, { recursive: true, force: true });
  // Its files go with this process too; influxd first, so that it writes no more of them.
  const onExit = () => {
    child?.kill('SIGKILL');
    removeDir();
  };
  process.once('exit', onExit);

  const start = async () => {
    let output = '';
    const influxd = spawn(INFLUXD, ['-config', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = influxd;
    for (const stream of [influxd.stdout, influxd.stderr]) {
      stream?.on('data', (chunk: Buffer) => {
        output = (output + chunk.toString()).slice(-4000);
      });
    }
    killWithThisProcess(influxd);
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (!(await pings(url))) {
      if (influxd.exitCode !== null || Date.now() > deadline) {
        influxd.kill('SIGKILL');
        await exited(influxd);
        throw new Error(
          `influxd did not answer ${url}/ping within ${START_TIMEOUT_MS} ms:\n${output}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  const signal = async (name: 'SIGTERM' | 'SIGKILL') => {
    if (child === undefined) return;
    const running = child;
    child = undefined;
    const done = exited(running);
    running.kill(name);
    await done;
  };
  await start();
  return {
    url,
    get running() {
      return child !== undefined;
    },
    stop: () => signal('SIGTERM'),
    kill: () => signal('SIGKILL'),
    restart: async () => {
      await signal('SIGTERM');
      await start();
    },
    close: async () => {
      await signal('SIGTERM');
      removeDir();
      process.removeListener('exit', onExit);
    },
  };
}
