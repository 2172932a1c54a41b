/**
 * The dependency rules of ARCHITECTURE.md, checked: core imports only core and its few pure
 * libraries (no I/O); edge and gateway never import each other.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..');

function sources(folder: string): string[] {
  const dir = join(ROOT, folder);
  try {
    return readdirSync(dir, { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.ts'))
      .map((f) => join(dir, f));
  } catch {
    return []; // a folder a later issue fills
  }
}

/** Static imports and re-exports, side-effect imports and dynamic import() calls. */
function imports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const forms = [
    /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]/g,
    /(?:^|\n)\s*import\s+['"]([^'"]+)['"]/g,
    /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g,
  ];
  return forms.flatMap((form) => [...text.matchAll(form)].map((m) => m[1] ?? ''));
}

function targetFolder(file: string, specifier: string): string | null {
  if (!specifier.startsWith('.')) return null;
  const target = relative(ROOT, join(file, '..', specifier));
  return target.split('/')[0] ?? null;
}

describe('architecture', () => {
  it('core imports only core, zod, ethers, libsecp256k1, yaml (text to value) and (for the logger) pino: no I/O', () => {
    const allowed = new Set(['zod', 'pino', 'tiny-secp256k1', 'yaml']);
    for (const file of sources('core')) {
      for (const specifier of imports(file)) {
        const folder = targetFolder(file, specifier);
        if (folder !== null)
          expect(folder, `${relative(ROOT, file)} imports ${specifier}`).toBe('core');
        else
          expect(
            allowed.has(specifier) || specifier.startsWith('ethers/'),
            `${relative(ROOT, file)} imports ${specifier}`,
          ).toBe(true);
      }
    }
    expect(sources('core').length).toBeGreaterThan(5);
  });

  it('core and edge import ethers by subpath, never the root that loads all of it', () => {
    // The root pulls in providers, contracts and word lists: 13 MB of an edge box's memory.
    for (const file of [...sources('core'), ...sources('edge')]) {
      expect(imports(file), relative(ROOT, file)).not.toContain('ethers');
    }
  });

  it('edge and gateway never import each other: they meet only in core', () => {
    const pairs = [
      ['edge', 'gateway'],
      ['gateway', 'edge'],
    ] as const;
    for (const [from, to] of pairs) {
      for (const file of sources(from)) {
        for (const specifier of imports(file)) {
          expect(
            targetFolder(file, specifier),
            `${relative(ROOT, file)} imports ${specifier}`,
          ).not.toBe(to);
        }
      }
    }
  });

  it('outside contracts/, the contracts are used only through their build: artifacts and bindings', () => {
    for (const folder of ['core', 'edge', 'gateway', 'simulators', 'node-red-flows', 'test']) {
      for (const file of sources(folder)) {
        for (const specifier of imports(file)) {
          if (targetFolder(file, specifier) !== 'contracts') continue;
          const inside = relative(join(ROOT, 'contracts'), join(file, '..', specifier));
          expect(inside, `${relative(ROOT, file)} imports ${specifier}`).toMatch(
            /^(artifacts|types)\//,
          );
        }
      }
    }
  });
});
