/**
 * The plant staff's dashboard: static files from public/ beside this file, for the gateway's HTTP
 * server to mount in front of the API (`if (!dashboard(request, response)) api(request, response)`).
 * The page is plain ES modules and CSS, written as served: no bundler, nothing fetched elsewhere.
 *
 * - The files are read once, when the handler is made, and served from memory by exact path: a
 *   request can only ever name one of them, so `..`, encoded slashes or symlinks reach nothing
 *   else. A changed file is served after the gateway restarts.
 * - `Cache-Control: no-cache` with an ETag: without a bundler the names carry no content hash, so
 *   a browser must revalidate (a cheap 304) or it could run new modules beside stale ones.
 * - The Content-Security-Policy admits only this origin's scripts, styles, images and fetches, no
 *   inline script or style, and (Trusted Types) no HTML-string sinks: the page builds its DOM from
 *   nodes, so data from the chain can never become markup.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { dirname, extname, join, sep } from 'node:path';
import { EipError } from '../../core/errors.js';

export interface DashboardOptions {
  /** The folder served; by default gateway/dashboard/public. */
  readonly root?: string;
  /** Path prefixes left to the handlers behind this one: the handler returns false for them. */
  readonly passThrough?: readonly string[];
}

/** (request, response) => whether it answered; false leaves the request to the next handler. */
export type DashboardHandler = (request: IncomingMessage, response: ServerResponse) => boolean;

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/**
 * No `form-action`: it does not fall back to default-src, and the sign-out form's POST may be
 * redirected to the identity provider's logout page, an origin this file cannot know.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
  "require-trusted-types-for 'script'",
].join('; ');

const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  // same-origin, not no-referrer: under no-referrer Chromium sends `Origin: null` with the
  // sign-out form's POST, which the sign-in (gateway/auth) rightly refuses as not ours. Nothing
  // leaves for another origin either way.
  'referrer-policy': 'same-origin',
};

/** The API's routes, the sign-in's, and the embedded demo identity provider's (gateway/auth). */
const DEFAULT_PASS_THROUGH = ['/api/', '/auth/', '/oidc/'];

interface StaticFile {
  readonly body: Buffer;
  readonly type: string;
  readonly etag: string;
}

/** gateway/dashboard/public, the nearest above this file: found alike from the sources and dist/. */
export function defaultDashboardRoot(): string {
  for (let dir = import.meta.dirname; ; dir = dirname(dir)) {
    const candidate = join(dir, 'gateway', 'dashboard', 'public');
    if (existsSync(candidate)) return candidate;
    if (dirname(dir) === dir) {
      throw new EipError('IO_ERROR', `no gateway/dashboard/public above ${import.meta.dirname}`);
    }
  }
}

/** Every file under `root` by its URL path; a file of a type it cannot name is refused. */
function loadFiles(root: string): Map<string, StaticFile> {
  const files = new Map<string, StaticFile>();
  for (const entry of readdirSync(root, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    const type = CONTENT_TYPES[extname(entry.name)];
    if (type === undefined) {
      throw new EipError('INVALID_ARGUMENT', `${path}: no content type for this kind of file`);
    }
    const body = readFileSync(path);
    const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
    const urlPath = `/${path
      .slice(root.length + 1)
      .split(sep)
      .join('/')}`;
    files.set(urlPath, { body, type, etag });
  }
  return files;
}

function passesThrough(pathname: string, prefixes: readonly string[]): boolean {
  return prefixes.some((prefix) => pathname.startsWith(prefix) || `${pathname}/` === prefix);
}

function sendText(
  response: ServerResponse,
  status: number,
  text: string,
  headers: Readonly<Record<string, string>> = {},
): void {
  response.writeHead(status, {
    ...SECURITY_HEADERS,
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...headers,
  });
  response.end(text);
}

export function dashboardHandler(options: DashboardOptions = {}): DashboardHandler {
  const files = loadFiles(options.root ?? defaultDashboardRoot());
  const passThrough = options.passThrough ?? DEFAULT_PASS_THROUGH;
  return (request, response) => {
    // Dot segments (also %2e%2e) are resolved by the URL parser; the lookup below is exact.
    const { pathname } = new URL(request.url ?? '/', 'http://dashboard');
    if (passesThrough(pathname, passThrough)) return false;
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      sendText(response, 405, `${request.method} is not allowed; use GET\n`, {
        allow: 'GET, HEAD',
      });
      return true;
    }
    const file = files.get(pathname === '/' ? '/index.html' : pathname);
    if (file === undefined) {
      sendText(response, 404, `no file ${pathname}\n`);
      return true;
    }
    const headers = {
      ...SECURITY_HEADERS,
      'content-type': file.type,
      'cache-control': 'no-cache',
      etag: file.etag,
    };
    if (request.headers['if-none-match'] === file.etag) {
      response.writeHead(304, headers);
      response.end();
      return true;
    }
    response.writeHead(200, { ...headers, 'content-length': file.body.length });
    response.end(request.method === 'HEAD' ? undefined : file.body);
    return true;
  };
}
