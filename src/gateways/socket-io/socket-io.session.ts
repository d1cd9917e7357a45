import { randomUUID } from 'node:crypto';
import type { Server, Socket } from 'socket.io';
import type { OutboundEvent, Session, SessionGroup } from '../../core/session';

/**
 * The socket.io sessions of one server. One event to many sockets is one broadcast to their
 * own rooms, which socket.io encodes once rather than once per socket.
 */
export class SocketIoBroadcast implements SessionGroup {
  constructor(private readonly server: Server) {}

  sendToAll(sessions: readonly Session[], event: Omit<OutboundEvent, 'matched'>): void {
    const rooms = sessions.map((session) => (session as SocketIoSession).socketId);
    this.server.to(rooms).emit(event.legacyName, event.legacyPayload);
  }
}

/** A socket.io connection as the core sees it: events go out under their 3.x names and shapes. */
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

  send(event: OutboundEvent): void {
    this.socket.emit(event.legacyName, event.legacyPayload);
  }
}
