import { Module } from '@nestjs/common';
import { AuthDeadlines } from './admission/auth-deadline';
import { ConnectionAdmission } from './admission/connection-admission';
import { EventProtocol } from './event-protocol/event-protocol';
import { GatewayShutdown } from './shutdown/gateway-shutdown';
import { LegacySocketIoServer } from './socket-io-legacy/legacy-socket-io.server';
import { SocketIoGateway } from './socket-io/socket-io.gateway';
import { TransportRouter } from './transport-router';
import { WsGateway } from './ws/ws.gateway';

/** Client-facing transports. Each translates frames into core calls and nothing more. */
@Module({
  providers: [
    ConnectionAdmission,
    AuthDeadlines,
    EventProtocol,
    SocketIoGateway,
    LegacySocketIoServer,
    WsGateway,
    TransportRouter,
    GatewayShutdown,
  ],
  exports: [ConnectionAdmission, SocketIoGateway, LegacySocketIoServer, WsGateway],
})
export class GatewaysModule {}
