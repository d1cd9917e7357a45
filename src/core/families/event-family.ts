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
   * already encoded. It need not mention the account: accounts are compared separately.
   */
  readonly pattern: string;
}

/**
 * The `account_id` of a superduper admin's subscription to every account (Kazoo 4.3's
 * `account_id: "*"`). Families see it as `BindingContext.accountId` and bind keys that cover all
 * accounts; the core still gives each event the account the family read from it.
 */
export const ALL_ACCOUNTS = '*';

/** What a family may know about the account a binding is subscribed for. */
export interface BindingContext {
  /** The subscribed account, or `ALL_ACCOUNTS` for a superduper admin's `*` subscription. */
  readonly accountId: string;
  /** The moment the keys are computed; month-scoped keys (MODB) derive from it. */
  readonly now: Date;
  /** The account's SIP realm, from Crossbar's account document (presence needs it). */
  realm(): Promise<string>;
}

/** What a family makes of one delivered message. */
export interface FamilyEvent {
  /** The account the event belongs to; `undefined` drops the event (it is never broadcast). */
  readonly accountId: string | undefined;
  /** Key matched against the subscriptions' patterns, normally the AMQP routing key. */
  readonly key: string;
  /** Kazoo's name of the event (its `Event-Name`), as Kazoo 4.x clients see it. */
  readonly name: string;
  /** The message as Kazoo published it. */
  readonly payload: KazooMessage;
  /**
   * The routing key Kazoo 4.x clients are shown, when the family re-keys events as Kazoo 4.x's
   * Blackhole did (call events become `call.<ACCOUNT>.<EVENT>.<CALL_ID>`); defaults to the
   * delivery's routing key.
   */
  readonly routingKey?: string;
  /** The event name Kazoo 3.x socket.io clients expect, when it differs from `name`. */
  readonly legacyName?: string;
  /** The payload Kazoo 3.x socket.io clients expect, when it differs from `payload`. */
  readonly legacyPayload?: KazooMessage;
}

/** Where a message came from. */
export interface Delivery {
  readonly exchange: string;
  readonly routingKey: string;
}

/**
 * An event family. `B` is the family's own parsed form of a binding; the core only reads
 * `binding` and `pattern` from it and hands it back to `brokerKeys`.
 *
 * @publicApi
 */
export interface EventFamily<B extends FamilyBinding = FamilyBinding> {
  /**
   * The bindings this family offers, in Kazoo 4.x's template form (`call.CHANNEL_CREATE.{CALL_ID}`),
   * listed by `GET /v2/websockets`.
   */
  readonly availableBindings: readonly string[];

  /**
   * Validates a client binding whose first word is this family's prefix (or an alias). Throws
   * `InvalidBindingError` with a message naming what is wrong.
   */
  parseBinding(binding: string): B;

  /** The keys the family's node queues need bound for `binding` in one account. */
  brokerKeys(
    binding: B,
    context: BindingContext,
  ): readonly BrokerKey[] | Promise<readonly BrokerKey[]>;

  /**
   * The account-scoped key Kazoo 4.x reports as an event's `subscription_key`
   * (`call.<ACCOUNT>.CHANNEL_CREATE.*`). Optional: the first broker key is used otherwise.
   */
  subscriptionKey?(binding: B, context: BindingContext): string;
}

/**
 * Reads one delivered message, or returns `undefined` when the family does not emit it. A family
 * marks one such method per exchange it reads with `@ExchangeSubscription(exchange)`.
 */
export type DescribeMessage = (
  message: KazooMessage,
  delivery: Delivery,
) => FamilyEvent | undefined;

/** One family's reader of one exchange, as the node's consumer of that exchange calls it. */
export interface ExchangeReader {
  /** Prefix of the family the reader belongs to. */
  readonly family: string;
  readonly describe: DescribeMessage;
}

export interface EventFamilyOptions {
  /** First word of the client bindings the family owns, e.g. `call`. */
  readonly prefix: string;
  /** Other first words that select this family (Kazoo 3.x's `doc_created.*.user.*` form). */
  readonly aliases?: readonly string[];
  /**
   * Set when `brokerKeys` depends on the month (keys naming an account MODB): the keys of live
   * subscriptions are then recomputed when the month changes.
   */
  readonly monthlyKeys?: boolean;
}
