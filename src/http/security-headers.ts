import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * What the console page needs and nothing more: its own scripts, styles and images (the
 * socket.io clients included, from `/vendor/`), and connections back to the host that served
 * it (`'self'` covers ws:// and wss:// there). No inline code, no eval, no other host.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/** Headers every HTTP answer of Express (pages, static files, `/health`, `/v2/websockets`) carries. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'Content-Security-Policy': CONTENT_SECURITY_POLICY,
  'X-Content-Type-Options': 'nosniff',
  // frame-ancestors for browsers that predate it.
  'X-Frame-Options': 'DENY',
  // The console's address may carry a token (`?auth_token=`, as the demo prints it).
  'Referrer-Policy': 'no-referrer',
};

/** Express middleware setting `SECURITY_HEADERS`. */
export function securityHeaders(
  _request: IncomingMessage,
  response: ServerResponse,
  next: () => void,
): void {
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) response.setHeader(name, value);
  next();
}
