/**
 * The sign-in routes on the gateway's HTTP server, and the session check of every API request:
 *
 * - GET /auth/login[?return=/path]: starts a sign-in (a record of its state, nonce and PKCE
 *   verifier in server memory, its id in a cookie for 10 minutes) and redirects to the provider.
 * - GET /auth/callback: the provider's answer; redeems the code, validates the ID token, maps its
 *   claims to a principal and makes a session (a new id, in a cookie that ends with the browser
 *   and on the server after `session_hours`), then redirects to `return` (/ by default).
 * - POST /auth/logout: ends the session; a browser is sent on to the provider's end-session page
 *   (when it has one) to sign out there too, a script gets JSON naming that page.
 * - GET /auth/me: who is signed in, as JSON: { who, role, plant, address, expiresAt }.
 *
 * A request with an Authorization header is an API token's (tokens.ts), on /api and /auth/me
 * alike, whatever cookie it carries too.
 *
 * CSRF: the API only reads, and its answers are unreadable cross-origin (no CORS), so forged
 * requests gain nothing. Logout changes state: it is POST only, and the SameSite=Lax cookie is
 * not sent with a cross-site POST. Same-site is not same-origin, though (a sibling subdomain is
 * same-site), so a POST whose Origin is not the gateway's is refused too; with those two, no
 * token is needed. Sign-in itself is bound to the browser that started it by its state and the
 * sign-in cookie, so nobody can slip their own account into someone else's browser (login CSRF).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { EipError, isEipError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import { sendError, sendJson, sendUnauthorized } from '../api/http.js';
import { parseParameters } from '../api/params.js';
import type { ParkDirectory } from '../park.js';
import type { CookieJar } from './cookies.js';
import { refuse, wantsPage } from './pages.js';
import {
  type Caller,
  type ClaimMapping,
  type Principal,
  principalFromClaims,
} from './principal.js';
import type { PendingLogin, RelyingParty, SignedIn } from './relying-party.js';
import type { ExpiringStore } from './store.js';
import type { TokenBook } from './tokens.js';

export interface Session {
  readonly principal: Principal;
  /** A name to show: preferred_username, email, name or sub. */
  readonly who: string;
  readonly idToken: string;
}

export interface LoginInProgress extends PendingLogin {
  readonly returnTo: string;
}

export interface AuthRoutesOptions {
  /** The gateway's origin as browsers open it. */
  readonly publicUrl: string;
  readonly relyingParty: Pick<RelyingParty, 'begin' | 'finish' | 'endSessionUrl'>;
  readonly directory: ParkDirectory;
  readonly mapping: ClaimMapping;
  readonly sessions: ExpiringStore<Session>;
  /** The API tokens of machine clients. */
  readonly tokens: TokenBook;
  readonly logins: ExpiringStore<LoginInProgress>;
  readonly cookies: CookieJar;
  readonly sessionHours: number;
  readonly logger: Logger;
}

export const SESSION_COOKIE = 'eip_session';
const LOGIN_COOKIE = 'eip_login';
/** How long a sign-in may take at the provider. */
export const LOGIN_TTL_MS = 10 * 60_000;

const loginQuery = z.strictObject({
  return: z
    .string()
    .max(2000)
    // A path on this site: "//evil.example" and "/\evil.example" are other sites to a browser.
    .regex(/^\/(?![/\\])/, 'must be a path on this site, starting with a single /')
    .default('/'),
});

const identity = z.object({
  sub: z.string(),
  preferred_username: z.string().optional(),
  email: z.string().optional(),
  name: z.string().optional(),
});

interface Refusal {
  readonly status: number;
  readonly refused: Parameters<typeof refuse>[3];
}

type Handler = (request: IncomingMessage, response: ServerResponse, url: URL) => Promise<void>;

function redirect(response: ServerResponse, location: string): void {
  response.writeHead(303, { location, 'cache-control': 'no-store', 'content-length': 0 }).end();
}

