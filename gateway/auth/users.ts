/**
 * The embedded demo provider's users: a user name, an scrypt hash of the password (the format of
 * the broker's credentials, made by `eip-gateway passwd`), and what the user is: the operator,
 * the staff of one plant, or nothing yet. The provider puts that into the ID token as the claims the gateway maps
 * (principal.ts), so the demo exercises the same path as a real provider.
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { id } from '../../core/messages/schemas.js';
import { hashPassword, verifyPassword } from '../broker/credentials.js';
import type { ParkDirectory } from '../park.js';
import { type ClaimMapping, configuredPrincipal } from './principal.js';

const passwordHash = z
  .string()
  .startsWith('scrypt:', 'must be an scrypt hash from `eip-gateway passwd`, never the password');

const user = z.union([
  z.strictObject({ role: z.literal('operator'), password: passwordHash }),
  z.strictObject({ plant: id, password: passwordHash }),
  // A login nobody has given a role yet: the provider signs it in, the gateway refuses it (403),
  // as it would a real provider's user without the claims.
  z.strictObject({ password: passwordHash }),
]);

export const embeddedUsersSchema = z
  .record(id, user)
  .refine((users) => Object.keys(users).length > 0, {
    message: 'needs at least one user',
  });

export type EmbeddedUsers = z.output<typeof embeddedUsersSchema>;

export interface DemoLogin {
  readonly username: string;
  readonly password: string;
}

/**
 * Users for a demo park: `operator`, and one user per plant named as the plant, each with a
 * random password. The passwords are returned once, to be shown to whoever runs the demo; only
 * their hashes go into the users.
 */
export async function generateDemoUsers(
  directory: ParkDirectory,
): Promise<{ readonly users: EmbeddedUsers; readonly logins: readonly DemoLogin[] }> {
  const who: [string, { role: 'operator' } | { plant: string }][] = [
    ['operator', { role: 'operator' }],
    ...Object.keys(directory.plants).map((plant): [string, { plant: string }] => [
      plant,
      { plant },
    ]),
  ];
  const users: Record<string, EmbeddedUsers[string]> = {};
  const logins: DemoLogin[] = [];
  for (const [username, what] of who) {
    const password = randomBytes(12).toString('base64url');
    users[username] = { ...what, password: await hashPassword(password) };
    logins.push({ username, password });
  }
  return { users, logins };
}

export class UserBook {
  private constructor(
    private readonly users: EmbeddedUsers,
    /** Checked when the user name is unknown, so timing does not tell which names exist. */
    private readonly decoy: string,
  ) {}

  /** Refuses users of plants the park does not have, at start rather than at sign-in. */
  static async open(users: EmbeddedUsers, directory: ParkDirectory): Promise<UserBook> {
    for (const [name, entry] of Object.entries(users)) {
      if ('plant' in entry) {
        configuredPrincipal(entry, directory, `auth.provider.embedded.users.${name}`);
      }
    }
    return new UserBook(users, await hashPassword(randomBytes(16).toString('base64url')));
  }

  /** A user by name; own keys only ("constructor" is nobody). */
  private entry(username: string): EmbeddedUsers[string] | undefined {
    return Object.hasOwn(this.users, username) ? this.users[username] : undefined;
  }

  /** Whether `password` is `username`'s. */
  async check(username: string, password: string): Promise<boolean> {
    const entry = this.entry(username);
    const ok = await verifyPassword(entry?.password ?? this.decoy, Buffer.from(password, 'utf8'));
    return ok && entry !== undefined;
  }

  has(username: string): boolean {
    return this.entry(username) !== undefined;
  }

  /** The ID token claims of a user, named as the gateway maps them. */
  claims(username: string, mapping: ClaimMapping): Record<string, string> {
    const entry = this.entry(username);
    const what =
      entry !== undefined && 'role' in entry
        ? { [mapping.role]: mapping.operator_value }
        : entry !== undefined && 'plant' in entry
          ? { [mapping.plant]: entry.plant }
          : {};
    return { sub: username, name: username, preferred_username: username, ...what };
  }
}
