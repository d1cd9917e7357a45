/**
 * The contract an event family implements: Kazoo's `bh_*` modules, as Nest providers.
 * Everything a family exchanges with the core is plain data; families never see sockets,
 * transports or the broker connection.
 */

/** A Kazoo message body as published on RabbitMQ: a JSON object with Kazoo's `Header-Case` keys. */
export type KazooMessage = { readonly [key: string]: unknown };

/** One key the node queue of a family must be bound with. */
export interface BrokerKey {
  readonly exchange: string;
  readonly routingKey: string;
}

/** A client binding a family accepted, in the family's own terms. */
export interface FamilyBinding {
  /** The binding as the client wrote it; echoed back in replies. */
  readonly binding: string;
  /**
   * AMQP topic pattern matched against `FamilyEvent.key` of delivered events, with client ids
   * already encoded. It never needs to mention the account: accounts are compared separately.
   */
  readonly pattern: string;
  /** Broker keys this binding needs on the family's node queue. */
  readonly brokerKeys: readonly BrokerKey[];
}

/** What a family makes of one delivered message. */
export interface FamilyEvent {
  /** The account the event belongs to; `undefined` drops the event (it is never broadcast). */
  readonly accountId: string | undefined;
  /** Key matched against the subscriptions' patterns, normally the AMQP routing key. */
  readonly key: string;
  /** Event name sent to socket.io clients (`CHANNEL_CREATE`, `participants_event`, …). */
  readonly name: string;
  /** Payload sent to socket.io clients. */
  readonly payload: KazooMessage;
}

/** Where a message came from. */
export interface Delivery {
  readonly exchange: string;
  readonly routingKey: string;
}

export interface EventFamily {
  /**
   * Parses a client binding whose first word is this family's prefix. Throws
   * `InvalidBindingError` with a message naming the binding when it is not acceptable.
   */
  parseBinding(binding: string): FamilyBinding;

  /** Interprets a delivered message, or returns `undefined` when the family does not emit it. */
  describe(message: KazooMessage, delivery: Delivery): FamilyEvent | undefined;
}

export interface EventFamilyOptions {
  /** First word of the client bindings the family owns, e.g. `call`. */
  readonly prefix: string;
}
