/**
 * The dashboard's static file handler on a real HTTP server: every file of public/ with its
 * content type, caching and security headers; paths outside public/ refused however they are
 * spelt; the API's and the sign-in's paths left to the handlers behind it.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { extname, join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CONTENT_SECURITY_POLICY,
  dashboardHandler,
  defaultDashboardRoot,
} from '../../gateway/dashboard/serve.js';

const ROOT = defaultDashboardRoot();
const handler = dashboardHandler();
let server: Server;
let port: number;

interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

/** A request with the path exactly as given: fetch would resolve its dot segments itself. */
function raw(path: string, method = 'GET', headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, headers }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        body += chunk;
      });
      response.on('end', () =>
        resolve({ status: response.statusCode ?? 0, headers: response.headers, body }),
      );
    });
    req.once('error', reject);
    req.end();
  });
}

beforeAll(async () => {
  server = createServer((req, res) => {
    // What the gateway does with a request the dashboard leaves: the API answers it.
    if (!handler(req, res)) {
      res.writeHead(418, { 'content-type': 'text/plain' });
      res.end('the next handler');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

describe('dashboardHandler', () => {
  it('serves / as index.html, with the CSP, nosniff and revalidation', async () => {
    const { status, headers, body } = await raw('/');
    expect(status).toBe(200);
    expect(headers['content-type']).toBe('text/html; charset=utf-8');
    expect(headers['cache-control']).toBe('no-cache');
    expect(headers['x-content-type-options']).toBe('nosniff');
    expect(headers['content-security-policy']).toBe(CONTENT_SECURITY_POLICY);
    expect(body).toBe(readFileSync(join(ROOT, 'index.html'), 'utf8'));
    expect((await raw('/index.html')).body).toBe(body);
  });

  it('has a CSP that forbids inline scripts and styles, HTML sinks and other origins', () => {
    const directives = new Map(
      CONTENT_SECURITY_POLICY.split(';').map((d) => {
        const [name = '', ...values] = d.trim().split(/\s+/);
        return [name, values];
      }),
    );
    expect(directives.get('default-src')).toEqual(["'none'"]);
    for (const name of ['script-src', 'style-src', 'img-src', 'connect-src']) {
      expect(directives.get(name), name).toEqual(["'self'"]);
    }
    expect(directives.get('require-trusted-types-for')).toEqual(["'script'"]);
    expect(directives.get('frame-ancestors')).toEqual(["'none'"]);
    expect(CONTENT_SECURITY_POLICY).not.toMatch(/unsafe-|https?:|\*|data:/);
  });

  it('has markup that the CSP lets run: no inline script, style or handler', () => {
    const html = readFileSync(join(ROOT, 'index.html'), 'utf8');
    for (const tag of html.match(/<script\b[^>]*>/g) ?? []) expect(tag).toMatch(/\ssrc="\//);
    expect(html).not.toMatch(/<style\b|\sstyle=|\son[a-z]+=/i);
  });

  it('serves every file of public/ with its content type', async () => {
    const types: Record<string, string> = {
      '.html': 'text/html; charset=utf-8',
      '.js': 'text/javascript; charset=utf-8',
      '.css': 'text/css; charset=utf-8',
      '.svg': 'image/svg+xml',
    };
    const files = readdirSync(ROOT, { recursive: true, encoding: 'utf8' }).filter((f) =>
      extname(f),
    );
    expect(files).toEqual(expect.arrayContaining(['app.js', 'style.css', 'icon.svg']));
    for (const file of files) {
      const path = `/${relative(ROOT, join(ROOT, file)).split('\\').join('/')}`;
      const { status, headers, body } = await raw(path);
      expect(status, path).toBe(200);
      expect(headers['content-type'], path).toBe(types[extname(file)]);
      expect(body, path).toBe(readFileSync(join(ROOT, file), 'utf8'));
    }
  });

  it('answers 304 to a request whose ETag still matches, and HEAD without a body', async () => {
    const first = await raw('/app.js');
    const etag = String(first.headers.etag);
    expect(etag).toMatch(/^"[\w-]{22}"$/);
    const again = await raw('/app.js', 'GET', { 'if-none-match': etag });
    expect(again.status).toBe(304);
    expect(again.body).toBe('');
    const head = await raw('/app.js', 'HEAD');
    expect(head.status).toBe(200);
    expect(head.headers['content-length']).toBe(first.headers['content-length']);
    expect(head.body).toBe('');
  });

  it.each([
    '/../package.json',
    '/../../package.json',
    '/%2e%2e/%2e%2e/package.json',
    '/%2E%2E%2F%2E%2E%2Fpackage.json',
    '/..%2f..%2fpackage.json',
    '/..\\..\\package.json',
    '/views/../../serve.ts',
    '/%2e%2e/serve.ts',
    '/public/index.html',
    '/index.html%00.js',
    '/app.js/',
    '/nothing.js',
  ])('refuses %s with 404', async (path) => {
    const { status, headers, body } = await raw(path);
    expect(status).toBe(404);
    expect(headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(headers['content-security-policy']).toBe(CONTENT_SECURITY_POLICY);
    expect(body).toMatch(/^no file /);
    expect(body).not.toMatch(/"name": "eip-market"|dashboardHandler/);
  });

  it('leaves the API, the sign-in and its demo provider to the handlers behind it', async () => {
    for (const path of [
      '/api/status',
      '/api/events',
      '/auth/me',
      '/auth/login?return=/',
      '/oidc',
      '/oidc/.well-known/openid-configuration',
    ]) {
      expect((await raw(path)).status, path).toBe(418);
    }
    expect((await raw('/auth/logout', 'POST')).status).toBe(418);
    expect((await raw('/apis')).status).toBe(404);
  });

  it('answers another method 405 with Allow', async () => {
    const { status, headers } = await raw('/index.html', 'POST');
    expect(status).toBe(405);
    expect(headers.allow).toBe('GET, HEAD');
  });

  it('refuses a folder holding a file it could not name the type of', () => {
    const dir = mkdtempSync(join(tmpdir(), 'eip-dashboard-'));
    try {
      writeFileSync(join(dir, 'index.html'), '<!doctype html>');
      writeFileSync(join(dir, 'notes.txt'), 'not served');
      expect(() => dashboardHandler({ root: dir })).toThrow(/notes\.txt: no content type/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
