import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { WebSocketServer, type RawData } from 'ws';
import { Environment } from '../../config/environment';
import { OriginPolicy } from '../../config/origin-policy';
import { secretTag } from '../../core/secret-tag';
import { rawText } from '../raw-text';
import { EventStats } from '../../core/events/event-stats';
import { AuthDeadlineError, BadRequestError, RateLimitedError } from '../../core/errors';
import { TokenBucket } from '../../core/limits/token-bucket';
import { AuthDeadlines } from '../admission/auth-deadline';
import { ConnectionAdmission } from '../admission/connection-admission';
import { EventProtocol, type EventAction } from '../event-protocol/event-protocol';
import { ConnectionGuard } from '../connection-guard';
import type { Departing } from '../shutdown/going-away';
import {
  DISCONNECT,
  HEARTBEAT,
  NOT_HANDSHAKEN,
  TRANSPORT_NOT_SUPPORTED,
  ackPacket,
  decodePacket,
  decodePayload,
  eventPacket,
  type LegacyPacket,
} from './legacy-packets';
import type { TransportLoad } from '../transport-load';
import { silenceEndsSession } from './legacy-liveness';
import { LegacySession, type OutboundLimit } from './legacy.session';
import { connectionLog } from '../../logging/log-record';

/** Where socket.io 0.9 clients (`io.connect(url)`, resource `socket.io`, protocol 1) knock. */
export const LEGACY_PATH = '/socket.io/1';

const TRANSPORTS = 'websocket,xhr-polling';

/**
 * The socket.io 0.9 endpoint of Kazoo 3.x (spec §2.1), written from the protocol: handshake,
 * `websocket` and `xhr-polling` transports, heartbeats and session timeouts, over the same
 * event protocol, core and auth as every other client. Kazoo's documented example page and
 * Kazoo-Popup connect here unmodified.
 *
 * Liveness differs by transport. A polling client must send something (its heartbeat answers)
 * within `LEGACY_TIMEOUT_S`. A WebSocket session lives as long as its socket, as in Kazoo 3.x,
 * because Kazoo-Popup never answers heartbeats; the server still sends them, and WebSocket
 * pings every `WS_PING_INTERVAL_S` find the peers that are gone.
 */
