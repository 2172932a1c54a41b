/**
 * Reads the gateway's JSON. The API decides what the signed-in user may see (a plant sees its own
 * trades): the page shows what it is given and says why when it is given nothing.
 *
 * @typedef {import('../wire.js').ErrorBody} ErrorBody
 * @typedef {import('../wire.js').Session} Session
 */

export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {string} message
   */
  constructor(status, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
  }
}

/**
 * The API's own message when it sent one, else the HTTP status.
 * @param {Response} response
 */
async function failure(response) {
  /** @type {Partial<ErrorBody> | null} */
  const body = await response.json().catch(() => null);
  const message = body?.error?.message ?? `HTTP ${response.status} ${response.statusText}`.trim();
  return new ApiError(response.status, message);
}

/**
 * @template T
 * @param {string} path
 * @returns {Promise<T>}
 */
export async function getJson(path) {
  const response = await fetch(path, { headers: { accept: 'application/json' } });
  if (!response.ok) throw await failure(response);
  return /** @type {T} */ (await response.json());
}

/**
 * Every item of a paged list, newest first, following `next` for at most `maxPages` pages of the
 * API's largest size; `complete` is false when older items were left.
 * @template T
 * @param {string} path without `limit` and `before`
 * @param {number} maxPages
 * @returns {Promise<{ items: T[], complete: boolean }>}
 */
export async function allPages(path, maxPages) {
  const join = path.includes('?') ? '&' : '?';
  /** @type {T[]} */
  const items = [];
  /** @type {string | null} */
  let before = null;
  for (let page = 0; page < maxPages; page++) {
    const cursor = before === null ? '' : `&before=${encodeURIComponent(before)}`;
    /** @type {import('../wire.js').Page<T>} */
    const answer = await getJson(`${path}${join}limit=500${cursor}`);
    items.push(...answer.items);
    before = answer.next;
    if (before === null) return { items, complete: true };
  }
  return { items, complete: false };
}

/**
 * Who is signed in; null when no one is (401).
 * @returns {Promise<Session | null>}
 */
export async function signedIn() {
  const response = await fetch('/auth/me', { headers: { accept: 'application/json' } });
  if (response.status === 401) return null;
  if (!response.ok) throw await failure(response);
  return /** @type {Session} */ (await response.json());
}
