/**
 * A YAML file read against a zod schema, with every problem named by its file, line and path
 * (`park.yaml:14: prosumers.2.utilities.biogas.storage.capacity: must be > 0`), so whoever wrote
 * the file can fix all of it at once. Text in, value or one INVALID_ARGUMENT error out: no I/O.
 */

import { LineCounter, type Node, parseDocument } from 'yaml';
import type { z } from 'zod';
import { EipError } from './errors.js';

export interface Problem {
  readonly path: readonly (string | number)[];
  readonly message: string;
}

/**
 * Parses `text` (from `where`, a file name) with `schema`; `crossCheck` finds what the schema
 * cannot (references between parts), on the parsed value. Throws INVALID_ARGUMENT listing every
 * problem, one per line, in `details.problems`.
 */
export function parseYaml<S extends z.ZodType>(
  schema: S,
  text: string,
  where: string,
  crossCheck: (value: z.output<S>) => readonly Problem[] = () => [],
): z.output<S> {
  const counter = new LineCounter();
  const doc = parseDocument(text, { lineCounter: counter, prettyErrors: false });
  if (doc.errors.length > 0) {
    const lines = doc.errors.map((e) => `${where}:${counter.linePos(e.pos[0]).line}: ${e.message}`);
    throw yamlError(where, lines);
  }
  const result = schema.safeParse(doc.toJS());
  const problems: readonly Problem[] = result.success
    ? crossCheck(result.data)
    : result.error.issues.map((issue) => ({
        path: issue.path as (string | number)[],
        message: describeIssue(issue),
      }));
  if (problems.length > 0 || !result.success) {
    throw yamlError(
      where,
      problems.map((p) => {
        const line = lineOf(doc, counter, p.path);
        const at = p.path.length ? p.path.join('.') : '(top level)';
        return `${where}${line === undefined ? '' : `:${line}`}: ${at}: ${p.message}`;
      }),
    );
  }
  return result.data;
}

function lineOf(
  doc: ReturnType<typeof parseDocument>,
  counter: LineCounter,
  path: readonly (string | number)[],
) {
  // The deepest node that exists on the path: a missing key is reported where it belongs.
  for (let depth = path.length; depth >= 0; depth--) {
    const node = doc.getIn(path.slice(0, depth), true) as Node | undefined;
    if (node?.range) {
      return counter.linePos(node.range[0]).line;
    }
  }
  return undefined;
}

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys') {
    return `unknown key ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
  }
  if (issue.code === 'invalid_type' && issue.message.endsWith('received undefined')) {
    return `is required (${issue.expected})`;
  }
  return issue.message;
}

function yamlError(where: string, lines: readonly string[]): EipError {
  return new EipError(
    'INVALID_ARGUMENT',
    `${where}: ${lines.length} problem(s):\n  ${lines.join('\n  ')}`,
    { details: { file: where, problems: lines } },
  );
}
