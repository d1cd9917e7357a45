import type { Server, Socket } from 'socket.io';
import { secretTag } from '../../core/secret-tag';
import type { GatewayError } from '../../core/errors';
import type {
  EventMatch,
  OutboundEvent,
  Session,
  SessionGroup,
  SessionOrigin,
} from '../../core/session';
import { LiveHold } from '../../core/replay/live-hold';
import { authorizationLostEvent } from '../event-protocol/event-protocol';
import type { TokenBucket } from '../../core/limits/token-bucket';
import type { DeadlineWatch } from '../admission/auth-deadline';
import {
  SLOW_CONSUMER_ERROR,
  WriteBufferGauge,
  packetSize,
  terminateUnlessDraining,
  type BufferedPacket,
  type OutboundLimit as SlowConsumerLimit,
} from '../slow-consumer';

/**
 * The parts of engine.io's connection that tell how much waits for a client. They are not in
 * engine.io's types (`writeBuffer` is private); engine.io 6 has kept them since 4.0.
 */
interface EngineConnection {
  /** Packets waiting for the transport: it is busy (websocket) or no poll is pending (polling). */
  readonly writeBuffer: readonly BufferedPacket[];
  readonly readyState: string;
  readonly transport: {
    readonly name: string;
    /** The `ws` socket of the websocket transport. */
    readonly socket?: { readonly bufferedAmount: number; terminate(): void };
  };
  close(discard?: boolean): void;
}

/** Bytes waiting for a socket.io client: engine.io's write buffer plus the `ws` socket's. */
export function unsentBytesOf(socket: Socket): number {
  const conn = socket.conn as unknown as EngineConnection;
  let unsent = conn.transport.socket?.bufferedAmount ?? 0;
  for (const packet of conn.writeBuffer) unsent += packetSize(packet);
  return unsent;
}

/** The slow-consumer cap, as this transport's gateway applies it. */
export type OutboundLimit = SlowConsumerLimit<SocketIoSession>;

/**
 * The socket.io sessions of one server. One event to many sockets is one broadcast to their
 * own rooms, which socket.io encodes once rather than once per socket.
 */
export class SocketIoBroadcast implements SessionGroup {
  private readonly rooms = new WeakMap<readonly Session[], string[]>();
  /** Sessions whose live events go through their replay hold, not a broadcast. */
  private holding = 0;

  constructor(
    private readonly server: Server,
    readonly limit: OutboundLimit,
  ) {}

  sendToAll(sessions: readonly Session[], event: OutboundEvent): void {
    if (sessions.length === 1 || this.holding > 0) {
      for (const session of sessions) (session as SocketIoSession).send([{ event }]);
      return;
    }
    const rooms = this.server.to(this.roomsOf(sessions));
    if (event.position === undefined) rooms.emit(event.legacyName, event.legacyPayload);
    else rooms.emit(event.legacyName, event.legacyPayload, { position: event.position });
    // One look at each socket's buffer, allocating nothing for sockets that keep up.
    for (const session of sessions) (session as SocketIoSession).checkOutbound();
  }

  /** A session's replay hold started or stopped intercepting its live events. */
  holdChanged(active: boolean): void {
    this.holding += active ? 1 : -1;
  }

  /**
   * The core hands over the same list for as long as the matching subscriptions do not change,
   * so the room list is built once per list rather than once per event.
   */
  private roomsOf(sessions: readonly Session[]): string[] {
    let rooms = this.rooms.get(sessions);
    if (!rooms) {
      rooms = sessions.map((session) => (session as SocketIoSession).socketId);
      this.rooms.set(sessions, rooms);
    }
    return rooms;
  }
}

/**
 * How logs name a socket. socket.io's id grants nothing for Engine.IO 4 clients; for Engine.IO 3
 * ones (socket.io 2.x) it is engine.io's session id, with which one can poll and post on the
 * connection, so those are named by a tag of it.
 */
export function socketLogName(socket: Socket): string {
  return socket.conn.protocol === 3 ? secretTag(socket.id) : socket.id;
}

/**
 * A socket.io connection as the core sees it: a delivery goes out once, however many of the
 * socket's bindings match, under its 3.x name and shape (that of the first match).
 */
