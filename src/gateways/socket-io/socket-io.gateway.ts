import { Logger } from '@nestjs/common';
import {
  ConnectedSocket,
  MessageBody,
  OnGatewayConnection,
  OnGatewayDisconnect,
  SubscribeMessage,
  WebSocketGateway,
} from '@nestjs/websockets';
import { plainToInstance } from 'class-transformer';
import { validateSync } from 'class-validator';
import type { Socket } from 'socket.io';
import { BadRequestError, GatewayError, toGatewayError } from '../../core/errors';
import { SubscriptionService } from '../../core/subscriptions/subscription.service';
import { EventRequestDto } from './event-requests.dto';
import { SocketIoSession } from './socket-io.session';

/** Acknowledgement body, sent when the client passed a callback. */
export type EventAck =
  | { status: 'success'; data: { subscribed: string[]; unsubscribed?: string[] } }
  | { status: 'error'; data: { errors: string[]; code: string; temporary: boolean } };

interface SessionData {
  session?: SocketIoSession;
}

/**
 * The 3.x event protocol for socket.io 2.x–4.x clients (Engine.IO 3 and 4). It only translates:
 * frames to `SubscriptionService` calls, results to acks, failures to `auth_failure`/`error`.
 */
@WebSocketGateway({
  path: '/socket.io/',
  allowEIO3: true,
  serveClient: false,
  cors: { origin: true, credentials: true },
  // Frame size and upgrade sharing come from GatewayIoAdapter.
})
export class SocketIoGateway implements OnGatewayConnection, OnGatewayDisconnect {
  private readonly logger = new Logger(SocketIoGateway.name);

  constructor(private readonly subscriptions: SubscriptionService) {}

  handleConnection(socket: Socket): void {
    (socket.data as SessionData).session = new SocketIoSession(socket);
  }

  handleDisconnect(socket: Socket): void {
    const session = (socket.data as SessionData).session;
    if (session) this.subscriptions.disconnect(session);
  }

  @SubscribeMessage('subscribe')
  async onSubscribe(
    @ConnectedSocket() socket: Socket,
    @MessageBody() body: unknown,
  ): Promise<EventAck> {
    try {
      const request = parseRequest(body, 'subscribe');
      const bindings = request.bindings ?? (request.binding !== undefined ? [request.binding] : []);
      const subscribed = await this.subscriptions.subscribe(sessionOf(socket), {
        token: request.auth_token,
        accountId: request.account_id,
        bindings,
        name: request.name,
        metadata: request.metadata,
      });
      return { status: 'success', data: { subscribed } };
    } catch (error) {
      return this.fail(socket, error);
    }
  }

  @SubscribeMessage('unsubscribe')
  async onUnsubscribe(
    @ConnectedSocket() socket: Socket,
    @MessageBody() body: unknown,
  ): Promise<EventAck> {
    try {
      const request = parseRequest(body, 'unsubscribe');
      const bindings =
        request.bindings ?? (request.binding !== undefined ? [request.binding] : undefined);
      const result = await this.subscriptions.unsubscribe(sessionOf(socket), {
        token: request.auth_token,
        accountId: request.account_id,
        bindings,
      });
      return { status: 'success', data: result };
    } catch (error) {
      return this.fail(socket, error);
    }
  }

  /** Reports a failure both ways 3.x clients listen for: the event, and the ack if any. */
  private fail(socket: Socket, thrown: unknown): EventAck {
    const error = toGatewayError(thrown);
    if (!(thrown instanceof GatewayError)) {
      this.logger.error(
        `request failed: ${thrown instanceof Error ? thrown.stack : String(thrown)}`,
      );
    }
    socket.emit(error.isAuthFailure ? 'auth_failure' : 'error', {
      message: error.message,
      code: error.code,
    });
    return {
      status: 'error',
      data: { errors: [error.message], code: error.code, temporary: error.temporary },
    };
  }
}

function sessionOf(socket: Socket): SocketIoSession {
  const data = socket.data as SessionData;
  data.session ??= new SocketIoSession(socket);
  return data.session;
}

function parseRequest(body: unknown, action: string): EventRequestDto {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new BadRequestError(`${action} expects a JSON object`);
  }
  const request = plainToInstance(EventRequestDto, body);
  const errors = validateSync(request, { stopAtFirstError: true });
  if (errors.length > 0) {
    const problems = errors.map(
      (e) => `${e.property}: ${Object.values(e.constraints ?? {}).join(', ')}`,
    );
    throw new BadRequestError(`invalid ${action} request: ${problems.join('; ')}`);
  }
  return request;
}
