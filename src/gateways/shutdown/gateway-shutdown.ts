import { BeforeApplicationShutdown, Injectable, Logger } from '@nestjs/common';
import { Environment } from '../../config/environment';
import { ConnectionAdmission } from '../admission/connection-admission';
import { LegacySocketIoServer } from '../socket-io-legacy/legacy-socket-io.server';
import { SocketIoGateway } from '../socket-io/socket-io.gateway';
import { WsGateway } from '../ws/ws.gateway';
import type { Departing } from './going-away';

/** At most this long, and at most half the grace, is spent waiting for clients to hang up. */
const MAX_DRAIN_MS = 3000;
const DRAIN_CHECK_MS = 25;

/**
 * Stops a node the way clients and load balancers expect, before Nest closes the HTTP server
 * (which would otherwise wait for every WebSocket and long-poll): no new connection is admitted
 * (503 `shutting down`), every client is told on its own protocol and given a moment to hang up;
 * whoever has not is cut when the server closes. Clients are told in the way that makes them
 * reconnect (WebSocket close 1001 `going away`; for socket.io of both generations the transport
 * closes, as socket.io's own server does when it closes, because a socket.io disconnect packet
 * means "do not reconnect" to their clients). `main.ts` bounds the whole stop by
 * `SHUTDOWN_GRACE_S`.
 */
@Injectable()
export class GatewayShutdown implements BeforeApplicationShutdown {
  private readonly logger = new Logger(GatewayShutdown.name);
  private readonly drainMs: number;

  constructor(
    private readonly admission: ConnectionAdmission,
    private readonly ws: WsGateway,
    private readonly socketIo: SocketIoGateway,
    private readonly legacy: LegacySocketIoServer,
    env: Environment,
  ) {
    this.drainMs = Math.min(MAX_DRAIN_MS, (env.SHUTDOWN_GRACE_S * 1000) / 2);
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.admission.stopAdmitting();
    const transports: Departing[] = [this.ws, this.socketIo, this.legacy];
    const open = transports.reduce((sum, t) => sum + t.openConnections(), 0);
    if (open === 0) return;
    this.logger.log(`closing ${open} client connections`);
    for (const transport of transports) transport.sayGoodbye();
    const deadline = Date.now() + this.drainMs;
    let remaining = open;
    while (Date.now() < deadline) {
      remaining = transports.reduce((sum, t) => sum + t.openConnections(), 0);
      if (remaining === 0) return;
      await new Promise((resolve) => setTimeout(resolve, DRAIN_CHECK_MS));
    }
    this.logger.log(`${remaining} clients did not hang up in ${this.drainMs} ms; cutting them`);
  }
}
