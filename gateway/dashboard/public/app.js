/**
 * The dashboard's entry: asks who is signed in, follows the live stream, and shows the view the
 * address names, fetching it again when the stream says it changed.
 *
 * @typedef {import('../wire.js').Session} Session
 * @typedef {import('./live.js').Change} Change
 * @typedef {import('./views/view.js').Context} Context
 * @typedef {import('./views/view.js').View} View
 */
import { announce, confirmation } from './announce.js';
import { ApiError, signedIn } from './api.js';
import { h } from './dom.js';
import { followEvents } from './live.js';
import { repaint } from './repaint.js';
import { isRoute, parseRoute, viewOf } from './routes.js';
import { showSession, showSessionUnknown, signInLink } from './session.js';
import { showChainState, showLinkState } from './status.js';

/** Events come in bursts (a block carries several): one fetch answers a burst. */
const RELOAD_DELAY_MS = 200;
const APP_NAME = 'Park utility market';

/** @param {string} id */
function byId(id) {
  const element = document.getElementById(id);
  if (element === null) throw new Error(`index.html has no #${id}`);
  return element;
}

const page = {
  title: byId('view-title'),
  view: byId('view'),
  session: byId('session'),
  linkState: byId('link-state'),
  chainState: byId('chain-state'),
  announcements: byId('announcements'),
};

/** @type {Session | null} */
let session = null;
/** @type {{ view: View, draw: (context: Context) => Node } | null} */
let shown = null;
/** Counts navigations and reloads, so a slow answer for an earlier one is dropped. */
let generation = 0;
/** @type {ReturnType<typeof setTimeout> | undefined} */
let reloadTimer;
let drawnWidth = 0;
/** Ends the page's listeners once no one is signed in any more. */
const listening = new AbortController();

/** @param {unknown} error */
function failure(error) {
  const message = error instanceof Error ? error.message : String(error);
  const signedOut = error instanceof ApiError && error.status === 401;
  return h(
    'p',
    { class: 'notice' },
    signedOut ? 'You are signed out. ' : `This view could not be loaded: ${message}. `,
    signedOut && signInLink(),
  );
}

function paint() {
  if (shown === null) return;
  drawnWidth = page.view.clientWidth;
  repaint(page.view, shown.draw({ width: drawnWidth, session }));
}

/**
 * The view's title in its heading and the window's, and its entry marked in the navigation.
 * @param {View} view
 * @param {import('./views/view.js').Route} route
 */
function heading(view, route) {
  const title = view.title(route);
  page.title.textContent = title;
  document.title = `${title} · ${APP_NAME}`;
  for (const link of document.querySelectorAll('nav a[data-nav]')) {
    if (link instanceof HTMLElement && link.dataset.nav === view.nav) {
      link.setAttribute('aria-current', 'page');
    } else {
      link.removeAttribute('aria-current');
    }
  }
}

/**
 * Shows the view the address names, fetched anew.
 * @param {boolean} navigated moves focus to the view's heading, as a page load would
 */
async function show(navigated) {
  const route = parseRoute(location.hash);
  const view = viewOf(route);
  const mine = ++generation;
  clearTimeout(reloadTimer);
  reloadTimer = undefined;
  if (navigated) {
    heading(view, route);
    page.view.setAttribute('aria-busy', 'true');
    page.title.focus();
  }
  /** @type {(context: Context) => Node} */
  const draw = await view.load(route).catch((error) => () => failure(error));
  if (mine !== generation) return;
  shown = { view, draw };
  paint();
  page.view.removeAttribute('aria-busy');
}

function reloadSoon() {
  reloadTimer ??= setTimeout(() => show(false), RELOAD_DELAY_MS);
}

/** @param {Change} change */
function onChange(change) {
  if (change.name === 'agreement') announce(page.announcements, confirmation(change.data));
  if (change.name === 'block') showChainState(page.chainState);
  if (shown?.view.reloadOn.includes(change.name)) reloadSoon();
}

/** No one signed in: a way in, and nothing else. */
function signInOnly() {
  listening.abort();
  showSession(page.session, null);
  page.title.textContent = 'Sign in';
  document.title = `Sign in · ${APP_NAME}`;
  page.view.replaceChildren(h('p', {}, 'Sign in to see the park’s market. ', signInLink()));
  page.view.removeAttribute('aria-busy');
  page.linkState.hidden = true;
}

function follow() {
  const stop = followEvents({
    url: '/api/events',
    onChange,
    onResync: () => {
      show(false);
      showChainState(page.chainState);
    },
    onState: async (state) => {
      showLinkState(page.linkState, state);
      if (state !== 'offline') return;
      // The stream ends with the session (signed out elsewhere, expired) and is then refused.
      const now = await signedIn().catch(() => undefined);
      if (now === null) {
        stop();
        session = null;
        signInOnly();
      } else if (shown === null) {
        // Without a first connection the views are still worth showing, only not live.
        show(false);
      }
    },
  });
}

async function start() {
  /** @type {Session | 'signed out' | { unknown: string }} */
  const who = await signedIn().then(
    (answer) => answer ?? 'signed out',
    (error) => ({ unknown: error instanceof Error ? error.message : String(error) }),
  );
  if (who === 'signed out') {
    signInOnly();
    return;
  }
  if ('unknown' in who) {
    showSessionUnknown(page.session, who.unknown);
  } else {
    session = who;
    showSession(page.session, who);
  }
  const { signal } = listening;
  window.addEventListener(
    'hashchange',
    () => {
      if (isRoute(location.hash)) show(true);
    },
    { signal },
  );
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let resizeTimer;
  window.addEventListener(
    'resize',
    () => {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(() => {
        if (page.view.clientWidth !== drawnWidth) paint();
      }, RELOAD_DELAY_MS);
    },
    { signal },
  );
  // The heading now, the content once the stream is open (live.js says why).
  const route = parseRoute(location.hash);
  heading(viewOf(route), route);
  follow();
}

start();
