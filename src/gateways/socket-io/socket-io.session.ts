import type { Server, Socket } from 'socket.io';
import type { EventMatch, OutboundEvent, Session, SessionGroup } from '../../core/session';

/**
 * The socket.io sessions of one server. One event to many sockets is one broadcast to their
 * own rooms, which socket.io encodes once rather than once per socket.
 */
export class SocketIoBroadcast implements SessionGroup {
  private readonly rooms = new WeakMap<readonly Session[], string[]>();

  constructor(private readonly server: Server) {}

  sendToAll(sessions: readonly Session[], event: OutboundEvent): void {
    if (sessions.length === 1) {
      (sessions[0] as SocketIoSession).send([{ event }]);
      return;
    }
    this.server.to(this.roomsOf(sessions)).emit(event.legacyName, event.legacyPayload);
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
 * A socket.io connection as the core sees it: a delivery goes out once, however many of the
 * socket's bindings match, under its 3.x name and shape (that of the first match).
 */
export class SocketIoSession implements Session {
  constructor(
    private readonly socket: Socket,
    readonly group: SocketIoBroadcast,
  ) {}

  /** socket.io's own id: random and unguessable, and the name of the socket's own room. */
  get id(): string {
    return this.socket.id;
  }

  /** Every socket is in a room named after its id. */
  get socketId(): string {
    return this.socket.id;
  }

  send([{ event }]: readonly Pick<EventMatch, 'event'>[]): void {
    this.socket.emit(event.legacyName, event.legacyPayload);
  }
}
