/**
 * Node properties from the edit dialog are untrusted input like any other: each node parses its
 * own with a zod schema when it starts, and a bad one stops that node with one message naming
 * every wrong field, instead of failing later on its first message.
 */
import { z } from 'zod';
import { EipError } from '../../core/errors.js';
import { DECIMAL } from '../../core/units.js';
import type { Node, NodeDef } from './red.js';
import { failing } from './status.js';

/**
 * A number from a text field. The editor saves it as typed, a string, which must then be a plain
 * decimal (core's one number syntax: no exponent, no hex); a flow written by hand may hold a
 * number.
 */
export const decimal = z.union([
  z.number(),
  z
    .string()
    .trim()
    .regex(DECIMAL, 'must be a plain decimal number')
    .transform((text) => Number(text)),
]);

/** A field left empty: not set, so a default or the message decides. */
export const blank = z
  .string()
  .trim()
  .length(0)
  .transform(() => undefined);

export function parseConfig<S extends z.ZodType>(schema: S, def: NodeDef): z.output<S> {
  const result = schema.safeParse(def);
  if (result.success) return result.data;
  const problems = result.error.issues.map(
    (issue) => `${issue.path.join('.') || '(node)'}: ${issue.message}`,
  );
  throw new EipError('INVALID_ARGUMENT', `${def.type} settings: ${problems.join('; ')}`, {
    details: { node: def.id, problems },
  });
}

/**
 * Runs a node's setup (parsing its settings, finding its gateway). When that fails the node
 * stops there: its dot turns red with the reason, which is also logged, and it returns nothing.
 */
export function setUp<T>(node: Node, setup: () => T): T | undefined {
  try {
    return setup();
  } catch (error) {
    node.status(failing(error));
    node.error(error as Error);
    return undefined;
  }
}
