/**
 * The part of oidc-provider v9's API the embedded demo provider uses. The package ships no types
 * and @types/oidc-provider is not a dependency; these follow v9's lib/provider.js and
 * lib/helpers/defaults.js, and the integration test (test/gateway/auth.test.ts) runs them.
 */
declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http';

  export interface Account {
    readonly accountId: string;
    claims(use: string, scope: string): Promise<Record<string, unknown>>;
  }

  /** The Koa context the provider's hooks receive, as far as they are used here. */
  export interface ProviderContext {
    type: string;
    body: string;
    readonly host: string;
  }

  export interface ClientMetadata {
    readonly client_id: string;
    readonly client_secret: string;
    readonly redirect_uris: readonly string[];
    readonly post_logout_redirect_uris: readonly string[];
    readonly grant_types: readonly string[];
    readonly response_types: readonly string[];
    readonly token_endpoint_auth_method: string;
    readonly id_token_signed_response_alg: string;
  }

  export interface Configuration {
    readonly adapter: (model: string) => unknown;
    readonly clients: readonly ClientMetadata[];
    readonly jwks: { readonly keys: readonly Record<string, unknown>[] };
    readonly cookies: { readonly keys: readonly string[] };
    readonly claims: Readonly<Record<string, readonly string[]>>;
    readonly scopes: readonly string[];
    readonly conformIdTokenClaims: boolean;
    readonly pkce: { readonly required: () => boolean };
    readonly features: {
      readonly devInteractions: { readonly enabled: boolean };
      readonly rpInitiatedLogout: {
        readonly enabled: boolean;
        readonly logoutSource: (ctx: ProviderContext, form: string) => Promise<void>;
        readonly postLogoutSuccessSource: (ctx: ProviderContext) => Promise<void>;
      };
    };
    readonly interactions: { readonly url: (ctx: unknown, interaction: { uid: string }) => string };
    readonly findAccount: (ctx: unknown, sub: string) => Promise<Account | undefined>;
    readonly renderError: (
      ctx: ProviderContext,
      out: Readonly<Record<string, string>>,
      error: Error,
    ) => Promise<void>;
    readonly clientBasedCORS: () => boolean;
    readonly ttl: Readonly<Record<string, number>>;
  }

  export interface Interaction {
    readonly uid: string;
    readonly prompt: {
      readonly name: string;
      readonly details: {
        readonly missingOIDCScope?: readonly string[];
        readonly missingOIDCClaims?: readonly string[];
      };
    };
    readonly params: Readonly<Record<string, unknown>> & { readonly client_id: string };
    readonly session?: { readonly accountId: string };
    readonly grantId?: string;
  }

  export interface InteractionResults {
    readonly login?: { readonly accountId: string; readonly remember?: boolean };
    readonly consent?: { readonly grantId: string };
  }

  export class Grant {
    constructor(properties: { accountId: string; clientId: string });
    addOIDCScope(scope: string): void;
    addOIDCClaims(claims: readonly string[]): void;
    save(): Promise<string>;
  }

  export class Provider {
    constructor(issuer: string, configuration: Configuration);
    /** Trust X-Forwarded-Proto and -Host from a TLS-offloading proxy. */
    proxy: boolean;
    readonly Grant: typeof Grant & { find(id: string): Promise<Grant | undefined> };
    callback(): (request: IncomingMessage, response: ServerResponse) => Promise<void>;
    interactionDetails(request: IncomingMessage, response: ServerResponse): Promise<Interaction>;
    interactionFinished(
      request: IncomingMessage,
      response: ServerResponse,
      result: InteractionResults,
      options?: { readonly mergeWithLastSubmission?: boolean },
    ): Promise<void>;
    on(event: 'server_error', listener: (ctx: unknown, error: Error) => void): this;
  }

  export const errors: {
    readonly SessionNotFound: new (...args: never[]) => Error;
  };

  export default Provider;
}

declare module 'oidc-provider/lib/adapters/memory_adapter.js' {
  /** One in-memory store per call: each provider instance gets its own. */
  export function createMemoryAdapter(clockTolerance?: number): (model: string) => unknown;
}
