import { randomUUID } from 'node:crypto';
import type { WebSocket } from 'ws';
import type { KazooMessage } from '../../core/families/event-family';
import type { OutboundEvent, Session } from '../../core/session';
import { TokenBucket } from '../../core/limits/token-bucket';

/** Kazoo 4.x's event frame (spec §3.5, fixtures 03, 06, 09, 12). */
export interface KazooEventFrame {
  action: 'event';
  subscribed_key: string;
  subscription_key: string;
  name: string;
  routing_key: string;
  data: KazooMessage;
}

/** A plain-WebSocket connection speaking Kazoo 4.x's protocol. */
export class WsSession implements Session {
  readonly id = randomUUID();
  /** The token the connection authenticated with; later frames may leave theirs out. */
  token: string | undefined;
  /** Set by a pong; a connection that misses one heartbeat is dropped. */
  alive = true;

  constructor(
    private readonly socket: WebSocket,
    readonly requests: TokenBucket,
  ) {}

  send(event: OutboundEvent): void {
    const [first] = event.matched;
    const frame: KazooEventFrame = {
      action: 'event',
      subscribed_key: first.binding.binding,
      subscription_key: first.subscriptionKey,
      name: event.name,
      routing_key: event.routingKey,
      data: event.kazooData(),
    };
    this.write(frame);
  }

  write(frame: object): void {
    if (this.socket.readyState === this.socket.OPEN) this.socket.send(JSON.stringify(frame));
  }
}
