/**
 * The broker's credentials file: one entry per device, with its role and an scrypt hash of its
 * password (never the password). A prosumer's user name is its id in the park, the level its
 * topics carry; a meter names the prosumer it belongs to and its own id.
 *
 * ```yaml
 * clients:
 *   plant-a: { role: prosumer, password: "scrypt:16384:8:1:SALT:HASH" }
 *   plant-a-chp: { role: meter, prosumer: plant-a, meter: chp, password: "scrypt:..." }
 *   gateway: { role: operator, password: "scrypt:..." }
 * ```
 *
 * `eip-gateway passwd` prints a hash line for a password.
 */
import { createHmac, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { z } from 'zod';
import { EipError } from '../../core/errors.js';
import { id } from '../../core/messages/schemas.js';
import type { Principal } from './acl.js';

/** scrypt at N = 2^14, r = 8: 16 MB and some tens of ms per check, once per user and password. */
const COST = { N: 16_384, r: 8, p: 1 } as const;
const KEY_BYTES = 32;
const HASH_PATTERN = /^scrypt:(\d+):(\d+):(\d+):([A-Za-z0-9+/=]+):([A-Za-z0-9+/=]+)$/;

const password = z
  .string()
  .regex(HASH_PATTERN, 'must be an scrypt hash from `eip-gateway passwd`, never the password');

/** A password hash, or `certificate: true` for a client whose TLS certificate names it. */
const login = {
  password: password.optional(),
  certificate: z.boolean().default(false),
};
const hasLogin = (entry: { password?: string | undefined; certificate: boolean }) =>
  entry.password !== undefined || entry.certificate;
const noLogin = { message: 'needs a password hash or certificate: true', path: ['password'] };

const client = z.discriminatedUnion('role', [
  z.strictObject({ role: z.literal('operator'), ...login }).refine(hasLogin, noLogin),
  z.strictObject({ role: z.literal('prosumer'), ...login }).refine(hasLogin, noLogin),
  z
    .strictObject({ role: z.literal('meter'), prosumer: id, meter: id, ...login })
    .refine(hasLogin, noLogin),
]);

const fileSchema = z.strictObject({ clients: z.record(id, client) });
type Entry = z.output<typeof client>;

export interface Credentials {
  /** The principal a user name and password stand for, or null for either wrong. */
  check(username: string | undefined, password: Buffer | undefined): Promise<Principal | null>;
  /** The principal of a client whose certificate (verified by the broker's CA) names it. */
  byCertificate(name: string): Principal | null;
  readonly size: number;
}

function derive(secret: Buffer, salt: Buffer, cost: { N: number; r: number; p: number }) {
  return new Promise<Buffer>((resolve, reject) =>
    scrypt(secret, salt, KEY_BYTES, { ...cost, maxmem: 256 * cost.N * cost.r }, (error, key) =>
      error ? reject(error) : resolve(key),
    ),
  );
}

export async function hashPassword(secret: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await derive(Buffer.from(secret, 'utf8'), salt, COST);
  return `scrypt:${COST.N}:${COST.r}:${COST.p}:${salt.toString('base64')}:${key.toString('base64')}`;
}

export async function verifyPassword(hash: string, secret: Buffer): Promise<boolean> {
  const [, n, r, p, salt, key] = HASH_PATTERN.exec(hash) ?? [];
  if (!n || !r || !p || !salt || !key) return false;
  const expected = Buffer.from(key, 'base64');
  const derived = await derive(secret, Buffer.from(salt, 'base64'), {
    N: Number(n),
    r: Number(r),
    p: Number(p),
  });
  return derived.length === expected.length && timingSafeEqual(derived, expected);
}

/** Parses a credentials file's text; `where` names it in errors, with the path of each problem. */
export function parseCredentials(text: string, where: string): Credentials {
  let raw: unknown;
  try {
    raw = parse(text);
  } catch (error) {
    throw new EipError('INVALID_ARGUMENT', `${where}: not YAML: ${(error as Error).message}`);
  }
  const parsed = fileSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map(
      (issue) => `  ${issue.path.join('.') || '(top)'}: ${issue.message}`,
    );
    throw new EipError(
      'INVALID_ARGUMENT',
      `${where}: ${problems.length} problem(s):\n${problems.join('\n')}`,
    );
  }
  const clients = new Map(Object.entries(parsed.data.clients));
  // The last good password of each user, as an HMAC under a key that lives only in this process.
  const cacheKey = randomBytes(32);
  const verified = new Map<string, Buffer>();
  // Every check costs a hash, even for an unknown user, so timing does not tell which users exist.
  const decoy = `scrypt:${COST.N}:${COST.r}:${COST.p}:${randomBytes(16).toString('base64')}:${randomBytes(KEY_BYTES).toString('base64')}`;
  const principal = (name: string, entry: Entry): Principal =>
    entry.role === 'operator'
      ? { role: 'operator', name }
      : entry.role === 'prosumer'
        ? { role: 'prosumer', prosumer: name }
        : { role: 'meter', prosumer: entry.prosumer, meter: entry.meter };
  return {
    size: clients.size,
    async check(username, secret) {
      const entry = username === undefined ? undefined : clients.get(username);
      const given = secret ?? Buffer.alloc(0);
      // A device that reconnects (every agent after a network cut, all at once after a broker
      // restart) is checked against the keyed digest of its last good login, not scrypt again.
      const seen = entry && username !== undefined ? verified.get(username) : undefined;
      const digest = createHmac('sha256', cacheKey).update(given).digest();
      if (entry && seen && timingSafeEqual(seen, digest))
        return principal(username as string, entry);
      const ok = await verifyPassword(entry?.password ?? decoy, given);
      if (!ok || !entry?.password || username === undefined) return null;
      verified.set(username, digest);
      return principal(username, entry);
    },
    byCertificate(name) {
      const entry = clients.get(name);
      return entry?.certificate ? principal(name, entry) : null;
    },
  };
}

/**
 * `credentials` plus the gateway's own operator login to its embedded broker: a random secret
 * made at start that lives only in this process, so no gateway password sits in any file.
 */
export function withInternalOperator(
  credentials: Credentials,
  username: string,
  secret: Buffer,
): Credentials {
  return {
    size: credentials.size + 1,
    async check(name, given) {
      if (name !== username) return credentials.check(name, given);
      const ok =
        given !== undefined && given.length === secret.length && timingSafeEqual(given, secret);
      return ok ? { role: 'operator', name } : null;
    },
    byCertificate: (name) => (name === username ? null : credentials.byCertificate(name)),
  };
}

export function loadCredentials(file: string): Credentials {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new EipError('INVALID_ARGUMENT', `cannot read ${file}: ${(error as Error).message}`);
  }
  return parseCredentials(text, file);
}
