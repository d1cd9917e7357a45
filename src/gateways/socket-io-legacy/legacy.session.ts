import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { WebSocket } from 'ws';
import type { GatewayError } from '../../core/errors';
import { TokenBucket } from '../../core/limits/token-bucket';
import type { EventMatch, Session, SessionOrigin } from '../../core/session';
import { authorizationLostEvent } from '../event-protocol/event-protocol';
import { GOING_AWAY } from '../shutdown/going-away';
import type { DeadlineWatch } from '../admission/auth-deadline';
import type { ConnectionTicket } from '../admission/connection-admission';
import type { LegacyTransport } from './legacy-liveness';
import { INTERNAL_ERROR_CLOSE_CODE, INTERNAL_ERROR_REASON } from '../connection-guard';
import {
  SLOW_CONSUMER_CLOSE_CODE,
  SLOW_CONSUMER_REASON,
  terminateUnlessDraining,
  type OutboundLimit as SlowConsumerLimit,
} from '../slow-consumer';
import { CONNECT, DISCONNECT, NOOP, encodePayload, eventPacket } from './legacy-packets';

/** Packets kept for a polling client that is not polling; past it the session is dropped. */
export const MAX_BUFFERED_PACKETS = 1000;

/** The slow-consumer cap, as this transport's gateway applies it. */
export type OutboundLimit = SlowConsumerLimit<LegacySession>;

/**
 * One socket.io 0.9 session: created by the handshake, then carried by a WebSocket or by
 * successive long-polling requests. Packets wait in a buffer while no transport is attached.
 */
export class LegacySession implements Session {
  /** Unguessable and free of ':', which 0.9 uses as its separator. */
  readonly id = randomBytes(15).toString('base64url');
  private socket: WebSocket | undefined;
  private poll: { response: ServerResponse; timer: NodeJS.Timeout } | undefined;
  private buffer: string[] = [];
  /** Characters in `buffer`: 0.9 packets are text, mostly ASCII JSON. */
  private bufferedBytes = 0;
  /** Set once the session is dropped as a slow consumer: nothing more is queued for it. */
  private slow = false;
  private connected = false;
  /** Set by each WebSocket ping, cleared by its pong. */
  private awaitingPong = false;
  private inbox: Promise<void> = Promise.resolve();
  /**
   * Last time the client sent a packet (a heartbeat at least every heartbeat interval) or
   * connected. As in socket.io 0.9, merely polling is not a sign of life.
   */
  lastSeen = Date.now();
  closed = false;

  /** Cleared once a subscribe succeeds (`authorized`); until then the session is on notice. */
  deadline: DeadlineWatch | undefined;

  constructor(
    private readonly onClose: (session: LegacySession) => void,
    private readonly limit: OutboundLimit,
    /** The session's place in the connection count, released when it ends. */
    readonly ticket?: ConnectionTicket,
    /** Subscribe and unsubscribe requests the session may still make (`REQUEST_RATE_*`). */
    readonly requests: TokenBucket = new TokenBucket(100, 10),
    readonly origin?: SessionOrigin,
  ) {}

  /** Packets waiting for a poll, or what the WebSocket has not sent yet. */
  get unsentBytes(): number {
    return this.bufferedBytes + (this.socket?.bufferedAmount ?? 0);
  }

  get clientAddress(): string | undefined {
    return this.ticket?.clientAddress;
  }

  get transport(): LegacyTransport | undefined {
    if (this.socket) return 'websocket';
    return this.connected ? 'xhr-polling' : undefined;
  }

  /** As Kazoo 3.x: a delivery goes out once, under the name of its first match. */
  send([{ event }]: readonly EventMatch[]): void {
    this.write(eventPacket(event.legacyName, event.legacyPayload));
  }

  authorized(): void {
    this.deadline?.clear();
  }

  authorizationLost(accountId: string, bindings: readonly string[], error: GatewayError): void {
    this.write(eventPacket('auth_failure', authorizationLostEvent(accountId, bindings, error)));
  }

  /** Sends a packet now if a transport is attached, or keeps it for the next poll. */
  write(packet: string): void {
    if (this.closed || this.slow) return;
    if (this.socket) {
      this.socket.send(packet);
      // What `ws` and the TCP socket hold once the kernel's buffers are full.
      if (this.socket.bufferedAmount > this.limit.maxOutboundBytes) this.becomeSlow();
      return;
    }
    this.buffer.push(packet);
    this.bufferedBytes += packet.length;
    if (this.bufferedBytes > this.limit.maxOutboundBytes) {
      this.becomeSlow();
      return;
    }
    if (this.buffer.length > MAX_BUFFERED_PACKETS) {
      // A polling client that stopped polling; Kazoo 4.x's unbounded mailboxes are W13.
      this.close();
      return;
    }
    this.flush();
  }

  /**
   * Runs `task` once every packet received before it has been handled. Kazoo-Popup sends its
   * three subscribes back to back the moment the socket opens; Kazoo 3.x's session process
   * handled them one after the other, and acks and errors come back in that order.
   */
  enqueue(task: () => Promise<void>): Promise<void> {
    const done = this.inbox.then(task);
    this.inbox = done.catch(() => undefined);
    return done;
  }

