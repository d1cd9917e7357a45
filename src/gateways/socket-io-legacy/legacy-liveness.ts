/** How a socket.io 0.9 session is carried, if it has a transport yet. */
export type LegacyTransport = 'websocket' | 'xhr-polling';

export interface SilenceLimits {
  /** `LEGACY_TIMEOUT_S` in ms: how long a polling client may stay silent. */
  readonly timeoutMs: number;
  /** `LEGACY_CLOSE_TIMEOUT_S` in ms: how long a handshaken session may wait for a transport. */
  readonly closeTimeoutMs: number;
}

/**
 * Whether the client's silence ends its session. A polling client is only known to be there by
 * what it sends, so it must heartbeat. A WebSocket session lives as long as its socket, as in
 * Kazoo 3.x: Kazoo-Popup never heartbeats, and a dead socket is found by WebSocket pings instead.
 */
export function silenceEndsSession(
  transport: LegacyTransport | undefined,
  silentMs: number,
  limits: SilenceLimits,
): boolean {
  switch (transport) {
    case undefined:
      return silentMs > limits.closeTimeoutMs;
    case 'xhr-polling':
      return silentMs > limits.timeoutMs;
    case 'websocket':
      return false;
  }
}