export class AuthRoutes {
  private readonly routes: ReadonlyMap<string, { method: 'GET' | 'POST'; run: Handler }>;

  constructor(private readonly options: AuthRoutesOptions) {
    this.routes = new Map([
      ['/auth/login', { method: 'GET', run: (_request, s, u) => this.login(s, u) }],
      ['/auth/callback', { method: 'GET', run: (q, s) => this.callback(q, s) }],
      ['/auth/logout', { method: 'POST', run: (q, s) => this.logout(q, s) }],
      ['/auth/me', { method: 'GET', run: async (q, s) => this.me(q, s) }],
    ]);
  }

  /** Serves the /auth routes: true when the request was one of them. */
  handle(request: IncomingMessage, response: ServerResponse): boolean {
    const url = new URL(request.url ?? '/', this.options.publicUrl);
    const route = this.routes.get(url.pathname);
    if (route === undefined) return false;
    if (request.method !== route.method) {
      const message = `${request.method} is not allowed on ${url.pathname}; use ${route.method}`;
      sendError(response, 405, { code: 'METHOD_NOT_ALLOWED', message }, { allow: route.method });
      return true;
    }
    route
      .run(request, response, url)
      .catch((error: unknown) => this.fail(request, response, error));
    return true;
  }

  /** The caller's principal; UNAUTHORIZED, saying why, without a live session or a good token. */
  principalOf(request: IncomingMessage): Principal {
    return this.caller(request).principal;
  }

  private caller(request: IncomingMessage): Caller {
    const { authorization } = request.headers;
    // A request that brings a token is the token's, whatever cookie comes with it: a refused
    // token never falls back to a browser's session (a script would then act as whoever ran it
    // in a signed-in browser), nor does a session widen or narrow a token's view.
    if (authorization !== undefined) return this.options.tokens.callerOf(authorization);
    const lookup = this.options.sessions.get(this.options.cookies.read(request, SESSION_COOKIE));
    if (lookup.found === 'live') {
      const { who, principal } = lookup.value;
      return { who, principal, expiresAt: lookup.expiresAt };
    }
    throw new EipError(
      'UNAUTHORIZED',
      lookup.found === 'expired'
        ? `your session expired (sessions last ${this.options.sessionHours} h): sign in again at /auth/login`
        : 'not signed in: sign in at /auth/login',
    );
  }

  private async login(response: ServerResponse, url: URL): Promise<void> {
    const { return: returnTo } = parseParameters(loginQuery, Object.fromEntries(url.searchParams));
    const { url: provider, pending } = await this.options.relyingParty.begin();
    const id = this.options.logins.add({ ...pending, returnTo });
    response.setHeader(
      'set-cookie',
      this.options.cookies.set(LOGIN_COOKIE, id, LOGIN_TTL_MS / 1000),
    );
    redirect(response, provider.href);
  }

  private async callback(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const { cookies, logins, sessions, logger } = this.options;
    // One use: a replayed callback finds nothing, whatever happens to this one.
    const login = logins.take(cookies.read(request, LOGIN_COOKIE));
    response.setHeader('set-cookie', cookies.clear(LOGIN_COOKIE));
    if (login.found !== 'live') {
      refuse(request, response, 400, {
        code: 'UNAUTHORIZED',
        title: 'No sign-in in progress',
        message:
          'this browser has no sign-in in progress (it was completed already, or started more ' +
          `than ${LOGIN_TTL_MS / 60_000} minutes ago): start again at /auth/login`,
      });
      return;
    }
    const session = await this.signIn(request, login.value);
    if ('refused' in session) {
      refuse(request, response, session.status, session.refused);
      return;
    }
    // A new id at every sign-in, whatever session the browser had (session fixation).
    sessions.delete(cookies.read(request, SESSION_COOKIE));
    const id = sessions.add(session);
    response.setHeader('set-cookie', [
      cookies.clear(LOGIN_COOKIE),
      // No Max-Age: the cookie ends with the browser; the server ends the session anyway.
      cookies.set(SESSION_COOKIE, id),
    ]);
    logger.info({ who: session.who, ...session.principal }, 'signed in');
    redirect(response, login.value.returnTo);
  }

