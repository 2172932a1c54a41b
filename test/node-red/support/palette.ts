/**
 * The palette as the tests load it: the package built by node-red-flows/build.mjs, each test file
 * staging its own copy in a temporary directory (vitest runs files in parallel, and none may
 * rebuild a package another one is loading). The copy's node_modules links to the repository's,
 * so its dependencies resolve as they do in an install.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

export const ROOT = join(import.meta.dirname, '..', '..', '..');
export const PACKAGE_DIR = join(ROOT, 'node-red-flows');

export interface PackageJson {
  readonly name: string;
  readonly keywords: readonly string[];
  readonly engines: { readonly node: string };
  readonly 'node-red': {
    readonly version: string;
    readonly nodes: Readonly<Record<string, string>>;
  };
}

export function readPackageJson(dir: string = PACKAGE_DIR): PackageJson {
  return JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as PackageJson;
}

/** What a node file exports: the function Node-RED calls with its API. */
export type NodeModule = (RED: unknown) => unknown;

export interface StagedPalette {
  readonly dir: string;
  /** Each node type's module, loaded as Node-RED 4 loads it: require(), then `default`. */
  modules(): Record<string, NodeModule>;
  remove(): void;
}

/** A cold tsc on a busy 2-core box takes a few seconds; this is a hang, not a slow build. */
const BUILD_TIMEOUT_MS = 120_000;

export async function stagePalette(): Promise<StagedPalette> {
  const dir = mkdtempSync(join(tmpdir(), 'eip-palette-'));
  const remove = () => rmSync(dir, { recursive: true, force: true });
  await promisify(execFile)(process.execPath, [join(PACKAGE_DIR, 'build.mjs'), '--out', dir], {
    timeout: BUILD_TIMEOUT_MS,
  }).catch((error: unknown) => {
    remove();
    throw error;
  });
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
  const require = createRequire(import.meta.url);
  return {
    dir,
    modules: () =>
      Object.fromEntries(
        Object.entries(readPackageJson(dir)['node-red'].nodes).map(([type, file]) => {
          const loaded = require(join(dir, file)) as { default: NodeModule };
          return [type, loaded.default];
        }),
      ),
    remove,
  };
}
