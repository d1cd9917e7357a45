import { Module } from '@nestjs/common';
import { SocketIoGateway } from './socket-io/socket-io.gateway';
import { WsGateway } from './ws/ws.gateway';

/** Client-facing transports. Each translates frames into core calls and nothing more. */
@Module({ providers: [SocketIoGateway, WsGateway] })
export class GatewaysModule {}
