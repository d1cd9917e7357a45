import type { GatewayError } from './errors';
import type { BrokerKey, FamilyBinding, KazooMessage } from './families/event-family';
import type { ReplayHold } from './replay/live-hold';

/**
 * One connected client, whatever its protocol. Transports implement it; the core only ever
 * hands it events.
 */
export interface Session {
  /** Unique, unguessable id of the connection. */
  readonly id: string;
  /**
   * The client's address (`TRUSTED_PROXIES` decides whether `X-Forwarded-For` names it):
   * Crossbar lookups are budgeted per address as well as per connection.
   */
  readonly clientAddress?: string;
  /**
   * Sends one delivery: called once per delivery with every subscription of the session it
   * matched, in subscription order. Transports decide what a match is worth: socket.io clients
   * get the delivery once (Kazoo 3.x), Kazoo 4.x clients one frame per match (Kazoo 4.3).
   */
  send(matches: readonly EventMatch[]): void;
  /**
   * Sessions of a transport that sends a delivery once per connection and can send one event to
   * many connections at the cost of one (socket.io encodes a broadcast once). When set, the core
   * gives the group every such session whose first match carries the same event.
   */
  readonly group?: SessionGroup;
  /**
   * The token behind `bindings` of `accountId` was revoked or expired (`token_invalid`), may no
   * longer see the account (`account_forbidden`), or could not be checked for too long
   * (`auth_unavailable`): they are already unsubscribed. The connection stays open; the client
   * may subscribe again with a valid token.
   */
  authorizationLost?(accountId: string, bindings: readonly string[], error: GatewayError): void;
  /** Where the connection came from, for socket listings; never holds a token. */
  readonly origin?: SessionOrigin;
  /**
   * How logs name the connection (their `connection` field), when `id` is no secret. Unset,
   * logs name it by a tag of `id`: a socket.io 0.9 session id is its client's credential.
   */
  readonly logName?: string;
  /**
   * Set by transports whose clients may resume (socket.io 2–4, Kazoo 4.x): holds live events
   * while a replay of the log runs. Its `send` must offer live matches to `intercept` first.
   */
  readonly liveHold?: ReplayHold;
  /**
   * A subscribe succeeded: the connection is authenticated, also while its request still waits
   * (a resume queued behind other replays). Transports end its authentication deadline.
   */
  authorized?(): void;
}

/** What a transport knows of a connection when it opens, for `GET …/websockets` listings. */
export interface SessionOrigin {
  /** The client protocol: `socket.io`, `socket.io-0.9` or `kazoo-ws`. */
  readonly protocol: string;
  /** The client's address as the node saw it (a proxy's, behind one). */
  readonly source: string | undefined;
  /** When the connection opened, in ms since the epoch. */
  readonly connectedAt: number;
}

/** Sends one event to many sessions of the same transport at once. */
export interface SessionGroup {
  sendToAll(sessions: readonly Session[], event: OutboundEvent): void;
}

/** A client's subscription to one binding of one account. */
export interface Subscription {
  readonly session: Session;
  /** The subscribed account, or `ALL_ACCOUNTS` (`*`) for a superduper admin. */
  readonly accountId: string;
  /** Prefix of the family that owns the binding. */
  readonly family: string;
  readonly binding: FamilyBinding;
  /**
   * Broker keys held for this subscription; replaced when month-scoped keys roll over, only
   * through `SubscriptionRegistry.replaceKeys`, which keeps the per-account key counts.
   */
  readonly brokerKeys: readonly BrokerKey[];
  /** The account-scoped key Kazoo 4.x clients see as `subscription_key`. */
  readonly subscriptionKey: string;
  /** Free-form label and data a client may attach; kept for listings. */
  readonly name?: unknown;
  readonly metadata?: unknown;
  /** The account of the token that made the subscription (Kazoo's `auth_account_id`). */
  readonly authAccountId?: string;
  /** Rises with every subscription the node records: matches are sent in this order. */
  readonly order: number;
}

/** One family's reading of a delivery, shared by every session it goes to. */
export interface OutboundEvent {
  readonly family: string;
  /** The account the family read from the message (never `*`). */
  readonly accountId: string;
  /** Kazoo's event name (`Event-Name`). */
  readonly name: string;
  readonly key: string;
  readonly payload: KazooMessage;
  /** Name and payload for Kazoo 3.x clients (socket.io). */
  readonly legacyName: string;
  readonly legacyPayload: KazooMessage;
  /** The routing key Kazoo 4.x clients see. */
  readonly routingKey: string;
  /**
   * Where the event sits in the shared replay log (`REPLAY_WINDOW_S` > 0): opaque to clients,
   * sorts in log order. Absent when the node reads per-node queues.
   */
  readonly position?: string;
  /** The payload as Kazoo 4.x clients see it (public fields, normalized keys); computed once per event. */
  kazooData(): KazooMessage;
}

/** A subscription a delivery matched, with its family's reading of the delivery. */
export interface EventMatch {
  readonly subscription: Subscription;
  readonly event: OutboundEvent;
}
