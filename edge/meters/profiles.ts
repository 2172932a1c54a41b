/**
 * The meter profiles shipped in hardware/meters, loaded and validated. A profile's name is its
 * file name without `.yaml` (`eastron-sdm630`). Every problem in a file is reported with its path.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { parse } from 'yaml';
import { EipError } from '../../core/errors.js';
import { type Profile, profileSchema } from '../../core/meters/profile.js';

/** hardware/meters, the nearest above this file: found alike from the sources and from dist/. */
export function defaultProfileDir(): string {
  for (let dir = import.meta.dirname; ; dir = dirname(dir)) {
    const candidate = join(dir, 'hardware', 'meters');
    if (existsSync(candidate)) return candidate;
    if (dirname(dir) === dir) {
      throw new EipError('IO_ERROR', `no hardware/meters folder above ${import.meta.dirname}`);
    }
  }
}

export function profileNames(dir: string = defaultProfileDir()): string[] {
  return readdirSync(dir)
    .filter((file) => file.endsWith('.yaml'))
    .map((file) => basename(file, '.yaml'))
    .sort();
}

/** Parses and validates one profile; errors name the file and every bad path. */
export function parseProfile(text: string, where: string): Profile {
  let data: unknown;
  try {
    data = parse(text);
  } catch (error) {
    throw new EipError(
      'INVALID_ARGUMENT',
      `${where}: not valid YAML: ${(error as Error).message}`,
      { cause: error },
    );
  }
  const parsed = profileSchema.safeParse(data);
  if (!parsed.success) {
    const lines = parsed.error.issues.map(
      (issue) => `  ${issue.path.join('.') || '(root)'}: ${issue.message}`,
    );
    throw new EipError(
      'INVALID_ARGUMENT',
      `${where}: invalid meter profile:\n${lines.join('\n')}`,
      {
        details: { issues: parsed.error.issues },
      },
    );
  }
  return parsed.data;
}

export function loadProfile(name: string, dir: string = defaultProfileDir()): Profile {
  const names = profileNames(dir);
  if (!names.includes(name)) {
    throw new EipError(
      'INVALID_ARGUMENT',
      `unknown meter profile "${name}"; known: ${names.join(', ')}`,
      {
        details: { name },
      },
    );
  }
  const file = join(dir, `${name}.yaml`);
  return parseProfile(readFileSync(file, 'utf8'), file);
}
