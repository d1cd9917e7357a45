import { Logger } from '@nestjs/common';
import {
  OnGatewayConnection,
  OnGatewayDisconnect,
  OnGatewayInit,
  WebSocketGateway,
} from '@nestjs/websockets';
import type { Server, Socket } from 'socket.io';
import { Environment } from '../../config/environment';
import { EventStats } from '../../core/events/event-stats';
import { EventProtocol, type EventAck, type EventAction } from '../event-protocol/event-protocol';
import type { TransportLoad } from '../transport-load';
import { SocketIoBroadcast, SocketIoSession, unsentBytesOf } from './socket-io.session';

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
  // Frame size, upgrade sharing and CORS come from GatewayIoAdapter.
})
export class SocketIoGateway implements OnGatewayInit, OnGatewayConnection, OnGatewayDisconnect {
  private readonly logger = new Logger(SocketIoGateway.name);
  private broadcast!: SocketIoBroadcast;
  private server: Server | undefined;
  /**
   * One listener per action for every socket: socket.io calls it with the socket as `this`.
   * `@SubscribeMessage` would bind a handler, a closure and its context per socket and action,
   * a tenth of what an idle connection costs.
   */
  private readonly onSubscribe = socketListener(
    (socket, body) => this.handle(socket, 'subscribe', body),
    (error) => this.logger.error(`subscribe failed: ${String(error)}`),
  );
  private readonly onUnsubscribe = socketListener(
    (socket, body) => this.handle(socket, 'unsubscribe', body),
    (error) => this.logger.error(`unsubscribe failed: ${String(error)}`),
  );

  constructor(
    private readonly protocol: EventProtocol,
    private readonly env: Environment,
    private readonly stats: EventStats,
  ) {}

  afterInit(server: Server): void {
    this.server = server;
    this.broadcast = new SocketIoBroadcast(server, {
      maxOutboundBytes: this.env.MAX_OUTBOUND_BYTES,
      onSlowConsumer: (session) => {
        this.stats.slowConsumerDisconnects += 1;
        this.logger.warn(`session ${session.id}: dropped as a slow consumer`);
        // Idempotent: socket.io's disconnect normally released them already (handleDisconnect).
        this.protocol.disconnect(session);
      },
    });
  }

  /** Engine.IO connections of every version, and what waits in their buffers. */
  load(): TransportLoad {
    if (!this.server) return { connections: 0, outboundBytes: 0 };
    let outboundBytes = 0;
    for (const socket of this.server.of('/').sockets.values())
      outboundBytes += unsentBytesOf(socket);
    return { connections: this.server.engine.clientsCount, outboundBytes };
  }

  handleConnection(socket: Socket): void {
    (socket.data as SessionData).session = new SocketIoSession(socket, this.broadcast);
    socket.on('subscribe', this.onSubscribe);
    socket.on('unsubscribe', this.onUnsubscribe);
  }

  handleDisconnect(socket: Socket): void {
    const session = (socket.data as SessionData).session;
    if (session) this.protocol.disconnect(session);
  }

  private async handle(socket: Socket, action: EventAction, body: unknown): Promise<EventAck> {
    const data = socket.data as SessionData;
    data.session ??= new SocketIoSession(socket, this.broadcast);
    const { ack, failure } = await this.protocol.handle(data.session, action, body);
    if (failure) socket.emit(failure.event, failure.payload);
    return ack;
  }
}

/**
 * A listener shared by every socket, which socket.io calls with the socket as `this`: the
 * payload first, the client's acknowledgement callback last when it passed one.
 */
function socketListener(
  handle: (socket: Socket, body: unknown) => Promise<EventAck>,
  failed: (error: unknown) => void,
): (this: Socket, ...args: unknown[]) => void {
  return function (this: Socket, ...args: unknown[]): void {
    const last = args[args.length - 1];
    const ack = typeof last === 'function' ? (last as (response: EventAck) => void) : undefined;
    const body = ack && args.length === 1 ? undefined : args[0];
    handle(this, body).then((response) => ack?.(response), failed);
  };
}
