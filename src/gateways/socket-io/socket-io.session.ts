import { randomUUID } from 'node:crypto';
import type { Server, Socket } from 'socket.io';
import type { EventMatch, OutboundEvent, Session, SessionGroup } from '../../core/session';

/**
 * The socket.io sessions of one server. One event to many sockets is one broadcast to their
 * own rooms, which socket.io encodes once rather than once per socket.
 */
export class SocketIoBroadcast implements SessionGroup {
  constructor(private readonly server: Server) {}

  sendToAll(sessions: readonly Session[], event: OutboundEvent): void {
    const rooms = sessions.map((session) => (session as SocketIoSession).socketId);
    this.server.to(rooms).emit(event.legacyName, event.legacyPayload);
  }
}

/**
 * A socket.io connection as the core sees it: a delivery goes out once, however many of the
 * socket's bindings match, under its 3.x name and shape (that of the first match).
 */
export class SocketIoSession implements Session {
  readonly id = randomUUID();

  constructor(
    private readonly socket: Socket,
    readonly group: SocketIoBroadcast,
  ) {}

  /** Every socket is in a room named after its id. */
  get socketId(): string {
    return this.socket.id;
  }

  send([{ event }]: readonly EventMatch[]): void {
    this.socket.emit(event.legacyName, event.legacyPayload);
  }
}
