import type { BrokerKey } from '../families/event-family';

/**
 * Broker side of subscriptions: the node queue of `family` needs `keys` bound. Implementations
 * reference-count keys so the first acquirer binds and the last releaser unbinds.
 */
export interface BrokerBindings {
  /**
   * Resolves once every key is bound on the broker (or recorded to be bound on reconnect).
   * A rejected acquire holds no references: there is nothing to release.
   */
  acquire(family: string, keys: readonly BrokerKey[]): Promise<void>;
  release(family: string, keys: readonly BrokerKey[]): void;
}
export const BROKER_BINDINGS = Symbol('BROKER_BINDINGS');

/** The token's identity as Crossbar reports it. */
export interface TokenIdentity {
  readonly accountId: string;
}

/** Decides whether a token may watch an account. Throws `GatewayError`s on refusal. */
export interface AccountAuthorizer {
  authenticate(token: string): Promise<TokenIdentity>;
  authorize(token: string, accountId: string): Promise<TokenIdentity>;
}
export const ACCOUNT_AUTHORIZER = Symbol('ACCOUNT_AUTHORIZER');

/** Facts about accounts that families need to compute their keys. */
export interface AccountDirectory {
  /** The account's SIP realm, read with the client's token. */
  realmOf(token: string, accountId: string): Promise<string>;
}
export const ACCOUNT_DIRECTORY = Symbol('ACCOUNT_DIRECTORY');
