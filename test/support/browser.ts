/**
 * A browser as far as sign-in needs one, over fetch: a cookie jar that honours Path and Max-Age,
 * redirects followed by hand (so a test can stop at any hop and tamper with it), and the forms
 * of a page. Loopback only, bounded: every request times out, and a chain of redirects stops.
 */

const MAX_HOPS = 20;

interface Cookie {
  readonly name: string;
  readonly value: string;
  readonly path: string;
}

export interface Hop {
  readonly url: URL;
  readonly response: Response;
}

export class Browser {
  private cookies: Cookie[] = [];
  /** Every Set-Cookie header received, as sent. */
  readonly setCookies: string[] = [];

  /** One request, no redirect followed; cookies sent and kept as a browser would. */
  async request(url: URL | string, init: RequestInit = {}): Promise<Response> {
    const target = new URL(url);
    const headers = new Headers(init.headers);
    const cookie = this.cookieHeader(target);
    if (cookie) headers.set('cookie', cookie);
    const response = await fetch(target, {
      ...init,
      headers,
      redirect: 'manual',
      signal: AbortSignal.timeout(10_000),
    });
    for (const line of response.headers.getSetCookie()) this.keep(line);
    return response;
  }

  /**
   * Follows redirects from `url` (GET after the first request) until an answer that is not one,
   * or until `stopBefore` says the next URL is one to handle by hand; every hop is returned.
   */
  async follow(
    url: URL | string,
    init: RequestInit = {},
    stopBefore: (next: URL) => boolean = () => false,
  ): Promise<{ readonly last: Hop; readonly next: URL | null; readonly hops: readonly Hop[] }> {
    const hops: Hop[] = [];
    let current = new URL(url);
    let request = init;
    for (let i = 0; i < MAX_HOPS; i++) {
      const response = await this.request(current, request);
      const hop = { url: current, response };
      hops.push(hop);
      const location = response.headers.get('location');
      if (response.status < 300 || response.status >= 400 || location === null) {
        return { last: hop, next: null, hops };
      }
      await response.body?.cancel();
      const next = new URL(location, current);
      if (stopBefore(next)) return { last: hop, next, hops };
      current = next;
      request = {};
    }
    throw new Error(`more than ${MAX_HOPS} redirects from ${url}`);
  }

  /** The value of cookie `name` the jar would send to `url`. */
  cookie(name: string, url: URL | string = 'http://127.0.0.1/'): string | undefined {
    const { pathname } = new URL(url);
    return this.cookies.find((c) => c.name === name && pathname.startsWith(c.path))?.value;
  }

  forget(name: string): void {
    this.cookies = this.cookies.filter((c) => c.name !== name);
  }

  private cookieHeader(url: URL): string {
    return this.cookies
      .filter((c) => url.pathname.startsWith(c.path))
      .map((c) => `${c.name}=${c.value}`)
      .join('; ');
  }

  private keep(line: string): void {
    this.setCookies.push(line);
    const [pair = '', ...attributes] = line.split(';').map((part) => part.trim());
    const at = pair.indexOf('=');
    const name = pair.slice(0, at);
    const value = pair.slice(at + 1);
    const attribute = (key: string) =>
      attributes.find((a) => a.toLowerCase().startsWith(`${key}=`))?.slice(key.length + 1);
    const path = attribute('path') ?? '/';
    const maxAge = attribute('max-age');
    const expires = attribute('expires');
    this.cookies = this.cookies.filter((c) => !(c.name === name && c.path === path));
    const gone =
      (maxAge !== undefined && Number(maxAge) <= 0) ||
      (expires !== undefined && Date.parse(expires) <= Date.now());
    if (!gone) this.cookies.push({ name, value, path });
  }
}

/** The first form of a page: where it posts, and its hidden fields. */
export function formOf(html: string, base: URL): { action: URL; fields: Record<string, string> } {
  const form = /<form[^>]*action="([^"]*)"[^>]*>([\s\S]*?)<\/form>/i.exec(html);
  if (form === null) throw new Error(`no form in ${html.slice(0, 200)}`);
  const decode = (text: string) =>
    text
      .replace(/&quot;/g, '"')
      .replace(/&#39;/g, "'")
      .replace(/&lt;/g, '<')
      .replace(/&gt;/g, '>')
      .replace(/&amp;/g, '&');
  const fields: Record<string, string> = {};
  for (const input of (form[2] ?? '').matchAll(/<input[^>]*type="hidden"[^>]*>/gi)) {
    const name = /name="([^"]*)"/.exec(input[0])?.[1];
    const value = /value="([^"]*)"/.exec(input[0])?.[1];
    if (name !== undefined) fields[name] = decode(value ?? '');
  }
  return { action: new URL(decode(form[1] ?? ''), base), fields };
}
