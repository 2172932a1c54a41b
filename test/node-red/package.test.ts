/**
 * The package as npm ships it: `npm pack` (which builds it first, through `prepack`), what the
 * tarball holds, and the tarball installed with npm into a Node-RED user directory outside the
 * repository, where a stock Node-RED (its own executable, on a loopback port) loads every node.
 * The install takes the package's dependencies from npm's cache where it has them and from the
 * registry otherwise, as a technician's would: `npm ci` of the repository fetches tarballs by the
 * lockfile and leaves the packuments that resolving `^6.17.0` needs out of the cache, so an
 * offline install failed on a fresh machine (ENOTCACHED) and passed only where something had
 * filled the cache before.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../support/processes.js';
import { PACKAGE_DIR, ROOT, readPackageJson } from './support/palette.js';

const run = promisify(execFile);
const pkg = readPackageJson();
/** npm runs the build (tsc) before packing; a cold one on a busy 2-core box takes seconds. */
const NPM_TIMEOUT_MS = 180_000;

interface Packed {
  readonly filename: string;
  readonly files: readonly { readonly path: string }[];
}

let dir: string;
let packed: Packed;
let files: string[];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'eip-pack-'));
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', dir], {
    cwd: PACKAGE_DIR,
    timeout: NPM_TIMEOUT_MS,
  });
  [packed] = JSON.parse(stdout) as [Packed];
  files = packed.files.map((f) => f.path);
}, NPM_TIMEOUT_MS);
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('npm pack', () => {
  it('says what Node-RED and its palette manager need to know', () => {
    expect(pkg.name).toMatch(/^node-red-contrib-/);
    expect(pkg.keywords).toContain('node-red');
    expect(pkg['node-red'].version).toBe('>=4.0.0');
    expect(pkg.engines.node).toBe('>=20.19');
  });

  it('holds every node with its HTML, the examples and the meter profiles', () => {
    for (const file of Object.values(pkg['node-red'].nodes)) {
      expect(files).toContain(file);
      expect(files).toContain(file.replace(/\.js$/, '.html'));
    }
    for (const example of readdirSync(join(PACKAGE_DIR, 'examples'))) {
      expect(files).toContain(`examples/${example}`);
    }
    for (const profile of readdirSync(join(ROOT, 'hardware', 'meters'))) {
      if (profile.endsWith('.yaml')) expect(files).toContain(`hardware/meters/${profile}`);
    }
    // The core and edge modules the nodes import, compiled: nothing of the repository's sources.
    expect(files).toContain('lib/core/negotiation/strategy.js');
    expect(files).toContain('lib/edge/meters/modbus-client.js');
    expect(files.filter((f) => f.endsWith('.ts'))).toEqual([]);
  });
});

describe('installed from the tarball', () => {
  let nodeRed: ChildProcess | undefined;
  afterAll(() => {
    nodeRed?.kill();
  });

  it('loads every node into a stock Node-RED, without the repository', async () => {
    const userDir = join(dir, 'node-red');
    mkdirSync(userDir);
    writeFileSync(join(userDir, 'package.json'), '{ "name": "node-red-project", "private": true }');
    await run(
      'npm',
      ['install', '--prefer-offline', '--no-audit', '--no-fund', join(dir, packed.filename)],
      { cwd: userDir, timeout: NPM_TIMEOUT_MS },
    );

    const port = await freePort();
    // Loopback only, and quiet: settings.js in the user directory is the one Node-RED reads.
    writeFileSync(
      join(userDir, 'settings.js'),
      `module.exports = ${JSON.stringify({
        uiHost: '127.0.0.1',
        uiPort: port,
        flowFile: 'flows.json',
        credentialSecret: 'test only',
        logging: { console: { level: 'warn' } },
        editorTheme: { tours: false },
        telemetry: { enabled: false, updateNotification: false },
        diagnostics: { enabled: false, ui: false },
      })};\n`,
    );
    const redJs = createRequire(import.meta.url).resolve('node-red/red.js');
    nodeRed = spawn(process.execPath, [redJs, '--userDir', userDir], {
      cwd: userDir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    nodeRed.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    nodeRed.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });

    const sets = await nodesOf(`http://127.0.0.1:${port}`, () => output);
    const ours = sets.filter((set) => set.module === pkg.name);
    expect(
      ours.map((set) => set.err ?? null),
      output,
    ).toEqual(ours.map(() => null));
    expect(ours.flatMap((set) => set.types).sort()).toEqual(
      Object.keys(pkg['node-red'].nodes).sort(),
    );
    expect(ours.every((set) => set.enabled)).toBe(true);
  }, 60_000);
});

interface NodeSet {
  readonly module: string;
  readonly types: string[];
  readonly enabled: boolean;
  readonly err?: string;
}

/** The node sets Node-RED reports once it answers; its output in the error if it never does. */
async function nodesOf(url: string, output: () => string): Promise<NodeSet[]> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const response = await fetch(`${url}/nodes`, { headers: { accept: 'application/json' } })
      .then((r) => (r.ok ? r : undefined))
      .catch(() => undefined);
    if (response) return (await response.json()) as NodeSet[];
    if (Date.now() > deadline) throw new Error(`Node-RED did not answer:\n${output()}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
