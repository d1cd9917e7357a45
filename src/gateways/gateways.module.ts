import { Module } from '@nestjs/common';
import { SocketIoGateway } from './socket-io/socket-io.gateway';

/** Client-facing transports. Each translates frames into core calls and nothing more. */
@Module({ providers: [SocketIoGateway] })
export class GatewaysModule {}
