/** Protocol names as `/metrics` labels them. */
export type TransportProtocol = 'socket.io' | 'socket.io-0.9' | 'kazoo-ws';

/** What one transport holds right now, read when `/metrics` is scraped. */
export interface TransportLoad {
  /** Open connections (socket.io 0.9: handshaken sessions). */
  readonly connections: number;
  /** Bytes written to its connections that have not gone out yet. */
  readonly outboundBytes: number;
}
