import { Injectable, Logger } from '@nestjs/common';
import type { Delivery, ExchangeReader, KazooMessage } from '../families/event-family';
import { kazooEventData } from '../kazoo/normalize';
import type { EventMatch, OutboundEvent, Session, SessionGroup } from '../session';
import type { PatternBucket } from '../subscriptions/pattern-bucket';
import { SubscriptionRegistry } from '../subscriptions/subscription.registry';
import { secretTag } from '../secret-tag';
import { EventStats } from './event-stats';

/** Raised for a delivery that is not a Kazoo message; the consumer drops it without requeue. */
export class MalformedEventError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MalformedEventError';
  }
}

/** What a consumer hands over when a body is not valid (possibly gzipped) JSON. */
export class UnreadableMessage {
  constructor(readonly reason: string) {}
}

/** A Kazoo message is a plain JSON object; arrays, scalars and `UnreadableMessage`s are not. */
export function isKazooMessage(value: unknown): value is KazooMessage {
  return (
    typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype
  );
}

const bySubscriptionOrder = (a: EventMatch, b: EventMatch): number =>
  a.subscription.order - b.subscription.order;

/** How a session is named in logs: some transports' session ids are credentials (socket.io 0.9). */
const sessionTag = (session: Session): string => `session ${secretTag(session.id)}`;

/** A pattern bucket that matched a delivery, and its family's reading of the delivery. */
interface Hit {
  readonly bucket: PatternBucket;
  readonly event: OutboundEvent;
}

/**
 * Where every delivery enters the core, once: the node consumes each exchange through one
 * queue, so a message reaches the node once however many keys or families want it. Each family
 * reading the exchange describes it; an event goes to a subscription only when the family read
 * the subscription's account from it and the topic pattern agrees. The matches of a session are
 * merged across families and handed to it in one call, in subscription order.
 *
 * Nothing here tells deliveries apart by id: Kazoo's `Msg-ID` is not an identity (a call
 * event's is FreeSWITCH's microsecond timestamp, shared by other legs, calls and families).
 */
@Injectable()
export class EventIngress {
  private readonly logger = new Logger(EventIngress.name);

  constructor(
    private readonly registry: SubscriptionRegistry,
    private readonly stats: EventStats,
  ) {}

  ingest(readers: readonly ExchangeReader[], message: unknown, delivery: Delivery): void {
    this.stats.received++;
    if (!isKazooMessage(message)) {
      this.stats.malformed++;
      const reason =
        message instanceof UnreadableMessage ? message.reason : 'the body is not a JSON object';
      throw new MalformedEventError(`${delivery.exchange}::${delivery.routingKey}: ${reason}`);
    }
    // Pattern buckets whose pattern matches, each with its family's reading of the message.
    let first: Hit | undefined;
    let more: Hit[] | undefined;
    let read = 0;
    let withAccount = 0;
    for (const reader of readers) {
      const described = reader.describe(message, delivery);
      if (!described) continue;
      read++;
      const accountId = described.accountId;
      if (!accountId) continue;
      withAccount++;
      let kazooData: KazooMessage | undefined;
      const event: OutboundEvent = {
        family: reader.family,
        accountId,
        name: described.name,
        key: described.key,
        payload: described.payload,
        legacyName: described.legacyName ?? described.name,
        legacyPayload: described.legacyPayload ?? described.payload,
        routingKey: described.routingKey ?? delivery.routingKey,
        kazooData: () => (kazooData ??= kazooEventData(described.payload)),
      };
      // The key is split once per event; each pattern is matched once for all its subscribers.
      const keyWords = event.key.split('.');
      this.registry.forEachMatch(reader.family, accountId, keyWords, (bucket) => {
        if (!first) first = { bucket, event };
        else (more ??= []).push({ bucket, event });
      });
    }
    if (read > 0 && withAccount === 0) {
      this.stats.droppedWithoutAccount++;
      this.logger.debug(`dropped ${delivery.exchange}::${delivery.routingKey}: no account id`);
    }
    if (!first) return;
    // The common case: one pattern matched, each of its sessions once.
    if (!more && first.bucket.oneSubscriptionPerSession) return this.dispatchBucket(first);
    this.dispatch(this.matchesPerSession([first, ...(more ?? [])]));
  }

  /** Sends one bucket's subscribers the event, with the bucket's cached plan. */
  private dispatchBucket({ bucket, event }: Hit): void {
    const { grouped, direct } = bucket.dispatchPlan();
    for (const [group, sessions] of grouped) {
      this.deliver(() => group.sendToAll(sessions, event), sessions.length, 'a group');
    }
    for (const subscription of direct) {
      const session = subscription.session;
      this.deliver(() => session.send([{ subscription, event }]), 1, sessionTag(session));
    }
  }

  /** Every session's matches across the hits, in subscription order. */
  private matchesPerSession(hits: readonly Hit[]): Map<Session, EventMatch[]> {
    const matches = new Map<Session, EventMatch[]>();
    let mixed = false;
    for (const { bucket, event } of hits) {
      for (const subscription of bucket.subscriptions) {
        const match: EventMatch = { subscription, event };
        const list = matches.get(subscription.session);
        if (!list) {
          matches.set(subscription.session, [match]);
          continue;
        }
        // Subscriptions come in order within a bucket; another bucket can interleave.
        if (list[list.length - 1].subscription.order > subscription.order) mixed = true;
        list.push(match);
      }
    }
    if (mixed)
      for (const list of matches.values()) if (list.length > 1) list.sort(bySubscriptionOrder);
    return matches;
  }

  private dispatch(matches: Map<Session, EventMatch[]>): void {
    // Sessions of a broadcasting transport that get the same event, per group.
    let grouped: Map<SessionGroup, Map<OutboundEvent, Session[]>> | undefined;
    for (const [session, list] of matches) {
      const group = session.group;
      if (!group) {
        this.deliver(() => session.send(list), 1, sessionTag(session));
        continue;
      }
      grouped ??= new Map();
      let byEvent = grouped.get(group);
      if (!byEvent) {
        byEvent = new Map();
        grouped.set(group, byEvent);
      }
      const event = list[0].event;
      const members = byEvent.get(event);
      if (members) members.push(session);
      else byEvent.set(event, [session]);
    }
    if (!grouped) return;
    for (const [group, byEvent] of grouped) {
      for (const [event, sessions] of byEvent) {
        this.deliver(
          () => group.sendToAll(sessions, event),
          sessions.length,
          `group of ${sessions.length}`,
        );
      }
    }
  }

  private deliver(send: () => void, count: number, to: string): void {
    try {
      send();
      this.stats.delivered += count;
    } catch (error) {
      // One broken session must not keep the event from the others.
      this.logger.warn(`${to} failed to take an event: ${String(error)}`);
    }
  }
}
