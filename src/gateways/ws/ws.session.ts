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
    if (this.socket.readyState !== this.socket.OPEN) return;
    this.socket.send(encodeEventFrame(event));
  }

  write(frame: object): void {
    if (this.socket.readyState === this.socket.OPEN) this.socket.send(JSON.stringify(frame));
  }
}

/**
 * Sessions watching with the same binding and account get the same frame; it is encoded once
 * per event (keyed by the event's payload object, which lives as long as the delivery).
 */
const encodedFrames = new WeakMap<KazooMessage, Map<string, string>>();

function encodeEventFrame(event: OutboundEvent): string {
  const [first] = event.matched;
  const cacheKey = `${first.binding.binding}\u0000${first.subscriptionKey}`;
  let frames = encodedFrames.get(event.payload);
  if (!frames) {
    frames = new Map();
    encodedFrames.set(event.payload, frames);
  }
  let encoded = frames.get(cacheKey);
  if (encoded === undefined) {
    const frame: KazooEventFrame = {
      action: 'event',
      subscribed_key: first.binding.binding,
      subscription_key: first.subscriptionKey,
      name: event.name,
      routing_key: event.routingKey,
      data: event.kazooData(),
    };
    encoded = JSON.stringify(frame);
    frames.set(cacheKey, encoded);
  }
  return encoded;
}
