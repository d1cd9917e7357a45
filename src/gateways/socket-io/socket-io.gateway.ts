import {
  ConnectedSocket,
  MessageBody,
  OnGatewayConnection,
  OnGatewayDisconnect,
  OnGatewayInit,
  SubscribeMessage,
  WebSocketGateway,
} from '@nestjs/websockets';
import type { Server, Socket } from 'socket.io';
import { EventProtocol, type EventAck, type EventAction } from '../event-protocol/event-protocol';
import { SocketIoBroadcast, SocketIoSession } from './socket-io.session';

interface SessionData {
  session?: SocketIoSession;
}

/**
 * Kazoo 3.x's event protocol for socket.io 2.x–4.x clients (Engine.IO 3 and 4). It only
 * carries frames: payloads to `EventProtocol`, outcomes back as acks and events.
 */
@WebSocketGateway({
  path: '/socket.io/',
  allowEIO3: true,
  serveClient: false,
  cors: { origin: true, credentials: true },
  // Frame size and upgrade sharing come from GatewayIoAdapter.
})
export class SocketIoGateway implements OnGatewayInit, OnGatewayConnection, OnGatewayDisconnect {
  private broadcast!: SocketIoBroadcast;

  constructor(private readonly protocol: EventProtocol) {}

  afterInit(server: Server): void {
    this.broadcast = new SocketIoBroadcast(server);
  }

  handleConnection(socket: Socket): void {
    (socket.data as SessionData).session = new SocketIoSession(socket, this.broadcast);
  }

  handleDisconnect(socket: Socket): void {
    const session = (socket.data as SessionData).session;
    if (session) this.protocol.disconnect(session);
  }

  @SubscribeMessage('subscribe')
  onSubscribe(@ConnectedSocket() socket: Socket, @MessageBody() body: unknown): Promise<EventAck> {
    return this.handle(socket, 'subscribe', body);
  }

  @SubscribeMessage('unsubscribe')
  onUnsubscribe(
    @ConnectedSocket() socket: Socket,
    @MessageBody() body: unknown,
  ): Promise<EventAck> {
    return this.handle(socket, 'unsubscribe', body);
  }

  private async handle(socket: Socket, action: EventAction, body: unknown): Promise<EventAck> {
    const data = socket.data as SessionData;
    data.session ??= new SocketIoSession(socket, this.broadcast);
    const { ack, failure } = await this.protocol.handle(data.session, action, body);
    if (failure) socket.emit(failure.event, failure.payload);
    return ack;
  }
}
