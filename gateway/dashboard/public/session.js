/**
 * Who is signed in, shown in the header with a way out, or a way in. The sign-in itself is the
 * gateway's (OpenID Connect, /auth/…): the page only asks /auth/me and links to the rest.
 *
 * @typedef {import('../wire.js').Session} Session
 */
import { h } from './dom.js';
import { short } from './format.js';

/** Back to the dashboard's start once signed in. */
export const SIGN_IN = '/auth/login?return=/';

/** @param {Session} session */
function who(session) {
  const role =
    session.role === 'operator'
      ? 'the park operator'
      : `${session.plant} (${short(session.address)})`;
  // A demo user is named as its plant: "biogas-plant, biogas-plant (0x…)" says it twice.
  const named = session.who && !(session.role === 'plant' && session.who === session.plant);
  return named ? `${session.who}, ${role}` : role;
}

export const signInLink = () => h('a', { class: 'button', href: SIGN_IN }, 'Sign in');

/**
 * @param {HTMLElement} container
 * @param {Session | null} session null: no one is signed in
 */
export function showSession(container, session) {
  if (session === null) {
    container.replaceChildren(signInLink());
    return;
  }
  container.replaceChildren(
    h('p', {}, 'Signed in as ', h('strong', {}, who(session))),
    // A form rather than fetch: the gateway may answer the POST by redirecting to the identity
    // provider's own sign-out page, which a page can follow but a fetch cannot.
    h(
      'form',
      { method: 'post', action: '/auth/logout' },
      h('button', { type: 'submit' }, 'Sign out'),
    ),
  );
}

/**
 * When /auth/me fails otherwise than with 401 (a gateway without sign-in answers 404): says so,
 * and the page goes on with what the API serves.
 * @param {HTMLElement} container
 * @param {string} reason
 */
export function showSessionUnknown(container, reason) {
  container.replaceChildren(h('p', {}, `Sign-in unavailable: ${reason}`));
}
