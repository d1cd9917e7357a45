import { Injectable, Logger } from '@nestjs/common';
import type {
  Delivery,
  ExchangeReader,
  FamilyBinding,
  KazooMessage,
} from '../families/event-family';
import { kazooEventData } from '../kazoo/normalize';
import type { EventMatch, OutboundEvent, Session, SessionGroup } from '../session';
import { SubscriptionRegistry } from '../subscriptions/subscription.registry';
import { topicWordsMatch } from '../topics/topic-matcher';
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
  private readonly patternWords = new WeakMap<FamilyBinding, readonly string[]>();

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
    const matches = new Map<Session, EventMatch[]>();
    let read = 0;
    let withAccount = 0;
    let mixed = false;
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
      // The key is split once per event, each pattern once per subscription.
      const keyWords = event.key.split('.');
      this.registry.forEachCandidate(reader.family, accountId, (subscription) => {
        if (!topicWordsMatch(this.patternWordsOf(subscription.binding), keyWords)) return;
        const match: EventMatch = { subscription, event };
        const list = matches.get(subscription.session);
        if (!list) {
          matches.set(subscription.session, [match]);
          return;
        }
        // Candidates come in order within one family and account; a second family, or the
        // superduper `*` subscriptions, can interleave.
        if (list[list.length - 1].subscription.order > subscription.order) mixed = true;
        list.push(match);
      });
    }
    if (read > 0 && withAccount === 0) {
      this.stats.droppedWithoutAccount++;
      this.logger.debug(`dropped ${delivery.exchange}::${delivery.routingKey}: no account id`);
    }
    if (matches.size > 0) this.dispatch(matches, mixed);
  }

  private dispatch(matches: Map<Session, EventMatch[]>, mixed: boolean): void {
    // Sessions of a broadcasting transport that get the same event, per group.
    let grouped: Map<SessionGroup, Map<OutboundEvent, Session[]>> | undefined;
    for (const [session, list] of matches) {
      if (mixed && list.length > 1) list.sort(bySubscriptionOrder);
      const group = session.group;
      if (!group) {
        this.deliver(() => session.send(list), 1, session.id);
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

  private patternWordsOf(binding: FamilyBinding): readonly string[] {
    let words = this.patternWords.get(binding);
    if (!words) {
      words = binding.pattern.split('.');
      this.patternWords.set(binding, words);
    }
    return words;
  }
}
