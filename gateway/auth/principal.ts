/**
 * Who a signed-in person is to the park: its operator, who sees everything, or the staff of one
 * plant, who see that plant's private data only (gateway/api/scope.ts says what that is). The
 * identity provider says it in ID token claims, mapped here by configuration:
 *
 * - a role claim (`eip_role`) whose value `operator` makes an operator;
 * - a plant claim (`eip_plant`) holding a plant id of the park directory;
 * - or a group claim (`groups`, a list) with `eip-operator` or `eip-plant-<plant id>` in it, for
 *   providers that express roles as groups or app roles (Keycloak, Entra ID).
 *
 * Operator wins over plant (an operator sees every plant anyway); two different plants, a plant
 * that is not in the directory, or no mapping at all refuse the sign-in with a message that says
 * which claim to set, never a session with less or more than was meant.
 */
import { z } from 'zod';
import { EipError } from '../../core/errors.js';
import type { ParkDirectory } from '../park.js';

export type Principal =
  | { readonly role: 'operator' }
  | {
      readonly role: 'plant';
      readonly plant: string;
      /** The plant's trading address, checksummed: what it is seller or buyer as. */
      readonly address: string;
    };

export const OPERATOR: Principal = { role: 'operator' };

/** Who is calling, as `/auth/me` tells it: a signed-in person or an API token. */
export interface Caller {
  /** The person's name at the provider, or the token's name in `auth.tokens`. */
  readonly who: string;
  readonly principal: Principal;
  /** Unix ms; null: it does not expire (an API token without `expires`). */
  readonly expiresAt: number | null;
}

/** What an account of the config (an embedded user, an API token) says it is. */
export type ConfiguredRole = { readonly role: 'operator' } | { readonly plant: string };

/**
 * The principal of an account written in the config, checked when the gateway starts: a plant
 * that is not in `plants:` stops it there, rather than refusing the account at each use.
 * `where` is the entry's path in the config, for the message.
 */
export function configuredPrincipal(
  entry: ConfiguredRole,
  directory: ParkDirectory,
  where: string,
): Principal {
  if ('role' in entry) return OPERATOR;
  const address = directory.addressOf(entry.plant);
  if (address === undefined) {
    throw new EipError('INVALID_ARGUMENT', `${where}: plant "${entry.plant}" is not in plants:`);
  }
  return { role: 'plant', plant: entry.plant, address };
}

export interface ClaimMapping {
  /** Claim whose value `operator_value` makes an operator. */
  readonly role: string;
  readonly operator_value: string;
  /** Claim holding a plant id. */
  readonly plant: string;
  /** A list claim of group (or app role) names; none when undefined. */
  readonly groups?: string | undefined;
  readonly operator_group: string;
  /** A group named this prefix plus a plant id makes that plant's staff. */
  readonly plant_group_prefix: string;
}

const text = z.string().min(1);
const textList = z.array(z.string());

/** A claim's value when it has the expected shape; anything else counts as absent. */
function claim<T>(claims: Readonly<Record<string, unknown>>, name: string, schema: z.ZodType<T>) {
  const result = schema.safeParse(claims[name]);
  return result.success ? result.data : undefined;
}

export function principalFromClaims(
  claims: Readonly<Record<string, unknown>>,
  mapping: ClaimMapping,
  directory: ParkDirectory,
): Principal {
  // Keycloak's group mapper sends full paths ("/eip-operator") unless told otherwise.
  const listed = mapping.groups === undefined ? [] : claim(claims, mapping.groups, textList);
  const groups = (listed ?? []).map((group) => group.replace(/^\//, ''));
  if (
    claim(claims, mapping.role, text) === mapping.operator_value ||
    groups.includes(mapping.operator_group)
  ) {
    return OPERATOR;
  }
  const plants = new Set(
    [
      claim(claims, mapping.plant, text),
      ...groups
        .filter((group) => group.startsWith(mapping.plant_group_prefix))
        .map((group) => group.slice(mapping.plant_group_prefix.length)),
    ].filter((plant) => plant !== undefined),
  );
  if (plants.size > 1) {
    throw new EipError(
      'UNAUTHORIZED',
      `your account maps to several plants (${[...plants].join(', ')}); an account is the staff of one plant`,
    );
  }
  const [plant] = plants;
  if (plant === undefined) {
    const via = mapping.groups
      ? `, or the group ${mapping.operator_group} or ${mapping.plant_group_prefix}<plant id> in "${mapping.groups}"`
      : '';
    throw new EipError(
      'UNAUTHORIZED',
      `your account has no role in this park: the park operator gives it the claim ` +
        `${mapping.role}=${mapping.operator_value} or ${mapping.plant}=<plant id>${via}`,
    );
  }
  const address = directory.addressOf(plant);
  if (address === undefined) {
    throw new EipError(
      'UNAUTHORIZED',
      `your account is the staff of plant "${plant}", which is not in this park's directory`,
    );
  }
  return { role: 'plant', plant, address };
}
