/**
 * Sign-in for the gateway's HTTP server, in one call: `startAuth` gives the API server
 * (gateway/api/server.ts, option `auth`) the sign-in routes to serve and the principal of each
 * request, from a session or an API token. Wiring and configuration: README.md beside this file.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { EipError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { ParkDirectory } from '../park.js';
import type { AuthConfig } from './config.js';
import { CookieJar } from './cookies.js';
import type { Principal } from './principal.js';
import { RelyingParty } from './relying-party.js';
import { AuthRoutes, LOGIN_TTL_MS, type LoginInProgress, type Session } from './routes.js';
import { ExpiringStore } from './store.js';
import { TokenBook } from './tokens.js';
import { UserBook } from './users.js';

/** What the API server needs of sign-in. */
export interface AuthGate {
  /** Serves /auth/* (and /oidc/* with the embedded provider): true when it took the request. */
  handle(request: IncomingMessage, response: ServerResponse): boolean;
  /**
   * The caller: the bearer of a known API token, or a signed-in person; throws UNAUTHORIZED (the
   * server answers 401) saying why not.
   */
  principalOf(request: IncomingMessage): Principal;
}

export interface AuthOptions {
  /** The `auth:` section of the gateway's config (authConfigSchema). */
  readonly config: AuthConfig;
  /** The park's plants: a plant principal (a user's, a token's) must be one of them. */
  readonly directory: ParkDirectory;
  readonly logger: Logger;
  /** Where `client_secret_env` is read; process.env by default. */
  readonly env?: NodeJS.ProcessEnv;
  /** Unix ms, for the expiry of sessions and tokens; Date.now by default. */
  readonly clock?: () => number;
}

const SCOPE = 'openid profile';
/** Sessions and sign-ins in progress held at most: a bound on what strangers can make us keep. */
const MAX_RECORDS = 10_000;

/**
 * Starts sign-in: with a standard provider, nothing happens until the first sign-in (discovery
 * is lazy); with the embedded one, the demo provider is made ready under /oidc. Sessions live in
 * memory and hold no timer, so there is nothing to close.
 */
export async function startAuth(options: AuthOptions): Promise<AuthGate> {
  const { config, directory, logger } = options;
  const clock = options.clock ?? Date.now;
  const publicUrl = config.public_url;
  const redirectUri = `${publicUrl}/auth/callback`;
  const tokens = TokenBook.open(config.tokens, directory, clock);
  let provider: AuthGate['handle'] = () => false;
  let client: { readonly issuer: URL; readonly clientId: string; readonly clientSecret?: string };
  if ('embedded' in config.provider) {
    // Loaded only for the demo: oidc-provider is a server of its own, with its own start-up cost.
    const { startEmbeddedProvider } = await import('./embedded-provider.js');
    const embedded = await startEmbeddedProvider({
      publicUrl,
      redirectUri,
      postLogoutRedirectUri: `${publicUrl}/`,
      users: await UserBook.open(config.provider.embedded.users, directory),
      mapping: config.claims,
      logger,
    });
    provider = embedded.handle;
    const { issuer, clientId, clientSecret } = embedded;
    client = { issuer, clientId, clientSecret };
  } else {
    const { issuer, client_id, client_secret_env } = config.provider;
    const secret =
      client_secret_env === undefined ? undefined : (options.env ?? process.env)[client_secret_env];
    if (client_secret_env !== undefined && !secret) {
      throw new EipError('INVALID_ARGUMENT', `$${client_secret_env} must hold the client secret`);
    }
    client = {
      issuer: new URL(issuer),
      clientId: client_id,
      ...(secret && { clientSecret: secret }),
    };
  }
  const sessionMs = config.session_hours * 3_600_000;
  const routes = new AuthRoutes({
    publicUrl,
    relyingParty: new RelyingParty({ ...client, redirectUri, scope: SCOPE }),
    directory,
    mapping: config.claims,
    sessions: new ExpiringStore<Session>({ ttlMs: sessionMs, maxEntries: MAX_RECORDS, clock }),
    tokens,
    logins: new ExpiringStore<LoginInProgress>({
      ttlMs: LOGIN_TTL_MS,
      maxEntries: MAX_RECORDS,
      clock,
    }),
    cookies: new CookieJar(publicUrl.startsWith('https:')),
    sessionHours: config.session_hours,
    logger,
  });
  logger.info(
    { issuer: client.issuer.href, client: client.clientId, redirectUri, apiTokens: tokens.size },
    'sign-in configured',
  );
  const expired = tokens.expired();
  if (expired.length > 0) {
    logger.warn({ tokens: expired }, 'API tokens past their expires date: they are refused');
  }
  return {
    handle: (request, response) => provider(request, response) || routes.handle(request, response),
    principalOf: (request) => routes.principalOf(request),
  };
}