  attachWebSocket(socket: WebSocket): void {
    this.socket = socket;
    this.connected = true;
    this.lastSeen = Date.now();
    socket.on('pong', () => (this.awaitingPong = false));
    socket.send(CONNECT);
    this.bufferedBytes = 0;
    for (const packet of this.buffer.splice(0)) socket.send(packet);
  }

  /**
   * One WebSocket liveness check, every `WS_PING_INTERVAL_S`: a peer that has not answered the
   * previous ping is gone (a laptop closed, a NAT that forgot us), and its session ends with it.
   */
  checkWebSocket(): void {
    const socket = this.socket;
    if (!socket) return;
    if (this.awaitingPong) {
      this.terminate();
      return;
    }
    this.awaitingPong = true;
    socket.ping();
  }

  /**
   * A long-poll: answered at once when packets wait (or with `1::` on the first poll), else
   * held until a packet comes or `holdMs` passes, then answered with a noop.
   */
  attachPoll(response: ServerResponse, holdMs: number): void {
    if (this.poll) this.answerPoll([NOOP]);
    if (!this.connected) {
      this.connected = true;
      this.lastSeen = Date.now();
      this.buffer.unshift(CONNECT);
    }
    const timer = setTimeout(() => this.answerPoll([NOOP]), holdMs);
    timer.unref();
    this.poll = { response, timer };
    response.on('close', () => {
      if (this.poll?.response === response) {
        clearTimeout(this.poll.timer);
        this.poll = undefined;
      }
    });
    this.flush();
  }

  /**
   * Sends `packets` as the session's last words, then closes it: over the WebSocket, or as the
   * answer to a pending poll (a polling client not polling now never reads them).
   */
  closeWith(packets: readonly string[]): void {
    if (this.closed) return;
    if (this.socket) for (const packet of packets) this.socket.send(packet);
    else if (this.poll) this.answerPoll([...this.buffer.splice(0), ...packets]);
    this.close();
  }

  /** Ends the session without a closing handshake, which a dead peer would never complete. */
  terminate(): void {
    const socket = this.socket;
    this.socket = undefined;
    socket?.terminate();
    this.close();
  }

  /** Called by the server's guard once a packet handler failed unexpectedly: `0::`, then close. */
  closeAfterInternalError(): void {
    if (this.closed) return;
    const socket = this.socket;
    this.socket = undefined;
    if (socket) {
      socket.send(DISCONNECT);
      socket.close(INTERNAL_ERROR_CLOSE_CODE, INTERNAL_ERROR_REASON);
    } else {
      this.buffer = [];
      this.bufferedBytes = 0;
      if (this.poll) this.answerPoll([DISCONNECT]);
    }
    this.close();
  }

  /**
   * The node is stopping. The disconnect packet `0::` would tell a 0.9 client it was "booted",
   * after which it never reconnects; a transport that ends makes it reconnect instead: the
   * WebSocket closes with 1001 `going away`, a waiting poll gets a noop and the next one
   * `7:::1+0` (not handshaken, advice: reconnect).
   */
  goAway(): void {
    if (this.closed) return;
    this.socket?.close(GOING_AWAY.code, GOING_AWAY.reason);
    this.socket = undefined;
    this.close();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.poll) this.answerPoll([NOOP]);
    this.buffer = [];
    this.bufferedBytes = 0;
    this.socket?.close();
    this.socket = undefined;
    this.onClose(this);
  }

  private flush(): void {
    if (this.poll && this.buffer.length > 0) {
      this.bufferedBytes = 0;
      this.answerPoll(this.buffer.splice(0));
    }
  }

  private becomeSlow(): void {
    this.slow = true;
    // Not within the delivery: closing releases subscriptions the core may be iterating.
    queueMicrotask(() => this.dropAsSlowConsumer());
  }

  /**
   * `0::` and the close frame go out best effort: they wait behind everything the client has not
   * read, and a WebSocket peer that still does not read is cut.
   */
  private dropAsSlowConsumer(): void {
    if (this.closed) return;
    this.limit.onSlowConsumer(this);
    const socket = this.socket;
    this.socket = undefined;
    if (socket) {
      socket.send(DISCONNECT);
      socket.close(SLOW_CONSUMER_CLOSE_CODE, SLOW_CONSUMER_REASON);
      terminateUnlessDraining({
        unsent: () => socket.bufferedAmount,
        closed: () => socket.readyState === socket.CLOSED,
        terminate: () => socket.terminate(),
      });
    } else {
      this.buffer = [];
      this.bufferedBytes = 0;
      if (this.poll) this.answerPoll([DISCONNECT]);
    }
    this.close();
  }

  private answerPoll(packets: string[]): void {
    const poll = this.poll;
    if (!poll) return;
    this.poll = undefined;
    clearTimeout(poll.timer);
    const body = encodePayload(packets);
    poll.response.writeHead(200, { 'Content-Type': 'text/plain; charset=UTF-8' });
    poll.response.end(body);
  }
}
