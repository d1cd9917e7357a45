/** RFC 6455's close code for an endpoint going away: a server that is stopping. */
export const GOING_AWAY = { code: 1001, reason: 'going away' } as const;

/** What a transport does when the node stops: tell its clients, then report how many remain. */
export interface Departing {
  /**
   * Tells every client the node is going and starts closing its connection, in a way that lets
   * the client reconnect by itself (to another node, behind a balancer).
   */
  sayGoodbye(): void;
  /** Connections still open. */
  openConnections(): number;
}
