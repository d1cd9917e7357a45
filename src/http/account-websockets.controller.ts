import { Controller, Get, Headers, HttpStatus, Logger, Param, Res } from '@nestjs/common';
import type { Response } from 'express';
import { FleetUnavailableError, WebsocketsTracking } from '../amqp/websockets-tracking';
import { AuthService } from '../auth/auth.service';
import { NodeIdentity } from '../config/node-identity';
import { ErrorCode, GatewayError, InvalidAccountError } from '../core/errors';
import { ALL_ACCOUNTS } from '../core/families/event-family';
import { isAccountId } from '../core/kazoo/account-databases';
import {
  kazooShaped,
  watchesAllAccounts,
  type ScopedSocketDescription,
  type SocketDescription,
} from '../core/tracking/socket-listing';
import {
  crossbarError,
  crossbarSuccess,
  requestIdOf,
  type CrossbarError,
  type CrossbarSuccess,
} from './crossbar-envelope';

/** Public socket ids are 16 random bytes in hex. */
const SOCKET_ID = /^[0-9a-f]{32}$/;

class ListingRefusal extends Error {
  constructor(
    readonly httpStatus: number,
    readonly reason: string,
  ) {
    super(reason);
    this.name = 'ListingRefusal';
  }
}

/**
 * Crossbar's `GET /v2/accounts/{ACCOUNT_ID}/websockets[/{SOCKET_ID}]` over the whole fleet, with
 * the ownership checks Kazoo lacks (W7): the token must be allowed on the path account; a socket
 * is listed when a token of the path account subscribed it or it watches the path account; a
 * socket watching every account (`*`) only to a superduper admin. A socket outside that scope is
 * answered as unknown (404), so ids cannot be probed.
 */
@Controller('v2/accounts/:accountId/websockets')
export class AccountWebsocketsController {
  private readonly logger = new Logger(AccountWebsocketsController.name);

  constructor(
    private readonly auth: AuthService,
    private readonly tracking: WebsocketsTracking,
    private readonly node: NodeIdentity,
  ) {}

  @Get()
  async list(
    @Param('accountId') accountId: string,
    @Headers('x-auth-token') token: string | undefined,
    @Headers('x-request-id') requestIdHeader: string | undefined,
    @Res({ passthrough: true }) response: Response,
  ): Promise<CrossbarSuccess<SocketDescription[]> | CrossbarError> {
    const requestId = requestIdOf(requestIdHeader);
    try {
      const sockets = await this.visibleSockets(token, accountId, undefined);
      return crossbarSuccess(sockets.map(kazooShaped), this.node.publicId, requestId);
    } catch (error) {
      return this.refuse(error, requestId, response);
    }
  }

  @Get(':socketId')
  async read(
    @Param('accountId') accountId: string,
    @Param('socketId') socketId: string,
    @Headers('x-auth-token') token: string | undefined,
    @Headers('x-request-id') requestIdHeader: string | undefined,
    @Res({ passthrough: true }) response: Response,
  ): Promise<CrossbarSuccess<SocketDescription> | CrossbarError> {
    const requestId = requestIdOf(requestIdHeader);
    try {
      const [socket] = await this.visibleSockets(token, accountId, socketId);
      if (!socket) throw new ListingRefusal(HttpStatus.NOT_FOUND, 'bad_identifier');
      return crossbarSuccess(kazooShaped(socket), this.node.publicId, requestId);
    } catch (error) {
      return this.refuse(error, requestId, response);
    }
  }

  private async visibleSockets(
    token: string | undefined,
    accountId: string,
    socketId: string | undefined,
  ): Promise<ScopedSocketDescription[]> {
    if (token === undefined || token.length === 0 || token.length > 4096) {
      throw new ListingRefusal(HttpStatus.UNAUTHORIZED, 'invalid_credentials');
    }
    if (!isAccountId(accountId)) throw new ListingRefusal(HttpStatus.NOT_FOUND, 'bad_identifier');
    await this.auth.authorize(token, accountId);
    if (socketId !== undefined && !SOCKET_ID.test(socketId)) return [];
    const sockets = (await this.tracking.gather({ accountId, socketId })).filter(
      (socket) =>
        socket.account_ids.includes(accountId) || socket.auth_account_ids.includes(accountId),
    );
    if (!sockets.some(watchesAllAccounts) || (await this.isSuperduper(token))) return sockets;
    return sockets.filter((socket) => !watchesAllAccounts(socket));
  }

  private async isSuperduper(token: string): Promise<boolean> {
    try {
      await this.auth.authorize(token, ALL_ACCOUNTS);
      return true;
    } catch (error) {
      if (error instanceof InvalidAccountError) return false;
      throw error;
    }
  }

  private refuse(error: unknown, requestId: string, response: Response): CrossbarError {
    const [status, reason] = this.statusOf(error);
    response.status(status);
    return crossbarError(status, reason, this.node.publicId, requestId);
  }

  private statusOf(error: unknown): [number, string] {
    if (error instanceof ListingRefusal) return [error.httpStatus, error.reason];
    if (error instanceof FleetUnavailableError) {
      this.logger.warn(error.message);
      return [HttpStatus.SERVICE_UNAVAILABLE, 'could_not_reach_websockets_tracking'];
    }
    if (error instanceof GatewayError) {
      switch (error.code) {
        case ErrorCode.TokenRequired:
        case ErrorCode.TokenInvalid:
          return [HttpStatus.UNAUTHORIZED, 'invalid_credentials'];
        case ErrorCode.AccountForbidden:
        case ErrorCode.InvalidAccount:
          return [HttpStatus.FORBIDDEN, 'forbidden'];
        case ErrorCode.RateLimited:
          return [HttpStatus.TOO_MANY_REQUESTS, 'rate_limited'];
        case ErrorCode.AuthUnavailable:
          return [HttpStatus.SERVICE_UNAVAILABLE, 'auth_unavailable'];
        // Authorizing a token raises none of these: answered as an internal failure.
        case ErrorCode.BadRequest:
        case ErrorCode.InvalidBinding:
        case ErrorCode.BrokerRefused:
        case ErrorCode.LimitExceeded:
        case ErrorCode.AuthDeadline:
        case ErrorCode.ReplayBusy:
        case ErrorCode.Internal:
          break;
      }
    }
    this.logger.error(
      `listing websockets failed: ${error instanceof Error ? error.message : String(error)}`,
    );
    return [HttpStatus.INTERNAL_SERVER_ERROR, 'internal'];
  }
}
