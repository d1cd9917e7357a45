import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { Environment } from '../../config/environment';
import { OriginPolicy } from '../../config/origin-policy';
import { rawText } from '../raw-text';
import { ConnectionGuard } from '../connection-guard';
import {
  BadRequestError,
  GatewayError,
  RateLimitedError,
  TokenRequiredError,
  toGatewayError,
} from '../../core/errors';
import { AuthDeadlines } from '../admission/auth-deadline';
import {
  ConnectionAdmission,
  refuseUpgrade,
  type ConnectionTicket,
} from '../admission/connection-admission';
import { EventStats } from '../../core/events/event-stats';
import { TokenBucket } from '../../core/limits/token-bucket';
import { ReplayService } from '../../core/replay/replay.service';
import { SubscriptionService } from '../../core/subscriptions/subscription.service';
import type { TransportLoad } from '../transport-load';
import { FrameError, newRequestId, parseKazooRequest, type KazooRequest } from './kazoo-request';
import { GOING_AWAY, type Departing } from '../shutdown/going-away';
import { WsSession, type OutboundLimit } from './ws.session';
import { connectionLog } from '../../logging/log-record';

/** Close code and reason for a connection that did not subscribe within `AUTH_DEADLINE_S`. */
export const AUTH_DEADLINE_CLOSE_CODE = 4001;
export const AUTH_DEADLINE_REASON = 'authentication deadline';

/** Kazoo 4.x's reply frame (spec §3.5). */
type ReplyFrame =
  | { action: 'reply'; request_id: string; status: 'success'; data: object }
  | {
      action: 'reply';
      request_id: string;
      status: 'error';
      data: { errors: string[]; code: string; temporary: boolean };
    };

/**
 * Kazoo 4.x's JSON protocol over plain WebSocket (monster-ui and every 4.x client), on the
 * same port as socket.io: `TransportRouter` hands it every upgrade outside `/socket.io/`. It
 * only translates frames into `SubscriptionService` calls and results into replies.
 */
@Injectable()
export class WsGateway implements OnApplicationBootstrap, OnApplicationShutdown, Departing {
  private readonly logger = new Logger(WsGateway.name);
  private readonly server: WebSocketServer;
  private readonly origins: OriginPolicy;
  private readonly sessions = new WeakMap<WebSocket, WsSession>();
  private heartbeat: NodeJS.Timeout | undefined;
  /** Shared by every session: one closure, not one per connection. */
  private readonly outboundLimit: OutboundLimit;
  private readonly guard: ConnectionGuard<WsSession>;

  constructor(
    private readonly subscriptions: SubscriptionService,
    private readonly replays: ReplayService,
    private readonly env: Environment,
    stats: EventStats,
    private readonly admission: ConnectionAdmission,
    private readonly deadlines: AuthDeadlines,
  ) {
    this.outboundLimit = {
      maxOutboundBytes: env.MAX_OUTBOUND_BYTES,
      onSlowConsumer: (session) => {
        stats.slowConsumerDisconnects += 1;
        this.logger.warn(connectionLog(session.id, 'dropped as a slow consumer'));
        // Now rather than at 'close', which a peer that does not read may delay.
        this.subscriptions.disconnect(session);
      },
    };
    this.guard = new ConnectionGuard<WsSession>(
      stats,
      this.logger,
      (session) => session.id,
      (session) => session.closeAfterInternalError(),
    );
    this.origins = new OriginPolicy(env.CORS_ORIGINS);
    this.server = new WebSocketServer({
      noServer: true,
      maxPayload: env.MAX_FRAME_BYTES,
      // Compression would cost a deflate per event and per socket.
      perMessageDeflate: false,
    });
  }

  onApplicationBootstrap(): void {
    this.heartbeat = setInterval(() => this.checkHeartbeats(), this.env.WS_PING_INTERVAL_S * 1000);
    this.heartbeat.unref();
  }

  load(): TransportLoad {
    let outboundBytes = 0;
    for (const client of this.server.clients) outboundBytes += client.bufferedAmount;
    return { connections: this.server.clients.size, outboundBytes };
  }

