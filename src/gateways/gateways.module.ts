import { Module } from '@nestjs/common';
import { EventProtocol } from './event-protocol/event-protocol';
import { LegacySocketIoServer } from './socket-io-legacy/legacy-socket-io.server';
import { SocketIoGateway } from './socket-io/socket-io.gateway';
import { TransportRouter } from './transport-router';
import { WsGateway } from './ws/ws.gateway';

/** Client-facing transports. Each translates frames into core calls and nothing more. */
@Module({
  providers: [EventProtocol, SocketIoGateway, LegacySocketIoServer, WsGateway, TransportRouter],
  exports: [SocketIoGateway, LegacySocketIoServer, WsGateway],
})
export class GatewaysModule {}
