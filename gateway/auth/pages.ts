/**
 * The few HTML pages of sign-in (the demo provider's login form, its sign-out question, and the
 * errors a browser lands on), in one plain template: a heading, real labels on every field,
 * keyboard order as written, a visible focus ring, system fonts, and text and buttons above the
 * WCAG AA contrast ratio (#1b1b1b on white, white on #0b4f8a: both above 7:1).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendError } from '../api/http.js';

const STYLE = `
body{font-family:system-ui,sans-serif;color:#1b1b1b;background:#fff;margin:0;line-height:1.5}
main{max-width:26rem;margin:3rem auto;padding:0 1rem}
h1{font-size:1.5rem}
label{display:block;font-weight:600;margin-top:1rem}
input{display:block;width:100%;box-sizing:border-box;font:inherit;padding:.5rem;border:2px solid #555;border-radius:4px}
button{font:inherit;font-weight:600;margin-top:1.25rem;padding:.6rem 1.2rem;color:#fff;background:#0b4f8a;border:2px solid #0b4f8a;border-radius:4px;cursor:pointer}
button.secondary{color:#0b4f8a;background:#fff}
:focus-visible{outline:3px solid #b35c00;outline-offset:2px}
.alert{border-left:6px solid #a30000;background:#fdeaea;padding:.5rem .75rem}
`;

const ESCAPES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Text made safe inside HTML elements and quoted attributes. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => ESCAPES[char] ?? char);
}

/** A whole page; `body` is HTML, so whatever it holds from outside must be escaped first. */
export function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} - EIP park</title>
<style>${STYLE}</style>
</head>
<body>
<main>
<h1>${escapeHtml(title)}</h1>
${body}
</main>
</body>
</html>
`;
}

/** A paragraph that screen readers announce at once. */
export function alert(text: string): string {
  return `<p class="alert" role="alert">${escapeHtml(text)}</p>`;
}

export function sendPage(response: ServerResponse, status: number, html: string): void {
  response.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'content-length': Buffer.byteLength(html),
    'cache-control': 'no-store',
    // Our pages run no script and are never framed (clickjacking on the login form).
    'content-security-policy':
      "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
  });
  response.end(html);
}

/** Whether the caller is a browser navigating (a page answers) rather than a script (JSON). */
export function wantsPage(request: IncomingMessage): boolean {
  return request.headers.accept?.includes('text/html') ?? false;
}

/** A refusal as a page for a browser, or as the API's JSON error for a script. */
export function refuse(
  request: IncomingMessage,
  response: ServerResponse,
  status: number,
  error: { readonly code: string; readonly title: string; readonly message: string },
): void {
  if (wantsPage(request)) {
    const back = '<p><a href="/auth/login">Sign in again</a></p>';
    sendPage(response, status, page(error.title, `${alert(error.message)}\n${back}`));
  } else {
    sendError(response, status, { code: error.code, message: error.message });
  }
}