  /** Takes an upgrade `TransportRouter` decided is not socket.io's. */
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    // Browsers always send Origin on a WebSocket (monster-ui's included); programs such as CTI
    // connectors send none and are let in.
    if (!this.origins.allows(request.headers.origin, request.headers.host)) {
      socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\n\r\n');
      return;
    }
    const admission = this.admission.admit(request);
    if (!admission.admitted) {
      socket.end(refuseUpgrade(admission.refusal));
      return;
    }
    const { ticket } = admission;
    // The TCP socket closes however the connection ends, a failed WebSocket handshake included.
    socket.once('close', () => ticket.release());
    this.server.handleUpgrade(request, socket, head, (ws) => this.accept(ws, ticket));
  }

  /** WebSocket close 1001 `going away` to every client (`GatewayShutdown`). */
  sayGoodbye(): void {
    for (const client of this.server.clients) client.close(GOING_AWAY.code, GOING_AWAY.reason);
  }

  openConnections(): number {
    return this.server.clients.size;
  }

  onApplicationShutdown(): void {
    clearInterval(this.heartbeat);
    for (const client of this.server.clients) client.terminate();
    this.server.close();
  }

  private accept(socket: WebSocket, ticket: ConnectionTicket): void {
    const session = new WsSession(
      socket,
      new TokenBucket(this.env.REQUEST_RATE_BURST, this.env.REQUEST_RATE_PER_S),
      this.outboundLimit,
      ticket.clientAddress,
      { protocol: 'kazoo-ws', source: ticket.clientAddress, connectedAt: Date.now() },
    );
    this.sessions.set(socket, session);
    this.logger.debug(connectionLog(session.id, 'connected (Kazoo WebSocket)'));
    session.deadline = this.deadlines.watch(() =>
      socket.close(AUTH_DEADLINE_CLOSE_CODE, AUTH_DEADLINE_REASON),
    );
    socket.on('message', (data: RawData, isBinary: boolean) =>
      this.guard.run(session, () => this.onFrame(session, data, isBinary)),
    );
    socket.on('pong', () => (session.alive = true));
    socket.on('close', (code: number) => {
      this.logger.debug(connectionLog(session.id, `disconnected (${code})`));
      session.deadline?.clear();
      this.subscriptions.disconnect(session);
    });
    // An oversized frame or a protocol violation: ws closes the socket (1009, 1002) itself.
    socket.on('error', (error) => this.logger.debug(connectionLog(session.id, error.message)));
  }

  private async onFrame(session: WsSession, data: RawData, isBinary: boolean): Promise<void> {
    // Every frame costs a token, readable or not; a refusal still names the request if it can.
    const allowed = session.requests.take();
    let requestId = newRequestId();
    try {
      if (isBinary) throw new BadRequestError('binary frames are not supported');
      const request = parseKazooRequest(rawText(data));
      requestId = request.requestId;
      if (!allowed) throw this.rateLimited(session);
      const result = await this.execute(session, request);
      session.write({ action: 'reply', request_id: requestId, status: 'success', data: result });
    } catch (thrown) {
      if (thrown instanceof FrameError) requestId = thrown.requestId;
      const cause = thrown instanceof FrameError ? thrown.error : thrown;
      const error = allowed ? toGatewayError(cause) : this.rateLimited(session);
      this.logger.debug(
        connectionLog(session.id, `request refused: ${error.code}`, { request_id: requestId }),
      );
      if (!(cause instanceof GatewayError)) {
        this.logger.error(
          connectionLog(
            session.id,
            `request failed: ${cause instanceof Error ? cause.stack : String(cause)}`,
            { request_id: requestId },
          ),
        );
      }
      const reply: ReplyFrame = {
        action: 'reply',
        request_id: requestId,
        status: 'error',
        data: { errors: [error.message], code: error.code, temporary: error.temporary },
      };
      session.write(reply);
    }
  }

  /** Kazoo 4.x's text, with the code every protocol uses for it. */
  private rateLimited(session: WsSession): GatewayError {
    return new RateLimitedError(`rate limiting threshold hit for ${session.id}!`);
  }

  private async execute(session: WsSession, request: KazooRequest): Promise<object> {
    const token = await this.authenticate(session, request.authToken);
    switch (request.action) {
      case 'ping':
        return { response: 'pong' };
      case 'subscribe': {
        const { data } = request;
        if (!data || (data.accountId === undefined && data.bindings === undefined)) {
          throw new BadRequestError('missing required keys in data object');
        }
        const subscribed = await this.subscriptions.subscribe(session, {
          token,
          accountId: data.accountId,
          bindings: data.bindings ?? [],
          name: request.name,
          metadata: request.metadata,
        });
        return { subscribed };
      }
      case 'resume': {
        const { data } = request;
        if (!data || data.position === undefined) {
          throw new BadRequestError('missing required keys in data object');
        }
        const result = await this.replays.resume(session, {
          token,
          accountId: data.accountId,
          bindings: data.bindings ?? [],
          name: request.name,
          metadata: request.metadata,
          position: data.position,
        });
        return result;
      }
      case 'unsubscribe':
        // Without `data`, Kazoo's documented (but never working) "unsubscribe from everything".
        return this.subscriptions.unsubscribe(session, {
          token,
          accountId: request.data?.accountId,
          bindings: request.data?.bindings,
        });
    }
  }

  /**
   * As Kazoo 4.x: a token is needed until the connection has authenticated once. A frame that
   * brings a token has it checked and makes it the connection's token.
   */
  private async authenticate(session: WsSession, token: string | undefined): Promise<string> {
    if (token === undefined) {
      if (session.token === undefined) throw new TokenRequiredError();
      return session.token;
    }
    if (token !== session.token) {
      await this.subscriptions.authenticate(token, session);
      session.token = token;
    }
    return token;
  }

  private checkHeartbeats(): void {
    for (const socket of this.server.clients) {
      const session = this.sessions.get(socket);
      if (!session) continue;
      if (!session.alive) {
        socket.terminate();
        continue;
      }
      session.alive = false;
      socket.ping();
    }
  }
}
