/**
 * The embedded provider's user-facing steps (its "interactions"), at /oidc/interaction/:uid: a
 * login form with user name and password, and consent, which is given without asking because the
 * only client is the park's own dashboard (first party: the user signs in to see the park's data,
 * and refusing to share a name with it would only end the sign-in).
 *
 * CSRF: the form posts to the interaction's own URL, and oidc-provider accepts it only with the
 * interaction cookie it set on this path (SameSite=Lax, so a cross-site POST arrives without it).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { errors, type Interaction, type Provider } from 'oidc-provider';
import { z } from 'zod';
import type { Logger } from '../../core/logger.js';
import { alert, escapeHtml, page, sendPage } from './pages.js';
import type { UserBook } from './users.js';

export const INTERACTION_PATH = '/oidc/interaction/';
const FORM_BYTES = 4096;

const loginForm = z.object({
  username: z.string().max(200).default(''),
  password: z.string().max(1000).default(''),
});

function loginPage(uid: string, username = '', error?: string): string {
  const action = `${INTERACTION_PATH}${encodeURIComponent(uid)}/login`;
  return page(
    'Sign in to the park dashboard',
    `${error === undefined ? '' : alert(error)}
<form method="post" action="${escapeHtml(action)}">
<label for="username">User name</label>
<input id="username" name="username" autocomplete="username" autocapitalize="none" spellcheck="false" required autofocus value="${escapeHtml(username)}">
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form>`,
  );
}

/** The urlencoded body of a form, refused past FORM_BYTES. */
async function readForm(request: IncomingMessage): Promise<Record<string, string>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > FORM_BYTES) throw new RangeError('form too large');
    chunks.push(chunk as Buffer);
  }
  return Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString('utf8')));
}

export class Interactions {
  constructor(
    private readonly provider: Provider,
    private readonly users: UserBook,
    private readonly logger: Logger,
  ) {}

  /** Serves GET /oidc/interaction/:uid and POST /oidc/interaction/:uid/login. */
  async handle(request: IncomingMessage, response: ServerResponse, path: string): Promise<void> {
    let interaction: Interaction;
    try {
      interaction = await this.provider.interactionDetails(request, response);
    } catch (error) {
      // No interaction cookie, or the interaction is over or expired (10 minutes).
      if (!(error instanceof errors.SessionNotFound)) throw error;
      sendPage(
        response,
        400,
        page(
          'This sign-in page has expired',
          `${alert('Go back to the dashboard and sign in again.')}\n<p><a href="/auth/login">Sign in</a></p>`,
        ),
      );
      return;
    }
    const login = path === `${INTERACTION_PATH}${interaction.uid}/login`;
    if (interaction.prompt.name === 'consent') {
      await this.consent(request, response, interaction);
    } else if (login && request.method === 'POST') {
      await this.login(request, response, interaction);
    } else if (path === `${INTERACTION_PATH}${interaction.uid}` && request.method === 'GET') {
      sendPage(response, 200, loginPage(interaction.uid));
    } else {
      sendPage(response, 404, page('Not found', alert(`Nothing is at ${path}.`)));
    }
  }

  private async login(
    request: IncomingMessage,
    response: ServerResponse,
    interaction: Interaction,
  ): Promise<void> {
    const parsed = loginForm.safeParse(await readForm(request));
    const { username, password } = parsed.success ? parsed.data : { username: '', password: '' };
    if (!(await this.users.check(username, password))) {
      this.logger.warn({ user: username }, 'demo sign-in: wrong user name or password');
      sendPage(response, 200, loginPage(interaction.uid, username, 'Wrong user name or password.'));
      return;
    }
    // remember: false: the provider's own session ends with the browser, not days later.
    await this.provider.interactionFinished(
      request,
      response,
      { login: { accountId: username, remember: false } },
      { mergeWithLastSubmission: false },
    );
  }

  private async consent(
    request: IncomingMessage,
    response: ServerResponse,
    interaction: Interaction,
  ): Promise<void> {
    const { Grant } = this.provider;
    const accountId = interaction.session?.accountId ?? '';
    const existing =
      interaction.grantId === undefined ? undefined : await Grant.find(interaction.grantId);
    const grant = existing ?? new Grant({ accountId, clientId: interaction.params.client_id });
    const { missingOIDCScope, missingOIDCClaims } = interaction.prompt.details;
    if (missingOIDCScope) grant.addOIDCScope(missingOIDCScope.join(' '));
    if (missingOIDCClaims) grant.addOIDCClaims(missingOIDCClaims);
    const grantId = await grant.save();
    await this.provider.interactionFinished(
      request,
      response,
      { consent: { grantId } },
      { mergeWithLastSubmission: true },
    );
  }
}
