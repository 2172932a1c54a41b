/**
 * The gateway as an OpenID Connect relying party (openid-client v6): the authorization code flow
 * with PKCE (S256), state and nonce, for a confidential client (with a secret) or a public one.
 * The provider's metadata is discovered from its issuer URL at the first sign-in, and again after
 * a failure, so a gateway starts while its provider is down and signs in once it is back.
 *
 * Tokens stay on the server: the ID token is validated here (signature, issuer, audience, expiry,
 * nonce) and its claims become a session; the browser only ever holds a random session id.
 */
import * as oidc from 'openid-client';
import { EipError } from '../../core/errors.js';

export interface RelyingPartyOptions {
  readonly issuer: URL;
  readonly clientId: string;
  /** Absent: a public client, which PKCE alone protects. */
  readonly clientSecret?: string | undefined;
  /** Registered at the provider: the gateway's /auth/callback. */
  readonly redirectUri: string;
  readonly scope: string;
}

/** What a sign-in in progress must remember between the redirect and the callback. */
export interface PendingLogin {
  readonly state: string;
  readonly nonce: string;
  readonly codeVerifier: string;
}

export interface SignedIn {
  readonly claims: Readonly<Record<string, unknown>>;
  /** Kept server-side, as the hint of RP-initiated logout. */
  readonly idToken: string;
}

const TIMEOUT_S = 10;

export class RelyingParty {
  private discovered: Promise<oidc.Configuration> | undefined;

  constructor(private readonly options: RelyingPartyOptions) {}

  /** Where to send the browser, and what to remember until it comes back. */
  async begin(): Promise<{ readonly url: URL; readonly pending: PendingLogin }> {
    const configuration = await this.configuration();
    const pending: PendingLogin = {
      state: oidc.randomState(),
      nonce: oidc.randomNonce(),
      codeVerifier: oidc.randomPKCECodeVerifier(),
    };
    const url = oidc.buildAuthorizationUrl(configuration, {
      redirect_uri: this.options.redirectUri,
      scope: this.options.scope,
      code_challenge: await oidc.calculatePKCECodeChallenge(pending.codeVerifier),
      code_challenge_method: 'S256',
      state: pending.state,
      nonce: pending.nonce,
    });
    return { url, pending };
  }

  /**
   * Checks the provider's answer at `callbackUrl` against `pending`, redeems the code with the
   * PKCE verifier and validates the ID token. Refusals are UNAUTHORIZED with the reason.
   */
  async finish(callbackUrl: URL, pending: PendingLogin): Promise<SignedIn> {
    const configuration = await this.configuration();
    try {
      const tokens = await oidc.authorizationCodeGrant(configuration, callbackUrl, {
        pkceCodeVerifier: pending.codeVerifier,
        expectedState: pending.state,
        expectedNonce: pending.nonce,
      });
      const claims = tokens.claims();
      if (claims === undefined || tokens.id_token === undefined) {
        throw new EipError('UNAUTHORIZED', 'the provider returned no ID token');
      }
      return { claims, idToken: tokens.id_token };
    } catch (error) {
      throw new EipError('UNAUTHORIZED', `sign-in refused: ${reason(error)}`, { cause: error });
    }
  }

  /**
   * The provider's end-session URL that signs the browser out there too and comes back to
   * `returnTo`, or null for a provider without one (Google).
   */
  async endSessionUrl(idToken: string, returnTo: string): Promise<URL | null> {
    const configuration = await this.configuration();
    if (configuration.serverMetadata().end_session_endpoint === undefined) return null;
    return oidc.buildEndSessionUrl(configuration, {
      id_token_hint: idToken,
      post_logout_redirect_uri: returnTo,
    });
  }

  private configuration(): Promise<oidc.Configuration> {
    if (this.discovered === undefined) {
      const { issuer, clientId, clientSecret } = this.options;
      const attempt = oidc
        .discovery(
          issuer,
          clientId,
          clientSecret,
          clientSecret === undefined ? oidc.None() : undefined,
          {
            timeout: TIMEOUT_S,
            // The config allows http only for a provider on loopback or the embedded one.
            ...(issuer.protocol === 'http:' && { execute: [oidc.allowInsecureRequests] }),
          },
        )
        .catch((error: unknown) => {
          this.discovered = undefined;
          throw new EipError(
            'IO_ERROR',
            `the sign-in provider ${issuer.href} cannot be reached: ${reason(error)}`,
            { retryable: true, cause: error },
          );
        });
      this.discovered = attempt;
    }
    return this.discovered;
  }
}

/** What went wrong, in the provider's or the library's words. */
function reason(error: unknown): string {
  if (error instanceof oidc.AuthorizationResponseError || error instanceof oidc.ResponseBodyError) {
    // The provider's own refusal: access_denied, invalid_grant (a code used twice, or a PKCE
    // verifier that does not match), with its description.
    return `${error.error}${error.error_description ? ` (${error.error_description})` : ''}`;
  }
  if (error instanceof Error) {
    // openid-client's checks ("unexpected "state" response parameter value") sit in the cause.
    const cause = error.cause instanceof Error ? `: ${error.cause.message}` : '';
    return `${error.message}${cause}`;
  }
  return String(error);
}
