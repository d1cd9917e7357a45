import { Module } from '@nestjs/common';
import { EventProtocol } from './event-protocol/event-protocol';
import { SocketIoGateway } from './socket-io/socket-io.gateway';
import { WsGateway } from './ws/ws.gateway';

/** Client-facing transports. Each translates frames into core calls and nothing more. */
@Module({ providers: [EventProtocol, SocketIoGateway, WsGateway] })
export class GatewaysModule {}