  /** The session a provider's answer makes, or why it makes none. */
  private async signIn(
    request: IncomingMessage,
    pending: PendingLogin,
  ): Promise<Session | Refusal> {
    const { publicUrl, relyingParty, mapping, directory, logger } = this.options;
    let signedIn: SignedIn;
    try {
      signedIn = await relyingParty.finish(new URL(request.url ?? '/', publicUrl), pending);
    } catch (error) {
      if (!isEipError(error, 'UNAUTHORIZED')) throw error;
      logger.warn({ reason: error.message }, 'sign-in refused');
      const message = `${error.message}; start again at /auth/login`;
      return { status: 400, refused: { code: error.code, title: 'Sign-in failed', message } };
    }
    // The ID token is validated: it has a sub; the rest is optional.
    const claims = identity.parse(signedIn.claims);
    const who = claims.preferred_username ?? claims.email ?? claims.name ?? claims.sub;
    try {
      const principal = principalFromClaims(signedIn.claims, mapping, directory);
      return { principal, who, idToken: signedIn.idToken };
    } catch (error) {
      if (!isEipError(error, 'UNAUTHORIZED')) throw error;
      logger.warn({ who, reason: error.message }, 'signed in at the provider, refused here');
      const message = `${who}: ${error.message}`;
      return {
        status: 403,
        refused: { code: 'FORBIDDEN', title: 'No access to this park', message },
      };
    }
  }

  private async logout(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const { cookies, sessions, publicUrl, logger } = this.options;
    const origin = request.headers.origin;
    if (origin !== undefined && origin !== publicUrl) {
      refuse(request, response, 403, {
        code: 'FORBIDDEN',
        title: 'Sign-out refused',
        message: `a sign-out from ${origin} is refused: sign out on ${publicUrl}`,
      });
      return;
    }
    const lookup = sessions.take(cookies.read(request, SESSION_COOKIE));
    response.setHeader('set-cookie', cookies.clear(SESSION_COOKIE));
    let providerSignOut: URL | null = null;
    if (lookup.found === 'live') {
      logger.info({ who: lookup.value.who }, 'signed out');
      providerSignOut = await this.options.relyingParty
        .endSessionUrl(lookup.value.idToken, `${publicUrl}/`)
        // The provider down: signed out here all the same, which is what matters to the API.
        .catch(() => null);
    }
    if (wantsPage(request)) redirect(response, providerSignOut?.href ?? '/');
    else
      sendJson(response, 200, { signedOut: true, providerSignOut: providerSignOut?.href ?? null });
  }

  private me(request: IncomingMessage, response: ServerResponse): void {
    const { who, principal, expiresAt } = this.caller(request);
    sendJson(response, 200, {
      who,
      role: principal.role,
      plant: principal.role === 'plant' ? principal.plant : null,
      address: principal.role === 'plant' ? principal.address : null,
      expiresAt: expiresAt === null ? null : Math.floor(expiresAt / 1000),
    });
  }

  private fail(request: IncomingMessage, response: ServerResponse, error: unknown): void {
    if (response.headersSent) {
      response.destroy();
    } else if (isEipError(error, 'INVALID_ARGUMENT')) {
      refuse(request, response, 400, {
        code: error.code,
        title: 'Bad request',
        message: error.message,
      });
    } else if (isEipError(error, 'UNAUTHORIZED')) {
      sendUnauthorized(response, error.message);
    } else if (isEipError(error, 'IO_ERROR')) {
      refuse(request, response, 502, {
        code: error.code,
        title: 'The sign-in provider does not answer',
        message: `${error.message}; try again in a moment`,
      });
    } else {
      this.options.logger.error({ err: error, url: request.url }, 'sign-in request failed');
      sendError(response, 500, {
        code: 'INTERNAL',
        message: 'internal error; see the gateway log',
      });
    }
  }
}
