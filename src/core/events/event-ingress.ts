import { Injectable, Logger } from '@nestjs/common';
import type { Delivery, ExchangeReader, FamilyEvent, KazooMessage } from '../families/event-family';
import { kazooEventData } from '../kazoo/normalize';
import type { EventMatch, OutboundEvent, Session, SessionGroup } from '../session';
import type { PatternBucket } from '../subscriptions/pattern-bucket';
import { SubscriptionRegistry } from '../subscriptions/subscription.registry';
import { Clock } from '../clock';
import { secretTag } from '../secret-tag';
import { EventStats, UNKNOWN_FAMILY } from './event-stats';

/** Seconds between Kazoo's epoch (year 0 of the Gregorian calendar) and Unix's. */
const GREGORIAN_UNIX_OFFSET_S = 62167219200;

/**
 * When Kazoo built the message, in Unix milliseconds: its `Timestamp` field, Gregorian seconds
 * that call events (and some others) carry. `Msg-ID` is not used: a call event's is
 * FreeSWITCH's timestamp of the channel event, not of the message, and other events' are ids.
 */
export function kazooTimestampMs(message: KazooMessage): number | undefined {
  const timestamp = message.Timestamp;
  if (typeof timestamp !== 'number' || !Number.isFinite(timestamp)) return undefined;
  if (timestamp <= GREGORIAN_UNIX_OFFSET_S) return undefined;
  return (timestamp - GREGORIAN_UNIX_OFFSET_S) * 1000;
}

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

/** One family's reading of a delivery, as every session it matches is sent it. */
export function outboundEvent(
  family: string,
  accountId: string,
  described: FamilyEvent,
  delivery: Delivery,
  position: string | undefined,
): OutboundEvent {
  let kazooData: KazooMessage | undefined;
  return {
    family,
    accountId,
    name: described.name,
    key: described.key,
    payload: described.payload,
    legacyName: described.legacyName ?? described.name,
    legacyPayload: described.legacyPayload ?? described.payload,
    routingKey: described.routingKey ?? delivery.routingKey,
    ...(position === undefined ? {} : { position }),
    kazooData: () => (kazooData ??= kazooEventData(described.payload)),
  };
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
    private readonly clock: Clock = new Clock(),
  ) {}

  /** `position`: where the message sits in the replay log, when the node reads the log. */
  ingest(
    readers: readonly ExchangeReader[],
    message: unknown,
    delivery: Delivery,
    position?: string,
  ): void {
    this.stats.countReceived(delivery.exchange);
    if (!isKazooMessage(message)) {
      this.stats.malformed++;
      this.stats.countDropped('malformed', UNKNOWN_FAMILY);
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
      if (!accountId) {
        this.stats.countDropped('without_account', reader.family);
        continue;
      }
      withAccount++;
      const event = outboundEvent(reader.family, accountId, described, delivery, position);
      // The key is split once per event; each pattern is matched once for all its subscribers.
      const keyWords = event.key.split('.');
      let matched = false;
      this.registry.forEachMatch(reader.family, accountId, keyWords, (bucket) => {
        matched = true;
        if (!first) first = { bucket, event };
        else (more ??= []).push({ bucket, event });
      });
      if (!matched) this.stats.countDropped('no_subscriber', reader.family);
    }
    if (read === 0) this.stats.countDropped('unread', UNKNOWN_FAMILY);
    if (read > 0 && withAccount === 0) {
      this.stats.droppedWithoutAccount++;
      this.logger.debug(`dropped ${delivery.exchange}::${delivery.routingKey}: no account id`);
    }
    if (!first) return;
    const publishedAtMs = kazooTimestampMs(message);
    // The common case: one pattern matched, each of its sessions once.
    if (!more && first.bucket.oneSubscriptionPerSession) {
      return this.dispatchBucket(first, publishedAtMs);
    }
    this.dispatch(this.matchesPerSession([first, ...(more ?? [])]), publishedAtMs);
  }

  /** Sends one bucket's subscribers the event, with the bucket's cached plan. */
  private dispatchBucket({ bucket, event }: Hit, publishedAtMs: number | undefined): void {
    const { grouped, direct } = bucket.dispatchPlan();
    for (const [group, sessions] of grouped) {
      this.deliver(
        () => group.sendToAll(sessions, event),
        event.family,
        sessions.length,
        publishedAtMs,
        'a group',
      );
    }
    for (const subscription of direct) {
      const session = subscription.session;
      this.deliver(
        () => session.send([{ subscription, event }]),
        event.family,
        1,
        publishedAtMs,
        sessionTag(session),
      );
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

  /** A session's matches go out as one delivery, counted under the family of the first. */
  private dispatch(matches: Map<Session, EventMatch[]>, publishedAtMs: number | undefined): void {
    // Sessions of a broadcasting transport that get the same event, per group.
    let grouped: Map<SessionGroup, Map<OutboundEvent, Session[]>> | undefined;
    for (const [session, list] of matches) {
      const group = session.group;
      if (!group) {
        this.deliver(
          () => session.send(list),
          list[0].event.family,
          1,
          publishedAtMs,
          sessionTag(session),
        );
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
          event.family,
          sessions.length,
          publishedAtMs,
          `group of ${sessions.length}`,
        );
      }
    }
  }

  private deliver(
    send: () => void,
    family: string,
    count: number,
    publishedAtMs: number | undefined,
    to: string,
  ): void {
    try {
      send();
    } catch (error) {
      // One broken session must not keep the event from the others.
      this.stats.countDropped('send_failed', family, count);
      this.logger.warn(`${to} failed to take an event: ${String(error)}`);
      return;
    }
    this.stats.countDelivered(family, count);
    if (publishedAtMs !== undefined) {
      // Clocks of Kazoo and this node disagree a little; a negative age means "just now".
      const ageS = Math.max(0, this.clock.now().getTime() - publishedAtMs) / 1000;
      this.stats.deliveryLatency.observe(ageS, count);
    }
  }
}
