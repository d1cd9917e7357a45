import type { IncomingMessage } from 'node:http';
import { Logger, type INestApplicationContext } from '@nestjs/common';
import { IoAdapter } from '@nestjs/platform-socket.io';
import type { MessageMappingProperties } from '@nestjs/websockets';
import { firstValueFrom, type Observable } from 'rxjs';
import type { Server, ServerOptions, Socket } from 'socket.io';
import { Environment } from '../../config/environment';
import { OriginPolicy } from '../../config/origin-policy';
import { ConnectionAdmission } from '../admission/connection-admission';
import { EventStats } from '../../core/events/event-stats';
import type { ConnectionGuard } from '../connection-guard';
import { socketIoGuard } from './socket-io.gateway';

/** What engine.io tells of a handshake it gave up on after `allowRequest` let it through. */
interface EngineConnectionError {
  readonly req: IncomingMessage;
}

/** The engine.io connection of a handshake: its request, and `close` once it is over. */
interface EngineConnection {
  readonly request: IncomingMessage;
  once(event: 'close', listener: () => void): void;
}

/**
 * socket.io on the application's HTTP server, with the frame limit and the allowed origins
 * (`CORS_ORIGINS`) from the environment. The
 * port is shared with other protocols (`TransportRouter`), so engine.io must never destroy an
 * upgrade it does not own (`destroyUpgrade: false`).
 */
export class GatewayIoAdapter extends IoAdapter {
  private readonly logger = new Logger('SocketIoGateway');
  private guard: ConnectionGuard<Socket> | undefined;

  constructor(private readonly app: INestApplicationContext) {
    super(app);
  }

  override createIOServer(port: number, options?: ServerOptions): Server {
    const env = this.app.get(Environment);
    const admission = this.app.get(ConnectionAdmission);
    const origins = new OriginPolicy(env.CORS_ORIGINS);
    const serverOptions: Partial<ServerOptions> = {
      ...options,
      maxHttpBufferSize: env.MAX_FRAME_BYTES,
      destroyUpgrade: false,
      // Here rather than in the gateway's decorator: CORS_ORIGINS is known only at boot.
      cors: (request, callback) => {
        const origin = request.headers.origin;
        callback(null, {
          origin: origins.allowOrigin(origin) ?? false,
          credentials: origins.allowsCredentials(origin),
          methods: ['GET', 'POST'],
        });
      },
      // A client that never joins a namespace is dropped as one that never subscribes is.
      connectTimeout: env.AUTH_DEADLINE_S * 1000,
      // Only handshakes come here (a request with a sid belongs to a connection already
      // counted). A page of another origin, or a connection past MAX_CONNECTIONS or
      // MAX_CONNECTIONS_PER_IP, is turned away before engine.io does any work: HTTP 403 whose
      // JSON body carries the message, which clients see as a `connect_error`.
      allowRequest: (request, callback) => {
        if (!origins.allows(request.headers.origin, request.headers.host)) {
          callback('origin not allowed', false);
          return;
        }
        const admitted = admission.admit(request);
        if (!admitted.admitted) {
          callback(admitted.refusal.message, false);
          return;
        }
        const { ticket } = admitted;
        // A handshake that fails after this (a WebSocket upgrade that never completes) leaves
        // no engine.io connection behind: the TCP socket's end releases it instead.
        const releaseUnclaimed = (): void => ticket.release();
        request.socket.once('close', releaseUnclaimed);
        claims.set(request, () => request.socket.off('close', releaseUnclaimed));
        callback(null, true);
      },
    };
    const claims = new WeakMap<IncomingMessage, () => void>();
    const server = super.createIOServer(port, serverOptions) as Server;
    // Counted from the handshake until engine.io closes the connection, polling included.
    server.engine.on('connection', (connection: EngineConnection) => {
      const claim = claims.get(connection.request);
      const ticket = admission.ticketOf(connection.request);
      if (!claim || !ticket) return;
      claim();
      claims.delete(connection.request);
      connection.once('close', () => ticket.release());
    });
    server.engine.on('connection_error', ({ req }: EngineConnectionError) => {
      if (!claims.has(req)) return;
      claims.delete(req);
      admission.ticketOf(req)?.release();
    });
    return server;
  }

  /**
   * One plain listener per message. Nest's own version keeps an RxJS pipeline per socket and
   * message (`fromEvent`, `mergeMap`, `takeUntil(disconnect$)`) alive for the socket's whole life,
   * which more than doubled the memory of an idle subscribed connection; here an Observable only
   * exists while a frame is handled. Guards, pipes and interceptors still run: `callback` is
   * Nest's handler with its context.
   */
  override bindMessageHandlers(
    socket: Socket,
    handlers: MessageMappingProperties[],
    transform: (data: unknown) => Observable<unknown>,
  ): void {
    this.guard ??= socketIoGuard(this.app.get(EventStats), this.logger);
    const guard = this.guard;
    for (const { message, callback, isAckHandledManually } of handlers) {
      socket.on(String(message), (...args: unknown[]) =>
        guard.run(socket, async () => {
          const last = args[args.length - 1];
          const ack =
            typeof last === 'function' ? (last as (response: unknown) => void) : undefined;
          if (ack) args.pop();
          const data = args.length === 1 ? args[0] : args.length === 0 ? undefined : args;
          const response = await firstValueFrom(transform(callback(data, ack)), {
            defaultValue: undefined,
          });
          if (response === undefined || response === null) return;
          const { event, data: eventData } = response as { event?: unknown; data?: unknown };
          if (typeof event === 'string') socket.emit(event, eventData);
          else if (!isAckHandledManually) ack?.(response);
        }),
      );
    }
  }
}
