/**
 * The API's path and query parameters as zod schemas, and the one parse that turns a bad one into
 * an INVALID_ARGUMENT error naming it (the server answers 400 with that name). Query objects are
 * strict, so a misspelt parameter is refused instead of silently ignored.
 */
import { getAddress } from 'ethers';
import { z } from 'zod';
import { EipError } from '../../core/errors.js';
import { address, bytes32 } from '../../core/messages/schemas.js';
import { UTILITY_IDS } from '../../core/utilities.js';

export const DEFAULT_LIMIT = 50;
export const MAX_LIMIT = 500;

const wholeNumber = z
  .string()
  .regex(/^\d{1,15}$/, 'must be a whole number')
  .transform(Number);

export const limit = wholeNumber.pipe(z.number().min(1).max(MAX_LIMIT)).default(DEFAULT_LIMIT);

/** The `next` of a previous page: "block:logIndex". */
export const cursor = z
  .string()
  .regex(/^\d{1,15}:\d{1,9}$/, 'must be the "next" of a previous page (block:logIndex)')
  .transform((text) => {
    const [block, logIndex] = text.split(':').map(Number) as [number, number];
    return { block, logIndex };
  });

export const blockNumber = wholeNumber;

/** Any case is taken (an all-lowercase address too); answers are checksummed. */
export const account = address.transform((value) => getAddress(value));

/** Hashes and ids as the chain returns them: lowercase. */
export const hash = bytes32.transform((value) => value.toLowerCase());

export const utility = z.enum(UTILITY_IDS);

export const agreementState = z.enum(['active', 'settled', 'all']).default('all');

export const NONE = z.strictObject({});

export function parseParameters<S extends z.ZodType>(
  schema: S,
  raw: Readonly<Record<string, string>>,
): z.output<S> {
  const result = schema.safeParse(raw);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  if (issue?.code === 'unrecognized_keys') {
    const parameter = issue.keys.join(', ');
    throw new EipError('INVALID_ARGUMENT', `unknown parameter ${parameter}`, {
      details: { parameter },
    });
  }
  const parameter = String(issue?.path[0] ?? '');
  throw new EipError('INVALID_ARGUMENT', `${parameter}: ${issue?.message}`, {
    details: { parameter },
  });
}
