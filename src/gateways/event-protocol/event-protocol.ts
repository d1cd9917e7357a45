import { Injectable, Logger } from '@nestjs/common';
import { plainToInstance } from 'class-transformer';
import { validateSync } from 'class-validator';
import { BadRequestError, GatewayError, toGatewayError } from '../../core/errors';
import type { Session } from '../../core/session';
import { ReplayService } from '../../core/replay/replay.service';
import { SubscriptionService } from '../../core/subscriptions/subscription.service';
import { EventRequestDto } from './event-requests.dto';
import { connectionLog, connectionName } from '../../logging/log-record';

/** The client events of Kazoo 3.x's event protocol. */
export type EventAction = 'subscribe' | 'unsubscribe';

/** Acknowledgement body, sent when the client passed a callback. */
export type EventAck =
  | {
      status: 'success';
      data: { subscribed: string[]; unsubscribed?: string[]; recovered?: boolean };
    }
  | { status: 'error'; data: { errors: string[]; code: string; temporary: boolean } };

/** What the client is told about a failed request, besides the ack. */
export interface EventFailure {
  readonly event: 'auth_failure' | 'error';
  readonly payload: { message: string; code: string };
}

/**
 * `auth_failure` for subscriptions dropped while live (their token was revoked or expired, or
 * may no longer see the account): 3.x clients already branch on this event to log in again.
 */
export interface AuthorizationLostEvent {
  readonly message: string;
  readonly code: string;
  readonly account_id: string;
  /** The bindings of `account_id` no longer delivered. */
  readonly unsubscribed: readonly string[];
}

export function authorizationLostEvent(
  accountId: string,
  bindings: readonly string[],
  error: GatewayError,
): AuthorizationLostEvent {
  return {
    message: error.message,
    code: error.code,
    account_id: accountId,
    unsubscribed: bindings,
  };
}

export interface EventOutcome {
  readonly ack: EventAck;
  readonly failure?: EventFailure;
}

/**
 * Kazoo 3.x's event protocol (design §1.1), shared by both socket.io generations: `subscribe`
 * and `unsubscribe` payloads in, acks and `auth_failure`/`error` events out. Transports only
 * carry the frames.
 */
@Injectable()
export class EventProtocol {
  private readonly logger = new Logger(EventProtocol.name);

  constructor(
    private readonly subscriptions: SubscriptionService,
    private readonly replays: ReplayService,
  ) {}

  /**
   * `resume` (socket.io 2–4): `subscribe` plus the last position the client saw; the ack is
   * the subscribe ack with `recovered`. Replayed events arrive before the ack.
   */
  async resume(session: Session, body: unknown): Promise<EventOutcome> {
    try {
      const request = parseRequest(body, 'resume');
      const bindings =
        request.bindings ?? (request.binding !== undefined ? [request.binding] : undefined);
      const { subscribed, recovered } = await this.replays.resume(session, {
        token: request.auth_token,
        accountId: request.account_id,
        bindings: bindings ?? [],
        name: request.name,
        metadata: request.metadata,
        position: request.position,
      });
      return { ack: { status: 'success', data: { subscribed, recovered } } };
    } catch (thrown) {
      return this.refusal(thrown);
    }
  }

  async handle(session: Session, action: EventAction, body: unknown): Promise<EventOutcome> {
    try {
      const request = parseRequest(body, action);
      const bindings =
        request.bindings ?? (request.binding !== undefined ? [request.binding] : undefined);
      if (action === 'subscribe') {
        const subscribed = await this.subscriptions.subscribe(session, {
          token: request.auth_token,
          accountId: request.account_id,
          bindings: bindings ?? [],
          name: request.name,
          metadata: request.metadata,
        });
        return { ack: { status: 'success', data: { subscribed } } };
      }
      const result = await this.subscriptions.unsubscribe(session, {
        token: request.auth_token,
        accountId: request.account_id,
        bindings,
      });
      return { ack: { status: 'success', data: result } };
    } catch (thrown) {
      return this.refusal(thrown, session);
    }
  }

  disconnect(session: Session): void {
    this.subscriptions.disconnect(session);
  }

  /**
   * A failure is reported both ways 3.x clients listen for: the event, and the ack if any.
   * Transports use it for what they refuse themselves (rate limit, deadline).
   */
  refusal(thrown: unknown, session?: Session): EventOutcome & { failure: EventFailure } {
    const error = toGatewayError(thrown);
    if (!(thrown instanceof GatewayError)) {
      const message = `request failed: ${thrown instanceof Error ? thrown.stack : String(thrown)}`;
      this.logger.error(
        session !== undefined ? connectionLog(connectionName(session), message) : message,
      );
    }
    return {
      ack: {
        status: 'error',
        data: { errors: [error.message], code: error.code, temporary: error.temporary },
      },
      failure: {
        event: error.isAuthFailure ? 'auth_failure' : 'error',
        payload: { message: error.message, code: error.code },
      },
    };
  }
}

function parseRequest(body: unknown, action: EventAction | 'resume'): EventRequestDto {
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
