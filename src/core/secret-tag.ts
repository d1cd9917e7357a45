import { createHash } from 'node:crypto';

/**
 * A short, non-reversible tag for a secret (a token, a socket.io 0.9 session id), so log lines
 * about one secret can be correlated without the logs ever being enough to use it.
 */
export function secretTag(secret: string): string {
  return createHash('sha256').update(secret).digest('base64url').slice(0, 8);
}
