/**
 * The embedded OpenID provider for the demo (oidc-provider v9), under /oidc on the gateway's own
 * HTTP server: issuer `<public_url>/oidc`, one client (the dashboard: confidential, with a secret
 * made at each start that never leaves this process), PKCE required, the users of the config,
 * and the claims the gateway maps (eip_role, eip_plant) in the ID token.
 *
 * Why under /oidc and not on a port of its own: the browser must reach the provider wherever it
 * reaches the dashboard, and a second port is one more thing to open, forward and get wrong (a
 * loopback-only port is unreachable from the control room's PC); on the same origin it works
 * wherever the dashboard does, through the same proxy, and closes with the same server. The
 * gateway then calls its own public URL for discovery and tokens, as it would any provider.
 *
 * Demo only: its signing key and cookie keys are made at start and its sessions live in memory,
 * so a restart signs everyone out and old ID tokens stop verifying, which is harmless here. Use a
 * real provider (README.md) for anything else.
 */
import { generateKeyPair, randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { promisify } from 'node:util';
import Provider, { type ProviderContext } from 'oidc-provider';
import { createMemoryAdapter } from 'oidc-provider/lib/adapters/memory_adapter.js';
import type { Logger } from '../../core/logger.js';
import { INTERACTION_PATH, Interactions } from './interactions.js';
import { alert, escapeHtml, page } from './pages.js';
import type { ClaimMapping } from './principal.js';
import type { UserBook } from './users.js';

export const MOUNT_PATH = '/oidc';
const CLIENT_ID = 'eip-dashboard';

export interface EmbeddedProviderOptions {
  /** The gateway's origin, e.g. http://127.0.0.1:8080. */
  readonly publicUrl: string;
  readonly redirectUri: string;
  readonly postLogoutRedirectUri: string;
  readonly users: UserBook;
  readonly mapping: ClaimMapping;
  readonly logger: Logger;
}

export interface EmbeddedProvider {
  readonly issuer: URL;
  readonly clientId: string;
  readonly clientSecret: string;
  /** Serves /oidc/*: true when the request was the provider's. */
  handle(request: IncomingMessage, response: ServerResponse): boolean;
}

async function signingKey(): Promise<Record<string, unknown>> {
  // ES256: a P-256 key is made in a millisecond, and every OpenID relying party verifies it.
  const { privateKey } = await promisify(generateKeyPair)('ec', { namedCurve: 'P-256' });
  const kid = randomBytes(8).toString('hex');
  return { ...privateKey.export({ format: 'jwk' }), kid, alg: 'ES256', use: 'sig' };
}

/** The provider's own pages, in the gateway's template. */
const providerPages = {
  renderError: async (ctx: ProviderContext, out: Readonly<Record<string, string>>) => {
    ctx.type = 'html';
    const description = out.error_description ?? out.error ?? 'unknown error';
    ctx.body = page('Sign-in failed', alert(description));
  },
  logoutSource: async (ctx: ProviderContext, form: string) => {
    // `form` holds the provider's hidden fields (and its CSRF token); the buttons submit it.
    ctx.body = page(
      `Sign out of ${ctx.host} too?`,
      `<p>You have left the dashboard. You are still signed in to the park's demo sign-in.</p>
${form}
<button type="submit" form="op.logoutForm" name="logout" value="yes" autofocus>Yes, sign me out</button>
<button type="submit" form="op.logoutForm" class="secondary">No, stay signed in</button>`,
    );
  },
  postLogoutSuccessSource: async (ctx: ProviderContext) => {
    ctx.body = page('Signed out', `<p>You are signed out of ${escapeHtml(ctx.host)}.</p>`);
  },
};

export async function startEmbeddedProvider(
  options: EmbeddedProviderOptions,
): Promise<EmbeddedProvider> {
  const { users, mapping, logger } = options;
  const issuer = `${options.publicUrl}${MOUNT_PATH}`;
  const clientSecret = randomBytes(32).toString('base64url');
  const provider = new Provider(issuer, {
    // The library's memory store, one per provider; passed by factory, not as the default
    // (which warns on stdout that it is for development: this one is, and says so above).
    adapter: createMemoryAdapter(),
    clients: [
      {
        client_id: CLIENT_ID,
        client_secret: clientSecret,
        redirect_uris: [options.redirectUri],
        post_logout_redirect_uris: [options.postLogoutRedirectUri],
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_post',
        id_token_signed_response_alg: 'ES256',
      },
    ],
    jwks: { keys: [await signingKey()] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    scopes: ['openid', 'profile'],
    claims: {
      openid: ['sub'],
      profile: ['name', 'preferred_username', mapping.role, mapping.plant],
    },
    // The gateway reads who the user is from the ID token alone, as from any provider.
    conformIdTokenClaims: false,
    pkce: { required: () => true },
    features: {
      devInteractions: { enabled: false },
      rpInitiatedLogout: { enabled: true, ...providerPages },
    },
    interactions: { url: (_ctx, interaction) => `${INTERACTION_PATH}${interaction.uid}` },
    findAccount: async (_ctx, sub) =>
      users.has(sub)
        ? { accountId: sub, claims: async () => users.claims(sub, mapping) }
        : undefined,
    renderError: providerPages.renderError,
    // The relying party is the gateway itself, server to server: no browser calls the provider
    // from script, so no CORS.
    clientBasedCORS: () => false,
    // Seconds. Short: a code is redeemed at once, and nothing here uses access tokens.
    ttl: {
      AuthorizationCode: 60,
      AccessToken: 600,
      IdToken: 600,
      Interaction: 600,
      Grant: 3600,
      Session: 3600,
    },
  });
  // Behind a TLS-offloading proxy (an https public URL), its X-Forwarded-Proto tells the provider
  // that its URLs and cookies are https.
  provider.proxy = options.publicUrl.startsWith('https:');
  provider.on('server_error', (_ctx, error) =>
    logger.error({ err: error }, 'embedded sign-in provider failed'),
  );
  const interactions = new Interactions(provider, users, logger);
  const callback = provider.callback();

  const fail = (response: ServerResponse) => (error: unknown) => {
    logger.error({ err: error }, 'embedded sign-in provider failed');
    if (!response.headersSent) response.writeHead(500).end();
  };

  return {
    issuer: new URL(issuer),
    clientId: CLIENT_ID,
    clientSecret,
    handle(request, response) {
      const path = new URL(request.url ?? '/', 'http://gateway').pathname;
      if (path.startsWith(INTERACTION_PATH)) {
        interactions.handle(request, response, path).catch(fail(response));
        return true;
      }
      if (path !== MOUNT_PATH && !path.startsWith(`${MOUNT_PATH}/`)) return false;
      // Mounted as express mounts it: the provider routes on the path below /oidc, and finds
      // its mount point (for the URLs it writes) in originalUrl.
      const url = request.url ?? '/';
      Object.assign(request, { originalUrl: url });
      request.url = url.slice(MOUNT_PATH.length) || '/';
      callback(request, response).catch(fail(response));
      return true;
    },
  };
}
