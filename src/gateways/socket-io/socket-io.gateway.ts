import { Logger } from '@nestjs/common';
import {
  OnGatewayConnection,
  OnGatewayDisconnect,
  OnGatewayInit,
  WebSocketGateway,
} from '@nestjs/websockets';
import type { Server, Socket } from 'socket.io';
import { Environment } from '../../config/environment';
import { AuthDeadlineError, RateLimitedError } from '../../core/errors';
import { EventStats } from '../../core/events/event-stats';
import { TokenBucket } from '../../core/limits/token-bucket';
import { AuthDeadlines } from '../admission/auth-deadline';
import { ConnectionAdmission } from '../admission/connection-admission';
import { EventProtocol, type EventAck, type EventAction } from '../event-protocol/event-protocol';
import { ConnectionGuard, INTERNAL_ERROR } from '../connection-guard';
import type { Departing } from '../shutdown/going-away';
import type { TransportLoad } from '../transport-load';
import {
  SocketIoBroadcast,
  SocketIoSession,
  socketLogName,
  unsentBytesOf,
} from './socket-io.session';
import { connectionLog } from '../../logging/log-record';

/** engine.io's open connections by id: public at run time, `protected` in its typings. */
interface EngineClients {
  readonly clients: Readonly<Record<string, { close(): void }>>;
}

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
export class SocketIoGateway
  implements OnGatewayInit, OnGatewayConnection, OnGatewayDisconnect, Departing
{
  private readonly logger = new Logger(SocketIoGateway.name);
  private broadcast!: SocketIoBroadcast;
  private server: Server | undefined;
  private readonly guard: ConnectionGuard<Socket>;
  /**
   * One listener per action for every socket: socket.io calls it with the socket as `this`.
   * `@SubscribeMessage` would bind a handler, a closure and its context per socket and action,
   * a tenth of what an idle connection costs.
   */
  private readonly onSubscribe: (this: Socket, ...args: unknown[]) => void;
  private readonly onUnsubscribe: (this: Socket, ...args: unknown[]) => void;
  private readonly onResume: (this: Socket, ...args: unknown[]) => void;

  constructor(
    private readonly protocol: EventProtocol,
    private readonly env: Environment,
    private readonly stats: EventStats,
    private readonly admission: ConnectionAdmission,
    private readonly deadlines: AuthDeadlines,
  ) {
    this.guard = socketIoGuard(stats, this.logger);
    this.onSubscribe = socketListener(this.guard, (socket, body) =>
      this.handle(socket, 'subscribe', body),
    );
    this.onUnsubscribe = socketListener(this.guard, (socket, body) =>
      this.handle(socket, 'unsubscribe', body),
    );
    this.onResume = socketListener(this.guard, (socket, body) =>
      this.handle(socket, 'resume', body),
    );
  }

  afterInit(server: Server): void {
    this.server = server;
    this.broadcast = new SocketIoBroadcast(server, {
      maxOutboundBytes: this.env.MAX_OUTBOUND_BYTES,
      onSlowConsumer: (session) => {
        this.stats.slowConsumerDisconnects += 1;
        this.logger.warn(connectionLog(session.logName, 'dropped as a slow consumer'));
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

  /**
   * Closes every Engine.IO connection so that clients see `disconnect` with `transport close` and
   * reconnect by themselves. A socket.io disconnect packet would read `io server disconnect` to
   * them, after which socket.io clients never reconnect on their own. Unlike `engine.close()`,
   * which discards the transport, an orderly close also reaches a long-polling client that is
   * between two polls: its next poll is answered with the close packet, where a discarded session
   * would answer it with an unknown session (`transport error` to the client).
   */
  sayGoodbye(): void {
    if (!this.server) return;
    const { clients } = this.server.engine as unknown as EngineClients;
    for (const connection of Object.values(clients)) connection.close();
  }

  openConnections(): number {
    return this.server?.engine.clientsCount ?? 0;
  }

  handleConnection(socket: Socket): void {
    const session = this.sessionOf(socket);
    this.logger.debug(
      connectionLog(session.logName, `connected (socket.io, EIO ${socket.conn.protocol})`),
    );
    session.deadline = this.deadlines.watch(() => {
      const { payload } = this.protocol.refusal(new AuthDeadlineError()).failure;
      socket.emit('error', payload);
      socket.disconnect(true);
    });
    socket.on('subscribe', this.onSubscribe);
    socket.on('unsubscribe', this.onUnsubscribe);
    socket.on('resume', this.onResume);
  }

  handleDisconnect(socket: Socket): void {
    const session = (socket.data as SessionData).session;
    if (!session) return;
    this.logger.debug(connectionLog(session.logName, 'disconnected'));
    session.deadline?.clear();
    this.protocol.disconnect(session);
  }

  private async handle(
    socket: Socket,
    action: EventAction | 'resume',
    body: unknown,
  ): Promise<EventAck> {
    const session = this.sessionOf(socket);
    const { ack, failure } = !session.requests.take()
      ? this.protocol.refusal(new RateLimitedError('too many requests; retry later'))
      : action === 'resume'
        ? await this.protocol.resume(session, body)
        : await this.protocol.handle(session, action, body);
    if (failure) socket.emit(failure.event, failure.payload);
    return ack;
  }

  private sessionOf(socket: Socket): SocketIoSession {
    const data = socket.data as SessionData;
    data.session ??= new SocketIoSession(
      socket,
      this.broadcast,
      new TokenBucket(this.env.REQUEST_RATE_BURST, this.env.REQUEST_RATE_PER_S),
      this.admission.ticketOf(socket.request)?.clientAddress,
    );
    return data.session;
  }
}

/**
 * The last-resort guard of socket.io connections: `error` `{code: 'internal'}`, then a server
 * disconnect. Shared by the gateway's listeners and `GatewayIoAdapter`'s.
 */
export function socketIoGuard(stats: EventStats, logger: Logger): ConnectionGuard<Socket> {
  return new ConnectionGuard<Socket>(
    stats,
    logger,
    (socket) => socketLogName(socket),
    (socket) => {
      socket.emit('error', INTERNAL_ERROR);
      socket.disconnect(true);
    },
  );
}

/**
 * A listener shared by every socket, which socket.io calls with the socket as `this`: the
 * payload first, the client's acknowledgement callback last when it passed one.
 */
function socketListener(
  guard: ConnectionGuard<Socket>,
  handle: (socket: Socket, body: unknown) => Promise<EventAck>,
): (this: Socket, ...args: unknown[]) => void {
  return function (this: Socket, ...args: unknown[]): void {
    guard.run(this, async () => {
      const last = args[args.length - 1];
      const ack = typeof last === 'function' ? (last as (response: EventAck) => void) : undefined;
      const body = ack && args.length === 1 ? undefined : args[0];
      const response = await handle(this, body);
      ack?.(response);
    });
  };
}
