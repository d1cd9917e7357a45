import type { BrokerKey, FamilyBinding, KazooMessage } from './families/event-family';

/**
 * One connected client, whatever its protocol. Transports implement it; the core only ever
 * hands it events.
 */
export interface Session {
  /** Unique, unguessable id of the connection. */
  readonly id: string;
  /** Sends one event. Called at most once per delivered event, however many bindings match. */
  send(event: OutboundEvent): void;
  /**
   * Sessions of a transport that can send one event to many connections at the cost of one
   * (socket.io encodes a broadcast once). When set, the core calls the group instead of `send`.
   */
  readonly group?: SessionGroup;
}

/** Sends one event to many sessions of the same transport at once. */
export interface SessionGroup {
  sendToAll(sessions: readonly Session[], event: Omit<OutboundEvent, 'matched'>): void;
}

/** A client's subscription to one binding of one account. */
export interface Subscription {
  readonly session: Session;
  readonly accountId: string;
  /** Prefix of the family that owns the binding. */
  readonly family: string;
  readonly binding: FamilyBinding;
  /** Broker keys held for this subscription; replaced when month-scoped keys roll over. */
  brokerKeys: readonly BrokerKey[];
  /** The account-scoped key Kazoo 4.x clients see as `subscription_key`. */
  readonly subscriptionKey: string;
  /** Free-form label and data a client may attach; kept for listings. */
  readonly name?: unknown;
  readonly metadata?: unknown;
}

/** An event on its way to one session. */
export interface OutboundEvent {
  readonly family: string;
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
  /** The payload as Kazoo 4.x clients see it (public fields, normalized keys); computed once per event. */
  kazooData(): KazooMessage;
  /** The session's subscriptions this event matched, in subscription order (at least one). */
  readonly matched: readonly Subscription[];
}
