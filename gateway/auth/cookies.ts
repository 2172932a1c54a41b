/**
 * The sign-in cookies: opaque random ids only, HttpOnly (no script reads them), SameSite=Lax
 * (not sent on cross-site POSTs, which is half the CSRF defence; see routes.ts), Path=/. Over
 * https they are Secure and carry the __Host- prefix, which browsers accept only from this host
 * over https with Path=/, so a sibling subdomain cannot plant a session id of its choosing.
 */
import type { IncomingMessage } from 'node:http';

export class CookieJar {
  private readonly prefix: string;

  constructor(private readonly secure: boolean) {
    this.prefix = secure ? '__Host-' : '';
  }

  /** The value of our cookie `name` in the request, if any. */
  read(request: IncomingMessage, name: string): string | undefined {
    const wanted = `${this.prefix}${name}`;
    for (const pair of request.headers.cookie?.split(';') ?? []) {
      const at = pair.indexOf('=');
      if (at > 0 && pair.slice(0, at).trim() === wanted) return pair.slice(at + 1).trim();
    }
    return undefined;
  }

  /** A Set-Cookie value; without `maxAgeS` the browser drops it when it closes. */
  set(name: string, value: string, maxAgeS?: number): string {
    return [
      `${this.prefix}${name}=${value}`,
      'HttpOnly',
      'SameSite=Lax',
      'Path=/',
      ...(maxAgeS === undefined ? [] : [`Max-Age=${Math.floor(maxAgeS)}`]),
      ...(this.secure ? ['Secure'] : []),
    ].join('; ');
  }

  clear(name: string): string {
    return this.set(name, '', 0);
  }
}