@Injectable()
export class LegacySocketIoServer
  implements OnApplicationBootstrap, OnApplicationShutdown, Departing
{
  private readonly logger = new Logger(LegacySocketIoServer.name);
  private readonly sessions = new Map<string, LegacySession>();
  /**
   * Long-polling sessions told to go while the node stops, until their next poll has been told
   * to handshake again: a client between two polls must find the node still answering.
   */
  private readonly departing = new Set<string>();
  private readonly websockets: WebSocketServer;
  private readonly origins: OriginPolicy;
  private timer: NodeJS.Timeout | undefined;
  private pinger: NodeJS.Timeout | undefined;
  private lastHeartbeat = 0;
  /** Shared by every session: one closure, not one per session. */
  private readonly outboundLimit: OutboundLimit;
  private readonly guard: ConnectionGuard<LegacySession>;

  constructor(
    private readonly protocol: EventProtocol,
    private readonly env: Environment,
    stats: EventStats,
    private readonly admission: ConnectionAdmission,
    private readonly deadlines: AuthDeadlines,
  ) {
    this.outboundLimit = {
      maxOutboundBytes: env.MAX_OUTBOUND_BYTES,
      onSlowConsumer: (session) => {
        stats.slowConsumerDisconnects += 1;
        this.logger.warn(connectionLog(secretTag(session.id), 'dropped as a slow consumer'));
      },
    };
    this.guard = new ConnectionGuard<LegacySession>(
      stats,
      this.logger,
      (session) => secretTag(session.id),
      (session) => session.closeAfterInternalError(),
    );
    this.origins = new OriginPolicy(env.CORS_ORIGINS);
    this.websockets = new WebSocketServer({
      noServer: true,
      maxPayload: env.MAX_FRAME_BYTES,
      perMessageDeflate: false,
    });
  }

  onApplicationBootstrap(): void {
    // One timer drives heartbeats and timeouts; its tick is a fraction of the shortest one.
    const tickMs = Math.max(
      200,
      Math.min(this.env.LEGACY_HEARTBEAT_S, this.env.LEGACY_TIMEOUT_S) * 250,
    );
    this.timer = setInterval(() => this.tick(), tickMs);
    this.timer.unref();
    this.pinger = setInterval(() => this.pingWebSockets(), this.env.WS_PING_INTERVAL_S * 1000);
    this.pinger.unref();
  }

  /** Ends every session's transport so that its client reconnects (`LegacySession.goAway`). */
  sayGoodbye(): void {
    for (const session of [...this.sessions.values()]) {
      if (session.transport === 'xhr-polling') this.departing.add(session.id);
      session.goAway();
    }
  }

  openConnections(): number {
    return this.sessions.size + this.departing.size;
  }

  onApplicationShutdown(): void {
    clearInterval(this.timer);
    clearInterval(this.pinger);
    for (const session of [...this.sessions.values()]) session.close();
    this.websockets.close();
  }

  load(): TransportLoad {
    let outboundBytes = 0;
    for (const session of this.sessions.values()) outboundBytes += session.unsentBytes;
    return { connections: this.sessions.size, outboundBytes };
  }

  /** True for the HTTP requests and upgrades this endpoint answers. */
  handles(url: string | undefined): boolean {
    const path = (url ?? '').split('?')[0];
    return path === LEGACY_PATH || path.startsWith(`${LEGACY_PATH}/`);
  }

  handleRequest(request: IncomingMessage, response: ServerResponse): void {
    const url = new URL(request.url ?? '/', 'http://blackhole');
    const [transport, sid] = url.pathname.slice(LEGACY_PATH.length).split('/').filter(Boolean);
    this.corsHeaders(request, response);
    if (!this.originAllowed(request)) return this.answer(response, 403, 'origin not allowed');
    if (request.method === 'OPTIONS') return this.answer(response, 204, '');
    if (transport === undefined) return this.handshake(request, url, response);
    if (transport !== 'xhr-polling') return this.answer(response, 200, TRANSPORT_NOT_SUPPORTED);
    const session = sid === undefined ? undefined : this.sessions.get(sid);
    if (!session) {
      if (sid !== undefined) this.departing.delete(sid);
      return this.answer(response, 200, NOT_HANDSHAKEN);
    }
    if (url.searchParams.has('disconnect')) {
      session.close();
      return this.answer(response, 200, DISCONNECT);
    }
    if (request.method === 'GET') {
      const holdMs = Math.min(this.env.LEGACY_POLL_S, this.env.LEGACY_TIMEOUT_S / 2) * 1000;
      return session.attachPoll(response, holdMs);
    }
    if (request.method === 'POST') return this.readPosted(request, response, session);
    return this.answer(response, 405, '');
  }

  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    const [transport, sid] = (request.url ?? '')
      .split('?')[0]
      .slice(LEGACY_PATH.length)
      .split('/')
      .filter(Boolean);
    if (!this.originAllowed(request)) {
      socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\n\r\n');
      return;
    }
    const session = sid === undefined ? undefined : this.sessions.get(sid);
    if (transport !== 'websocket' || !session || session.transport !== undefined) {
      socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
      return;
    }
    this.websockets.handleUpgrade(request, socket, head, (ws) => {
      // Listening before `1::` goes out: a client may send the moment the socket opens
      // (Kazoo-Popup does), and ws delivers its frames only after this callback returns.
      ws.on('message', (data: RawData, isBinary: boolean) =>
        this.guard.run(session, () => {
          if (!isBinary) this.arrived(session, rawText(data));
        }),
      );
      // Closing the WebSocket ends the session: a 0.9 client handshakes again to reconnect.
      ws.on('close', () => session.close());
      // The session id is the session's only credential: logs name it by a tag.
      ws.on('error', (error) =>
        this.logger.debug(connectionLog(secretTag(session.id), error.message)),
      );
      session.attachWebSocket(ws);
    });
  }

  /**
   * A session counts as a connection from its handshake until it ends, whichever transport
   * carries it: the WebSocket upgrade of a session already counted is not counted again.
   */
  private handshake(request: IncomingMessage, url: URL, response: ServerResponse): void {
    const admission = this.admission.admit(request);
    if (!admission.admitted) {
      return this.answer(response, admission.refusal.status, admission.refusal.message);
    }
    const session = new LegacySession(
      (closed) => this.forget(closed),
      this.outboundLimit,
      admission.ticket,
      new TokenBucket(this.env.REQUEST_RATE_BURST, this.env.REQUEST_RATE_PER_S),
      {
        protocol: 'socket.io-0.9',
        source: admission.ticket.clientAddress,
        connectedAt: Date.now(),
      },
    );
    this.sessions.set(session.id, session);
    this.logger.debug(connectionLog(secretTag(session.id), 'connected (socket.io 0.9)'));
    session.deadline = this.deadlines.watch(() => {
      const { failure } = this.protocol.refusal(new AuthDeadlineError());
      session.closeWith([eventPacket(failure.event, failure.payload), DISCONNECT]);
    });
    const body = `${session.id}:${this.env.LEGACY_TIMEOUT_S}:${this.env.LEGACY_CLOSE_TIMEOUT_S}:${TRANSPORTS}`;
    const jsonp = url.searchParams.get('jsonp');
    if (jsonp !== null && /^\d+$/.test(jsonp)) {
      // Browsers without CORS handshake through a script tag.
      response.writeHead(200, { 'Content-Type': 'application/javascript; charset=UTF-8' });
      response.end(`io.j[${jsonp}](${JSON.stringify(body)});`);
      return;
    }
    this.answer(response, 200, body);
  }

  private readPosted(
    request: IncomingMessage,
    response: ServerResponse,
    session: LegacySession,
  ): void {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > this.env.MAX_FRAME_BYTES) {
        this.answer(response, 413, '');
        request.destroy();
        session.close();
        return;
      }
      chunks.push(chunk);
    });
    request.on('end', () =>
      this.guard.run(session, () => {
        if (response.writableEnded) return;
        this.answer(response, 200, '1');
        for (const packet of decodePayload(Buffer.concat(chunks).toString('utf8'))) {
          this.arrived(session, packet);
        }
      }),
    );
  }

  /** A packet came in: the client is alive now, and the packet waits for those before it. */
  private arrived(session: LegacySession, text: string): void {
    session.lastSeen = Date.now();
    session
      .enqueue(() => this.receive(session, text))
      .catch((error: unknown) => this.guard.fail(session, error));
  }

  private async receive(session: LegacySession, text: string): Promise<void> {
    if (session.closed) return;
    const packet = decodePacket(text);
    if (!packet) {
      session.write(
        eventPacket('error', { message: 'malformed socket.io 0.9 packet', code: 'bad_request' }),
      );
      return;
    }
    switch (packet.type) {
      case 'heartbeat':
      case 'noop':
        return;
      case 'disconnect':
        if (packet.endpoint === '') session.close();
        return;
      case 'connect':
        // Namespaces were never part of Blackhole; refuse them rather than pretend.
        if (packet.endpoint !== '') session.write(`0::${packet.endpoint}`);
        return;
      case 'event':
        return this.receiveEvent(session, packet);
      case 'message':
      case 'json':
      case 'ack':
      case 'error':
        // Blackhole's protocol is events only; Kazoo 3.x ignored the rest silently.
        session.write(
          eventPacket('error', {
            message: `unsupported packet type ${packet.type}`,
            code: 'bad_request',
          }),
        );
    }
  }

  private async receiveEvent(session: LegacySession, packet: LegacyPacket): Promise<void> {
    // A plain id asks for an immediate, empty acknowledgement.
    if (packet.id !== undefined && !packet.ackWithData) session.write(ackPacket(packet.id));
    // Every event packet costs a token, however many one polling POST carries.
    if (!session.requests.take()) {
      const { ack, failure } = this.protocol.refusal(
        new RateLimitedError('too many requests; retry later'),
      );
      session.write(eventPacket(failure.event, failure.payload));
      if (packet.id !== undefined && packet.ackWithData) session.write(ackPacket(packet.id, [ack]));
      return;
    }
    const request = readEvent(packet.data);
    if (request instanceof BadRequestError) {
      // Refused like a failed subscribe: the `error` event, and the ack its sender waits for.
      const { ack, failure } = this.protocol.refusal(request);
      session.write(eventPacket(failure.event, failure.payload));
      if (packet.id !== undefined && packet.ackWithData) session.write(ackPacket(packet.id, [ack]));
      return;
    }
    const { ack, failure } = await this.protocol.handle(session, request.action, request.body);
    if (failure) session.write(eventPacket(failure.event, failure.payload));
    if (packet.id !== undefined && packet.ackWithData) session.write(ackPacket(packet.id, [ack]));
  }

  private tick(): void {
    const now = Date.now();
    const beat = now - this.lastHeartbeat >= this.env.LEGACY_HEARTBEAT_S * 1000;
    if (beat) this.lastHeartbeat = now;
    const limits = {
      timeoutMs: this.env.LEGACY_TIMEOUT_S * 1000,
      closeTimeoutMs: this.env.LEGACY_CLOSE_TIMEOUT_S * 1000,
    };
    for (const session of [...this.sessions.values()]) {
      if (silenceEndsSession(session.transport, now - session.lastSeen, limits)) session.close();
      // Clients that never answer still count on these to know the server is there.
      else if (beat && session.transport !== undefined) session.write(HEARTBEAT);
    }
  }

  private pingWebSockets(): void {
    for (const session of [...this.sessions.values()]) session.checkWebSocket();
  }

  private forget(session: LegacySession): void {
    this.sessions.delete(session.id);
    this.logger.debug(connectionLog(secretTag(session.id), 'disconnected'));
    session.deadline?.clear();
    session.ticket?.release();
    this.protocol.disconnect(session);
  }

  /**
   * CORS for pages on other origins. The 0.9 client sends its cross-origin XHRs
   * `withCredentials`, so a listed origin is told credentials are fine; `*` never is.
   */
  private corsHeaders(request: IncomingMessage, response: ServerResponse): void {
    if (this.origins.reflects) response.setHeader('Vary', 'Origin');
    const origin = request.headers.origin;
    const allowed = this.origins.allowOrigin(origin);
    if (allowed === undefined) return;
    response.setHeader('Access-Control-Allow-Origin', allowed);
    if (this.origins.allowsCredentials(origin)) {
      response.setHeader('Access-Control-Allow-Credentials', 'true');
    }
    response.setHeader('Access-Control-Allow-Methods', 'GET, POST, OPTIONS');
    response.setHeader('Access-Control-Allow-Headers', 'Content-Type');
  }

  /** A page of an origin `CORS_ORIGINS` does not list is turned away, whatever it asks. */
  private originAllowed(request: IncomingMessage): boolean {
    return this.origins.allows(request.headers.origin, request.headers.host);
  }

  private answer(response: ServerResponse, status: number, body: string): void {
    response.writeHead(status, { 'Content-Type': 'text/plain; charset=UTF-8' });
    response.end(body);
  }
}

/** The action and payload of a `5:::` packet's JSON, or why it has none. */
function readEvent(data: string): { action: EventAction; body: unknown } | BadRequestError {
  let parsed: unknown;
  try {
    parsed = JSON.parse(data);
  } catch {
    return new BadRequestError('invalid JSON');
  }
  // `5:::null`, `5:::[1]`, `5:::"x"`: valid JSON, but no event.
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return new BadRequestError('expected a JSON object');
  }
  const event = parsed as { name?: unknown; args?: unknown };
  const action = event.name;
  if (action !== 'subscribe' && action !== 'unsubscribe') {
    return new BadRequestError(`unsupported event ${JSON.stringify(action ?? null).slice(0, 64)}`);
  }
  // 0.9 clients send `args` as an array holding the one payload object.
  return { action, body: Array.isArray(event.args) ? (event.args as unknown[])[0] : event.args };
}
