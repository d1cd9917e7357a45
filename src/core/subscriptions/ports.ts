import type { BrokerKey } from '../families/event-family';

/**
 * Broker side of subscriptions: the node's queue of each key's exchange needs the key bound.
 * Implementations reference-count keys per (exchange, routing key), so the first acquirer binds
 * and the last releaser unbinds, whichever families asked for them.
 */
export interface BrokerBindings {
  /**
   * Resolves once every key is bound on the broker (or, while disconnected, recorded to be bound
   * on reconnect). Rejects with a `GatewayError` when the broker refuses a key; a rejected
   * acquire holds no references: there is nothing to release.
   */
  acquire(keys: readonly BrokerKey[]): Promise<void>;
  release(keys: readonly BrokerKey[]): void;
}
export const BROKER_BINDINGS = Symbol('BROKER_BINDINGS');

/** The token's identity as Crossbar reports it. */
export interface TokenIdentity {
  readonly accountId: string;
  /** Unix seconds at which the token stops being valid (JWT `exp` or Crossbar's), when known. */
  readonly exp?: number;
}

/** The connection asking; a `Session` is one. */
export interface Requester {
  /** Where the connection comes from: its address shares one budget of Crossbar lookups. */
  readonly clientAddress?: string;
}

/**
 * Decides whether a token may watch an account. Throws `GatewayError`s on refusal. `requester`
 * (the connection asking) and its address are charged for questions that need Crossbar, so
 * neither one connection nor many from one address can make it answer without bound.
 */
export interface AccountAuthorizer {
  authenticate(token: string, requester?: Requester): Promise<TokenIdentity>;
  authorize(token: string, accountId: string, requester?: Requester): Promise<TokenIdentity>;
  /**
   * Asks Crossbar again, whatever is cached, whether the token may still watch the account (`*`:
   * is still a superduper admin's). Throws `TokenInvalidError` (revoked, expired),
   * `AccountForbiddenError` (no longer allowed) or a temporary error (Crossbar unavailable).
   */
  recheck(token: string, accountId: string): Promise<TokenIdentity>;
}
export const ACCOUNT_AUTHORIZER = Symbol('ACCOUNT_AUTHORIZER');

/** Facts about accounts that families need to compute their keys. */
export interface AccountDirectory {
  /** The account's SIP realm, read with the client's token. */
  realmOf(token: string, accountId: string): Promise<string>;
}
export const ACCOUNT_DIRECTORY = Symbol('ACCOUNT_DIRECTORY');

/** Limits of the subscription engine, from the environment. */
export interface SubscriptionLimits {
  /** Most bindings one connection may hold, across accounts. */
  readonly maxBindingsPerConnection: number;
  /**
   * Most distinct broker keys the subscriptions of one account (or of `*`) may hold on the node,
   * across its connections: each is a binding on RabbitMQ.
   */
  readonly maxBrokerKeysPerAccount: number;
}
export const SUBSCRIPTION_LIMITS = Symbol('SUBSCRIPTION_LIMITS');

/** How live subscriptions' authorizations are re-checked, from the environment. */
export interface RevalidationSettings {
  /** Time between Crossbar re-checks of one (token, account). */
  readonly intervalMs: number;
  /** How long a (token, account) Crossbar cannot answer for keeps streaming after its last good check. */
  readonly outageGraceMs: number;
}
export const REVALIDATION_SETTINGS = Symbol('REVALIDATION_SETTINGS');
