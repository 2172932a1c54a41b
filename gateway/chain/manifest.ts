/**
 * The deployment manifest: where the token and the three markets live on one chain. Written by
 * `eip-gateway deploy`, read by the gateway at start. Validated both ways so a hand-edited or
 * truncated file is refused with the path of the bad field.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { z } from 'zod';
import { EipError } from '../../core/errors.js';
import { address, uint256 } from '../../core/messages/schemas.js';
import { UTILITY_IDS } from '../../core/utilities.js';

const market = z.strictObject({
  address,
  unit: z.string().min(1),
  providerSellsAt: uint256,
  providerBuysAt: uint256,
  provider: address,
  gracePeriod: z.number().int().nonnegative(),
});

export const manifestSchema = z.strictObject({
  version: z.literal(1),
  chainId: z.number().int().positive(),
  /** First block to index events from. */
  block: z.number().int().nonnegative(),
  deployer: address,
  operator: address,
  compiler: z.string().min(1),
  deployedAt: z.iso.datetime(),
  token: address,
  markets: z.strictObject(
    Object.fromEntries(UTILITY_IDS.map((id) => [id, market])) as Record<
      (typeof UTILITY_IDS)[number],
      typeof market
    >,
  ),
});

export type Manifest = z.output<typeof manifestSchema>;

/** Writes the manifest atomically: a reader never sees half a file. */
export function writeManifest(path: string, manifest: Manifest): void {
  const text = `${JSON.stringify(manifestSchema.encode(manifest), null, 2)}\n`;
  const temporary = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(temporary, text, { flag: 'wx' });
  renameSync(temporary, path);
}

export function readManifest(path: string): Manifest {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new EipError(
      'IO_ERROR',
      `cannot read deployment manifest ${path}: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
  const parsed = manifestSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new EipError(
      'INVALID_MESSAGE',
      `deployment manifest ${path}: ${issue?.path.join('.') || '(root)'}: ${issue?.message}`,
      { details: { issues: parsed.error.issues } },
    );
  }
  return parsed.data;
}
