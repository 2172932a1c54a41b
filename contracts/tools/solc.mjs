#!/usr/bin/env node
// A `solc` executable for forge, backed by the npm `solc` package, so that
// `forge --offline --use contracts/tools/solc.mjs` never downloads a compiler.
// forge asks for `--version` (it parses the "Version:" line, and only accepts a
// native build tag) and otherwise pipes standard JSON through stdin.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isAbsolute, resolve } from 'node:path';

const solc = createRequire(import.meta.url)('solc');
const args = process.argv.slice(2);

if (args.includes('--version')) {
  const version = solc.version().replace(/\.Emscripten\.clang$/, '.Linux.g++');
  process.stdout.write(`solc, the solidity compiler commandline interface\nVersion: ${version}\n`);
  process.exit(0);
}
if (!args.includes('--standard-json')) {
  process.stderr.write(
    `solc.mjs: only --version and --standard-json are supported, got: ${args.join(' ')}\n`,
  );
  process.exit(2);
}

// forge normally inlines every source's content; this callback only serves a
// source it left as a path, looked up under the roots forge allowed.
const roots = [process.cwd()];
for (const flag of ['--base-path', '--include-path', '--allow-paths']) {
  args.forEach((arg, i) => {
    if (arg === flag && args[i + 1]) roots.push(...args[i + 1].split(','));
  });
}
function findImport(path) {
  for (const root of isAbsolute(path) ? [''] : roots) {
    try {
      return { contents: readFileSync(resolve(root, path), 'utf8') };
    } catch {
      // try the next root
    }
  }
  return { error: `File not found under ${roots.join(', ')}: ${path}` };
}

const input = readFileSync(0, 'utf8');
process.stdout.write(solc.compile(input, { import: findImport }));
