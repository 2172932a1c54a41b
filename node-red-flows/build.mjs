/**
 * Builds the package so that it installs without the rest of the repository:
 *
 * - tsc compiles the nodes and every core/ and edge/ module they import into lib/, keeping the
 *   repository's layout (lib/core, lib/edge, lib/node-red-flows/nodes) so that their relative
 *   imports hold unchanged; the output is ES modules, which Node-RED 4 loads with require() on
 *   Node >= 20.19 (require(esm));
 * - each node's HTML (palette entry, edit dialog, help) is copied beside its JS, where Node-RED
 *   looks for it;
 * - the meter profiles of hardware/meters are copied to hardware/meters in the package, the
 *   nearest such folder above lib/edge/meters/profiles.js, which is where that module looks.
 *
 * `node build.mjs` builds in place (npm runs it before `npm pack`). `--out DIR` builds a whole
 * package into DIR instead (package.json, README and examples too): the tests stage one each, so
 * test files running in parallel never rebuild a package another one is loading.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const here = import.meta.dirname;
const { values } = parseArgs({ options: { out: { type: 'string' } } });
const out = resolve(values.out ?? here);
const nodesOut = join(out, 'lib', 'node-red-flows', 'nodes');

rmSync(join(out, 'lib'), { recursive: true, force: true });
rmSync(join(out, 'hardware'), { recursive: true, force: true });

const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
execFileSync(
  process.execPath,
  [tsc, '-p', join(here, 'tsconfig.json'), '--outDir', join(out, 'lib')],
  {
    stdio: 'inherit',
  },
);

for (const file of readdirSync(join(here, 'nodes')).filter((f) => f.endsWith('.html'))) {
  cpSync(join(here, 'nodes', file), join(nodesOut, file));
}
const profiles = join(here, '..', 'hardware', 'meters');
for (const file of readdirSync(profiles).filter((f) => f.endsWith('.yaml'))) {
  cpSync(join(profiles, file), join(out, 'hardware', 'meters', file));
}
if (out !== here) {
  for (const entry of ['package.json', 'README.md', 'examples']) {
    cpSync(join(here, entry), join(out, entry), { recursive: true });
  }
}
