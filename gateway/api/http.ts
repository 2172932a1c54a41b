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

export function sendError(
  response: ServerResponse,
  status: number,
  error: ErrorBody,
  headers?: Readonly<Record<string, string>>,
): void {
  sendJson(response, status, { error }, headers);
}
