import { randomUUID } from 'node:crypto';
import type { WebSocket } from 'ws';
import type { GatewayError } from '../../core/errors';
import type { KazooMessage } from '../../core/families/event-family';
import type {
  EventMatch,
  OutboundEvent,
  Session,
  SessionOrigin,
  Subscription,
} from '../../core/session';
import { TokenBucket } from '../../core/limits/token-bucket';
import { LiveHold } from '../../core/replay/live-hold';
import type { DeadlineWatch } from '../admission/auth-deadline';
import { INTERNAL_ERROR_CLOSE_CODE, INTERNAL_ERROR_REASON } from '../connection-guard';
import {
  SLOW_CONSUMER_CLOSE_CODE,
  SLOW_CONSUMER_REASON,
  terminateUnlessDraining,
  type OutboundLimit as SlowConsumerLimit,
} from '../slow-consumer';

/** The slow-consumer cap, as this transport's gateway applies it. */
export type OutboundLimit = SlowConsumerLimit<WsSession>;

/** Kazoo 4.x's event frame (spec §3.5, fixtures 03, 06, 09, 12). */
export interface KazooEventFrame {
  action: 'event';
  subscribed_key: string;
  subscription_key: string;
  name: string;
  /** Where the event sits in the replay log (`REPLAY_WINDOW_S` > 0); Blackhole's extension. */
  position?: string;
  routing_key: string;
  data: KazooMessage;
}

/**
 * Sent unasked when live subscriptions lost their authorization. Kazoo 4.x has no such frame:
 * `action: "error"` is one monster-ui ignores (it reads only `reply` and `event`), and `data`
 * has the shape of an error reply's, plus what was dropped.
 */
export interface AuthorizationLostFrame {
  action: 'error';
  status: 'error';
  data: {
    errors: string[];
    code: string;
    temporary: boolean;
    account_id: string;
    unsubscribed: readonly string[];
  };
}

/** A plain-WebSocket connection speaking Kazoo 4.x's protocol. */
export class WsSession implements Session {
  readonly id = randomUUID();
  /** A random id that grants nothing: logs may name the connection by it. */
  readonly logName = this.id;
  /** The token the connection authenticated with; later frames may leave theirs out. */
  token: string | undefined;
  /** Cleared once a subscribe succeeds (`authorized`); until then the connection is on notice. */
  deadline: DeadlineWatch | undefined;
  /** Set by a pong; a connection that misses one heartbeat is dropped. */
  alive = true;
  /** Set once the connection is dropped as a slow consumer: nothing more is queued for it. */
  private slow = false;
  /** Made by the first resume: connections that never resume carry none. */
  private hold: LiveHold | undefined;

  constructor(
    private readonly socket: WebSocket,
    readonly requests: TokenBucket,
    private readonly limit: OutboundLimit,
    readonly clientAddress?: string,
    readonly origin?: SessionOrigin,
  ) {}

  /**
   * As Kazoo 4.3: one frame per matching subscription, each with that subscription's keys, since
   * monster-ui dispatches frames by `subscribed_key` alone.
   */
  get liveHold(): LiveHold {
    return (this.hold ??= new LiveHold((matches) => this.emit(matches)));
  }

  send(matches: readonly EventMatch[]): void {
    if (this.hold?.intercept(matches)) return;
    this.emit(matches);
  }

  private emit(matches: readonly EventMatch[]): void {
    if (this.slow || this.socket.readyState !== this.socket.OPEN) return;
    // Bytes, not a string: `ws` would encode a string again for every socket.
    for (const match of matches) this.socket.send(encodeEventFrame(match), { binary: false });
    this.checkOutbound();
  }

  authorized(): void {
    this.deadline?.clear();
  }

  authorizationLost(accountId: string, bindings: readonly string[], error: GatewayError): void {
    const frame: AuthorizationLostFrame = {
      action: 'error',
      status: 'error',
      data: {
        errors: [error.message],
        code: error.code,
        temporary: error.temporary,
        account_id: accountId,
        unsubscribed: bindings,
      },
    };
    this.write(frame);
  }

  write(frame: object): void {
    if (this.slow || this.socket.readyState !== this.socket.OPEN) return;
    this.socket.send(JSON.stringify(frame));
    this.checkOutbound();
  }

  /** Called by the gateway's guard once a frame handler failed unexpectedly. */
  closeAfterInternalError(): void {
    // A closing socket takes no more writes (`readyState` is no longer OPEN).
    this.socket.close(INTERNAL_ERROR_CLOSE_CODE, INTERNAL_ERROR_REASON);
  }

  /**
   * `bufferedAmount` is what `ws` and the TCP socket hold in user space: it grows only once the
   * kernel's buffers are full, that is when the peer has stopped reading.
   */
  private checkOutbound(): void {
    if (this.socket.bufferedAmount <= this.limit.maxOutboundBytes) return;
    this.slow = true;
    // Not within the delivery: dropping releases subscriptions the core may be iterating.
    queueMicrotask(() => this.dropAsSlowConsumer());
  }

  private dropAsSlowConsumer(): void {
    const socket = this.socket;
    socket.close(SLOW_CONSUMER_CLOSE_CODE, SLOW_CONSUMER_REASON);
    terminateUnlessDraining({
      unsent: () => socket.bufferedAmount,
      closed: () => socket.readyState === socket.CLOSED,
      terminate: () => socket.terminate(),
    });
    this.limit.onSlowConsumer(this);
  }
}

/**
 * Sessions watching with the same binding and account get the same frame; it is encoded once
 * per event (keyed by the event object, which lives as long as the delivery).
 */
const encodedFrames = new WeakMap<OutboundEvent, Map<string, Buffer>>();
/** A subscription's frame cache key, built once rather than for every event. */
const frameKeys = new WeakMap<Subscription, string>();

function encodeEventFrame({ subscription, event }: EventMatch): Buffer {
  let cacheKey = frameKeys.get(subscription);
  if (cacheKey === undefined) {
    cacheKey = `${subscription.binding.binding}\u0000${subscription.subscriptionKey}`;
    frameKeys.set(subscription, cacheKey);
  }
  let frames = encodedFrames.get(event);
  if (!frames) {
    frames = new Map();
    encodedFrames.set(event, frames);
  }
  let encoded = frames.get(cacheKey);
  if (encoded === undefined) {
    const frame: KazooEventFrame = {
      action: 'event',
      subscribed_key: subscription.binding.binding,
      subscription_key: subscription.subscriptionKey,
      name: event.name,
      routing_key: event.routingKey,
      data: event.kazooData(),
      ...(event.position === undefined ? {} : { position: event.position }),
    };
    encoded = Buffer.from(JSON.stringify(frame));
    frames.set(cacheKey, encoded);
  }
  return encoded;
}
