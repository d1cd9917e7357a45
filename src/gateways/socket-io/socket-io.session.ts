import { randomUUID } from 'node:crypto';
import type { Socket } from 'socket.io';
import type { OutboundEvent, Session } from '../../core/session';

/** A socket.io connection as the core sees it: events go out under their 3.x names and shapes. */
export class SocketIoSession implements Session {
  readonly id = randomUUID();

  constructor(private readonly socket: Socket) {}

  send(event: OutboundEvent): void {
    this.socket.emit(event.legacyName, event.legacyPayload);
  }
}
