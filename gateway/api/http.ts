/**
 * The JSON answers of the gateway's HTTP server, shared by the API routes and the sign-in routes
 * (gateway/auth) so an error reads the same wherever it comes from:
 * `{ "error": { "code", "message", "parameter"? } }`.
 */
import type { ServerResponse } from 'node:http';

export interface ErrorBody {
  readonly code: string;
  readonly message: string;
  readonly parameter?: string;
}

export function sendJson(
  response: ServerResponse,
  status: number,
  body: unknown,
  headers: Readonly<Record<string, string>> = {},
): void {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    // The model changes with every block, and answers differ per signed-in caller: a cached
    // answer would be stale or someone else's.
    'cache-control': 'no-store',
    ...headers,
  });
  response.end(text);
}

/**
 * 401 with the challenge RFC 6750 asks for: a script learns it may send an API token. It is not
 * Basic, so a browser shows no login dialog of its own.
 */
export function sendUnauthorized(response: ServerResponse, message: string): void {
  sendError(
    response,
    401,
    { code: 'UNAUTHORIZED', message },
    { 'www-authenticate': 'Bearer realm="eip-gateway"' },
  );
}

export function sendError(
  response: ServerResponse,
  status: number,
  error: ErrorBody,
  headers?: Readonly<Record<string, string>>,
): void {
  sendJson(response, status, { error }, headers);
}
