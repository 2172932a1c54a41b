/**
 * `eip-gateway broker` as an operator runs it: the built binary, a credentials file, port 0; a
 * prosumer logs in and publishes, SIGTERM stops it with exit code 0. Bad flags are one line.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import mqtt from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../gateway/broker/credentials.js';
import { main } from '../../gateway/cli/program.js';
import { capture } from '../support/capture.js';

const BIN = join(import.meta.dirname, '../../dist/gateway/cli/main.js');
const dir = mkdtempSync(join(tmpdir(), 'eip-broker-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('eip-gateway broker', () => {
  it('serves logins from its credentials file until SIGTERM', async () => {
    const file = join(dir, 'credentials.yaml');
    writeFileSync(
      file,
      `clients:\n  plant-a: { role: prosumer, password: "${await hashPassword('secret-a-long')}" }\n`,
    );
    const child = spawn(
      process.execPath,
      [BIN, 'broker', '--credentials', file, '--tcp', '127.0.0.1:0'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    try {
      const lines = createInterface({ input: child.stdout });
      let url: string | undefined;
      for await (const line of lines) {
        const entry = JSON.parse(line) as { msg: string; tcp?: string; clients?: number };
        if (entry.msg === 'broker listening') {
          expect(entry.clients).toBe(1);
          url = entry.tcp;
          break;
        }
      }
      expect(url).toMatch(/^mqtt:\/\/127\.0\.0\.1:\d+$/);
      const client = await mqtt.connectAsync(url ?? '', {
        username: 'plant-a',
        password: 'secret-a-long',
        reconnectPeriod: 0,
      });
      await client.publishAsync('eip/v1/agents/plant-a/status', '{}', { qos: 1 });
      await client.endAsync();
      child.kill('SIGTERM');
      expect((await once(child, 'exit'))[0]).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  it.each([
    [['--credentials', '/no/such/file.yaml'], /^eip-gateway: cannot read \/no\/such\/file\.yaml: /],
    [
      ['--credentials', 'x', '--tls', '0.0.0.0:8883'],
      /^eip-gateway: --tls needs --cert and --key\n$/,
    ],
    [['--credentials', 'x', '--tcp', 'nowhere'], /^eip-gateway: --tcp: "nowhere" is not HOST:PORT/],
  ])('refuses %j in one line', async (flags, message) => {
    const written = join(dir, 'x');
    writeFileSync(written, 'clients: {}\n');
    const args = flags.map((f) => (f === 'x' ? written : f));
    const { code, stderr } = await capture((io) => main(['broker', ...args], io, {}));
    expect(code).toBe(2);
    expect(stderr).toMatch(message);
  });
});
