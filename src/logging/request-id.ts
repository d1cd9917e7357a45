import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

export const REQUEST_ID_HEADER = 'X-Request-Id';

/** What a request id sent by a client (or a proxy) may look like to be kept: no spaces, no markup. */
const SAFE_REQUEST_ID = /^[\w-]{1,64}$/;

/** The client's `X-Request-Id` when it is a safe token, else a fresh random one. */
export function acceptRequestId(header: string | string[] | undefined): string {
  const offered = Array.isArray(header) ? header[0] : header;
  return offered !== undefined && SAFE_REQUEST_ID.test(offered) ? offered : randomUUID();
}

/** A request as this middleware leaves it: pino-http reuses `id` instead of making its own. */
export type IdentifiedRequest = IncomingMessage & { id?: unknown };

/**
 * Express middleware giving every HTTP request an id (`X-Request-Id` in, or a new one) and
 * echoing it in the answer, so a client or a proxy can quote it against the logs.
 */
export function requestIds(
  request: IdentifiedRequest,
  response: ServerResponse,
  next: () => void,
): void {
  const id = acceptRequestId(request.headers['x-request-id']);
  request.id = id;
  response.setHeader(REQUEST_ID_HEADER, id);
  next();
}
