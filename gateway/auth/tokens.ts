/**
 * API tokens: the credential of a machine client of the HTTP API (Node-RED, a script, another
 * system), which cannot sign in with a browser. Each is a name in `auth.tokens` with what it may
 * see, the operator's view or one plant's, and the SHA-256 of the token: the token itself is never
 * stored, so the config file gives nobody access. `eip-gateway token` makes one.
 *
 * ```yaml
 * auth:
 *   tokens:
 *     node-red-biogas: { plant: biogas-plant, hash: "sha256:3f1c..." }
 *     park-report: { role: operator, hash: "sha256:9a0b...", expires: 2027-01-01 }
 * ```
 *
 * A client sends `Authorization: Bearer <token>` (RFC 6750) with each request; the token gives
 * the same Principal as a sign-in, so gateway/api/scope.ts applies unchanged. A token lasts until
 * it is removed from the config (or its `expires`); rotating one is adding the new token,
 * deploying it to the client, and removing the old.
 */
import { createHash, randomBytes } from 'node:crypto';
import { z } from 'zod';
import { EipError } from '../../core/errors.js';
import { id } from '../../core/messages/schemas.js';
import type { ParkDirectory } from '../park.js';
import { type Caller, configuredPrincipal, type Principal } from './principal.js';

/** Marks our tokens, so that secret scanners and people recognise one pasted where it should not be. */
const TOKEN_PREFIX = 'eipt_';
const HASH_PREFIX = 'sha256:';

const tokenHash = z
  .string()
  .regex(
    /^sha256:[0-9a-f]{64}$/,
    'must be "sha256:" and 64 lowercase hex digits, as `eip-gateway token` prints: the hash of the token, never the token',
  )
  .meta({ description: 'The SHA-256 of the token (eip-gateway token prints it)' });

const isoDate = z.iso.date();
const isoDateTime = z.iso.datetime({ offset: true });

/** A date (refused from 00:00 UTC that day) or a date-time with its zone, ISO 8601. */
export const tokenExpiry = z
  .string()
  // A refinement, not a union: a union's failure would hide this message behind the entry's.
  .refine((text) => isoDate.safeParse(text).success || isoDateTime.safeParse(text).success, {
    message: 'must be an ISO 8601 date (2027-01-01) or date-time with zone (2027-01-01T08:00:00Z)',
  })
  .transform((text) => Date.parse(text))
  .meta({ description: 'Refused from this instant on; a date alone: from 00:00 UTC that day' });

const credential = { hash: tokenHash, expires: tokenExpiry.optional() };

const apiToken = z.union(
  [
    z.strictObject({
      role: z.literal('operator').meta({ description: "The operator's view: everything" }),
      ...credential,
    }),
    z.strictObject({
      plant: id.meta({ description: "One plant's view: a plant id of plants:" }),
      ...credential,
    }),
  ],
  { error: 'must be { role: operator, hash } or { plant: <plant id>, hash }' },
);

export const apiTokensSchema = z.record(id, apiToken);

export type ApiTokens = z.output<typeof apiTokensSchema>;

/** A new token and the hash that goes into the config. The token is shown once, then only its holder has it. */
export function newApiToken(): { readonly token: string; readonly hash: string } {
  const token = `${TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
  return { token, hash: hashOf(token) };
}

function hashOf(token: string): string {
  return `${HASH_PREFIX}${createHash('sha256').update(token, 'utf8').digest('hex')}`;
}

/** RFC 6750's credentials: the scheme, case-insensitive (RFC 9110), and a b64token. */
const BEARER = /^bearer +([\w.~+/-]+=*)$/i;

interface Holder {
  readonly name: string;
  readonly principal: Principal;
  readonly expiresAt: number | null;
}

export class TokenBook {
  private constructor(
    /** By hash: see `callerOf` for why a lookup, rather than comparing with each. */
    private readonly byHash: ReadonlyMap<string, Holder>,
    private readonly clock: () => number,
  ) {}

  /** Refuses, at start, a token of a plant the park does not have, or one hash under two names. */
  static open(tokens: ApiTokens, directory: ParkDirectory, clock: () => number): TokenBook {
    const byHash = new Map<string, Holder>();
    for (const [name, entry] of Object.entries(tokens)) {
      const where = `auth.tokens.${name}`;
      const principal = configuredPrincipal(entry, directory, where);
      const same = byHash.get(entry.hash);
      if (same !== undefined) {
        throw new EipError(
          'INVALID_ARGUMENT',
          `${where}: the same hash as auth.tokens.${same.name}: make each client a token of its own`,
        );
      }
      byHash.set(entry.hash, { name, principal, expiresAt: entry.expires ?? null });
    }
    return new TokenBook(byHash, clock);
  }

  /** The names of the tokens whose `expires` has passed, for a warning at start. */
  expired(): string[] {
    const now = this.clock();
    return [...this.byHash.values()]
      .filter(({ expiresAt }) => expiresAt !== null && expiresAt <= now)
      .map(({ name }) => name);
  }

  get size(): number {
    return this.byHash.size;
  }

  /**
   * The caller whose token an Authorization header carries; UNAUTHORIZED otherwise. A refusal
   * says the header is malformed or the token unknown, never what is wrong with it beyond that.
   *
   * The token is looked up by its SHA-256 rather than compared with each hash in constant time
   * (timingSafeEqual): all a timing difference of the lookup could tell is how much of the hash
   * of the caller's own guess matches a stored hash, and that brings no guess closer to a token
   * (finding a SHA-256 preimage from a prefix is as hard as from nothing; the token is 256 random
   * bits). A fast hash is enough, unlike for passwords (scrypt, gateway/broker/credentials.ts):
   * 256 random bits cannot be found by trying however fast each try is, and this runs on every
   * request.
   */
  callerOf(authorization: string): Caller {
    const token = BEARER.exec(authorization.trim())?.[1];
    if (token === undefined) {
      throw new EipError(
        'UNAUTHORIZED',
        'the Authorization header must be "Bearer <API token>" (eip-gateway token makes one)',
      );
    }
    const holder = this.byHash.get(hashOf(token));
    if (holder === undefined) {
      throw new EipError('UNAUTHORIZED', 'the API token is not known to this gateway');
    }
    const { name, principal, expiresAt } = holder;
    if (expiresAt !== null && expiresAt <= this.clock()) {
      throw new EipError(
        'UNAUTHORIZED',
        `the API token "${name}" expired at ${new Date(expiresAt).toISOString()}: eip-gateway token makes a new one`,
      );
    }
    return { who: name, principal, expiresAt };
  }
}