export class SocketIoSession implements Session {
  /** Created the first time packets wait, so sockets that keep up never carry one. */
  private gauge: WriteBufferGauge | undefined;
  private slow = false;
  /** Made by the first resume: sockets that never resume carry none. */
  private hold: LiveHold<Pick<EventMatch, 'event'>> | undefined;

  /** Cleared once a subscribe succeeds (`authorized`); until then the connection is on notice. */
  deadline: DeadlineWatch | undefined;

  constructor(
    private readonly socket: Socket,
    readonly group: SocketIoBroadcast,
    /** Subscribe and unsubscribe requests the connection may still make (`REQUEST_RATE_*`). */
    readonly requests: TokenBucket,
    readonly clientAddress?: string,
  ) {}

  /** socket.io's own id: random and unguessable, and the name of the socket's own room. */
  get id(): string {
    return this.socket.id;
  }

  get logName(): string {
    return socketLogName(this.socket);
  }

  get origin(): SessionOrigin {
    return {
      protocol: 'socket.io',
      // The client's address, from X-Forwarded-For when a trusted proxy sent it.
      source: this.clientAddress ?? this.socket.handshake.address,
      connectedAt: this.socket.handshake.issued,
    };
  }

  /** Every socket is in a room named after its id. */
  get socketId(): string {
    return this.socket.id;
  }

  get liveHold(): LiveHold<Pick<EventMatch, 'event'>> {
    return (this.hold ??= new LiveHold(
      (matches) => this.emit(matches),
      (active) => this.group.holdChanged(active),
    ));
  }

  send(matches: readonly Pick<EventMatch, 'event'>[]): void {
    if (this.hold?.intercept(matches)) return;
    this.emit(matches);
  }

  /** The event's position, when it has one, is a second argument: Kazoo's payload stays as is. */
  private emit([{ event }]: readonly Pick<EventMatch, 'event'>[]): void {
    if (this.slow) return;
    if (event.position === undefined) this.socket.emit(event.legacyName, event.legacyPayload);
    else this.socket.emit(event.legacyName, event.legacyPayload, { position: event.position });
    this.checkOutbound();
  }

  authorized(): void {
    this.deadline?.clear();
  }

  authorizationLost(accountId: string, bindings: readonly string[], error: GatewayError): void {
    this.socket.emit('auth_failure', authorizationLostEvent(accountId, bindings, error));
  }

  /**
   * Unsent bytes: the packets engine.io holds for the transport, plus what the websocket
   * transport's `ws` socket holds (at most the batch it is writing). A polling answer already
   * written is not counted; it is one batch, itself under the limit.
   */
  checkOutbound(): void {
    if (this.slow) return;
    const conn = this.socket.conn as unknown as EngineConnection;
    const buffer = conn.writeBuffer;
    let unsent = conn.transport.socket?.bufferedAmount ?? 0;
    if (buffer.length > 0 || this.gauge) {
      this.gauge ??= new WriteBufferGauge();
      unsent += this.gauge.measure(buffer);
    }
    if (unsent <= this.group.limit.maxOutboundBytes) return;
    this.slow = true;
    // Not within the delivery: disconnecting releases subscriptions the core may be iterating.
    queueMicrotask(() => this.dropAsSlowConsumer(conn));
  }

  private dropAsSlowConsumer(conn: EngineConnection): void {
    // Best effort: it waits behind everything the client has not read.
    this.socket.emit('error', SLOW_CONSUMER_ERROR);
    this.socket.disconnect(true);
    this.group.limit.onSlowConsumer(this);
    // engine.io closes the transport only once its buffer has gone out, which never happens
    // for a client that does not read.
    const gauge = new WriteBufferGauge();
    terminateUnlessDraining({
      unsent: () => (conn.transport.socket?.bufferedAmount ?? 0) + gauge.measure(conn.writeBuffer),
      closed: () => conn.readyState === 'closed',
      terminate: () => {
        const ws = conn.transport.socket;
        if (ws) ws.terminate();
        else conn.close(true);
      },
    });
  }
}
