/**
 * The `auth:` section of the gateway's config: sign-in for the dashboard's users with OpenID
 * Connect, against a standard provider or the embedded demo provider, and API tokens for machine
 * clients (tokens.ts). README.md beside this file explains each key, with Keycloak, Entra ID and
 * Google.
 *
 * ```yaml
 * auth:
 *   public_url: https://gateway.park.example      # what browsers open; /auth/callback hangs here
 *   provider: { issuer: https://sso.park.example/realms/park, client_id: eip-dashboard }
 * # or, for the demo:
 *   provider:
 *     embedded:
 *       users:
 *         operator: { role: operator, password: "scrypt:..." }   # eip-gateway passwd
 *         biogas-staff: { plant: biogas-plant, password: "scrypt:..." }
 *   tokens:   # machine clients (Node-RED): eip-gateway token
 *     node-red-biogas: { plant: biogas-plant, hash: "sha256:..." }
 * ```
 */
import { z } from 'zod';
import { apiTokensSchema } from './tokens.js';
import { embeddedUsersSchema } from './users.js';

const envName = z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'must be an environment variable name');
const name = z.string().min(1);

/** An origin only: the callback's path is ours, and a path prefix would need a proxy's help. */
const publicUrl = z
  .url({ protocol: /^https?$/ })
  .refine(
    (text) => {
      const url = new URL(text);
      return url.pathname === '/' && !url.search && !url.hash;
    },
    { message: 'must be an origin (scheme://host[:port]) without a path' },
  )
  .transform((text) => new URL(text).origin);

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

const standardProvider = z.strictObject({
  issuer: z
    .url({ protocol: /^https?$/ })
    // Tokens over plain HTTP can be read on the way; a provider on this machine is the exception.
    .refine((text) => text.startsWith('https:') || LOOPBACK.has(new URL(text).hostname), {
      message: 'must be https (http only for a provider on loopback)',
    })
    .meta({
      description: "The provider's issuer URL; its /.well-known/openid-configuration is read",
    }),
  client_id: name,
  client_secret_env: envName.optional().meta({
    description: 'The variable holding the client secret; omitted: a public client (PKCE only)',
  }),
});

const embeddedProvider = z.strictObject({
  embedded: z.strictObject({ users: embeddedUsersSchema }).meta({
    description: 'The demo provider under /oidc, with these users; keys made at each start',
  }),
});

export const claimMappingSchema = z.strictObject({
  role: name
    .default('eip_role')
    .meta({ description: 'Claim whose value operator_value makes an operator' }),
  operator_value: name.default('operator'),
  plant: name.default('eip_plant').meta({ description: 'Claim holding the plant id of the park' }),
  groups: name.optional().meta({
    description: 'A list claim of group or app role names (groups, roles); none by default',
  }),
  operator_group: name.default('eip-operator'),
  plant_group_prefix: name.default('eip-plant-').meta({
    description: "A group named this prefix and a plant id makes that plant's staff",
  }),
});

export const authConfigSchema = z
  .strictObject({
    public_url: publicUrl.meta({
      description: "The gateway's URL as browsers open it (an origin); https sets Secure cookies",
    }),
    provider: z.union([standardProvider, embeddedProvider]),
    claims: claimMappingSchema.prefault({}),
    session_hours: z.number().min(0.05).max(168).default(8).meta({
      description: 'A session ends this long after sign-in (a shift), or at sign-out',
    }),
    tokens: apiTokensSchema.default({}).meta({
      description:
        'API tokens of machine clients (Node-RED, scripts) by name: what each sees, and the SHA-256 of the token (eip-gateway token)',
    }),
  })
  .meta({ description: 'Sign-in for the dashboard and the HTTP API (OpenID Connect)' });

export type AuthConfig = z.output<typeof authConfigSchema>;
export type StandardProviderConfig = z.output<typeof standardProvider>;
