/**
 * Stable error codes sent to clients. Codes never change meaning once released; clients may
 * branch on them. `temporary` errors mean "try the same request again later".
 */
export const ErrorCode = {
  /** The request is malformed: missing keys, wrong types. */
  BadRequest: 'bad_request',
  /** The binding names no known family or does not fit its family's grammar. */
  InvalidBinding: 'invalid_binding',
  /** No `auth_token` was given. */
  TokenRequired: 'token_required',
  /** Crossbar rejected the token (unknown, expired or revoked). */
  TokenInvalid: 'token_invalid',
  /** The account id is malformed or `*`. */
  InvalidAccount: 'invalid_account',
  /** The token is valid but may not see the requested account. */
  AccountForbidden: 'account_forbidden',
  /** Crossbar could not be reached or failed; nothing is known about the token. */
  AuthUnavailable: 'auth_unavailable',
  /**
   * RabbitMQ refused to bind a key the subscription needs (missing permissions, an exchange
   * that cannot be used). Temporary when the refusal may pass (the binding channel failed).
   */
  BrokerRefused: 'broker_refused',
  /** The connection asked too much too fast; the same request may succeed later. */
  RateLimited: 'rate_limited',
  /**
   * The connection did not subscribe successfully within `AUTH_DEADLINE_S` of opening; it is
   * closed. Connect again and subscribe sooner.
   */
  AuthDeadline: 'auth_deadline',
  /** A limit of the node was reached (bindings per connection, …); the request changed nothing. */
  LimitExceeded: 'limit_exceeded',
  /**
   * A resume was refused for now: the connection already has one under way, or the node has
   * too many waiting. Resume (or subscribe) again later.
   */
  ReplayBusy: 'replay_busy',
  /** An unexpected failure inside Blackhole. */
  Internal: 'internal',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Base of every error Blackhole reports to a client. `message` is safe to show: it never holds a token. */
export class GatewayError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly temporary = false,
  ) {
    super(message);
    this.name = 'GatewayError';
  }

  /** True for errors about the client's credentials, which 3.x clients expect as `auth_failure`. */
  get isAuthFailure(): boolean {
    return this.code === ErrorCode.TokenRequired || this.code === ErrorCode.TokenInvalid;
  }
}

export class BadRequestError extends GatewayError {
  constructor(message: string) {
    super(ErrorCode.BadRequest, message);
    this.name = 'BadRequestError';
  }
}

export class InvalidBindingError extends GatewayError {
  constructor(message: string) {
    super(ErrorCode.InvalidBinding, message);
    this.name = 'InvalidBindingError';
  }
}

/**
 * Kazoo's text for a binding that does not fit its family's grammar:
 * `invalid format for <family> subscription : <words after the first, joined by ", ">`.
 */
export function invalidBindingFormat(family: string, binding: string): InvalidBindingError {
  const keys = binding.split('.').slice(1).join(', ');
  return new InvalidBindingError(`invalid format for ${family} subscription : ${keys}`);
}

export class TokenRequiredError extends GatewayError {
  constructor() {
    super(ErrorCode.TokenRequired, 'authentication token required');
    this.name = 'TokenRequiredError';
  }
}

export class TokenInvalidError extends GatewayError {
  constructor() {
    // Kazoo 4.x appends the token to this text; we never echo credentials.
    super(ErrorCode.TokenInvalid, 'failed to authenticate token');
    this.name = 'TokenInvalidError';
  }
}

export class InvalidAccountError extends GatewayError {
  constructor(message: string) {
    super(ErrorCode.InvalidAccount, message);
    this.name = 'InvalidAccountError';
  }
}

export class AccountForbiddenError extends GatewayError {
  constructor() {
    super(ErrorCode.AccountForbidden, 'unauthorized account id');
    this.name = 'AccountForbiddenError';
  }
}

export class AuthUnavailableError extends GatewayError {
  constructor(readonly reason: string) {
    super(ErrorCode.AuthUnavailable, 'authentication service unavailable', true);
    this.name = 'AuthUnavailableError';
  }
}

/**
 * RabbitMQ would not bind a key a subscription needs. The message names the exchange and the
 * broker's reason, never a client's token; nothing of the request was kept.
 */
export class BrokerRefusedError extends GatewayError {
  constructor(message: string, temporary: boolean) {
    super(ErrorCode.BrokerRefused, message, temporary);
    this.name = 'BrokerRefusedError';
  }
}

export class RateLimitedError extends GatewayError {
  constructor(message: string) {
    super(ErrorCode.RateLimited, message, true);
    this.name = 'RateLimitedError';
  }
}

export class AuthDeadlineError extends GatewayError {
  constructor() {
    super(ErrorCode.AuthDeadline, 'authentication deadline');
    this.name = 'AuthDeadlineError';
  }
}

export class ReplayBusyError extends GatewayError {
  constructor(message: string) {
    super(ErrorCode.ReplayBusy, message, true);
    this.name = 'ReplayBusyError';
  }
}

export class LimitExceededError extends GatewayError {
  constructor(message: string) {
    super(ErrorCode.LimitExceeded, message);
    this.name = 'LimitExceededError';
  }
}

/** Turns anything thrown into something safe to send; unknown errors become a generic message. */
export function toGatewayError(error: unknown): GatewayError {
  return error instanceof GatewayError
    ? error
    : new GatewayError(ErrorCode.Internal, 'internal error', true);
}
