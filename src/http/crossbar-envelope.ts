import { randomBytes } from 'node:crypto';
import { BLACKHOLE_VERSION } from './version';

/** The caller's `X-Request-ID` when it is a plain id, else a fresh one (as Crossbar does). */
export function requestIdOf(header: string | undefined): string {
  return header && /^[\w-]{1,64}$/.test(header) ? header : randomBytes(16).toString('hex');
}

/** Crossbar's success envelope (fixture 10). */
export interface CrossbarSuccess<T> {
  auth_token: '';
  data: T;
  node: string;
  request_id: string;
  status: 'success';
  timestamp: string;
  version: string;
}

/** Crossbar's error envelope (fixture 10: `GET /v2/token_auth invalid -> HTTP 401`). */
export interface CrossbarError {
  auth_token: '';
  data: { message: string };
  error: string;
  message: string;
  node: string;
  request_id: string;
  status: 'error';
  timestamp: string;
  version: string;
}

/** Never echoes the caller's token: `auth_token` is always empty. */
export function crossbarSuccess<T>(data: T, node: string, requestId: string): CrossbarSuccess<T> {
  return {
    auth_token: '',
    data,
    node,
    request_id: requestId,
    status: 'success',
    timestamp: new Date().toISOString(),
    version: BLACKHOLE_VERSION,
  };
}

export function crossbarError(
  httpStatus: number,
  message: string,
  node: string,
  requestId: string,
): CrossbarError {
  return {
    auth_token: '',
    data: { message: message.replace(/_/g, ' ') },
    error: String(httpStatus),
    message,
    node,
    request_id: requestId,
    status: 'error',
    timestamp: new Date().toISOString(),
    version: BLACKHOLE_VERSION,
  };
}
