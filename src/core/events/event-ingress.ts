import { Injectable, Logger } from '@nestjs/common';
import type { Delivery, EventFamily, FamilyBinding, KazooMessage } from '../families/event-family';
import { FamilyRegistry } from '../families/family.registry';
import { textField } from '../kazoo/message-fields';
import { kazooEventData } from '../kazoo/normalize';
import type { Session, SessionGroup } from '../session';
import { SubscriptionRegistry } from '../subscriptions/subscription.registry';
import { topicWordsMatch } from '../topics/topic-matcher';
import { EventStats } from './event-stats';
import { RecentIds } from './recent-ids';

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

/**
 * Where every delivered message enters the core. Each message is read once by its family,
 * its account is determined, and only then is it matched: an event goes to a subscription only
 * when both the account and the topic pattern agree, and to each session once.
 */
@Injectable()
export class EventIngress {
  private readonly logger = new Logger(EventIngress.name);
  /** Per session, so one message reaching it through two families is sent once. */
  private readonly recentIds = new WeakMap<Session, RecentIds>();
  private readonly patternWords = new WeakMap<FamilyBinding, readonly string[]>();

  constructor(
    private readonly families: FamilyRegistry,
    private readonly registry: SubscriptionRegistry,
    private readonly stats: EventStats,
  ) {}

  ingest(family: EventFamily, message: unknown, delivery: Delivery): void {
    this.stats.received++;
    if (!isKazooMessage(message)) {
      this.stats.malformed++;
      const reason =
        message instanceof UnreadableMessage ? message.reason : 'the body is not a JSON object';
      throw new MalformedEventError(`${delivery.exchange}::${delivery.routingKey}: ${reason}`);
    }
    const prefix = this.families.prefixOf(family);
    const event = family.describe(message, delivery);
    if (!event) return;
    if (!event.accountId) {
      this.stats.droppedWithoutAccount++;
      this.logger.debug(`dropped ${delivery.exchange}::${delivery.routingKey}: no account id`);
      return;
    }
    const accountId = event.accountId;
    // The key is split once per event, each pattern once per subscription.
    const keyWords = event.key.split('.');
    const recipients = this.registry.match(prefix, accountId, (subscription) =>
      topicWordsMatch(this.patternWordsOf(subscription.binding), keyWords),
    );
    let kazooData: KazooMessage | undefined;
    const shared = {
      family: prefix,
      accountId,
      name: event.name,
      key: event.key,
      payload: event.payload,
      legacyName: event.legacyName ?? event.name,
      legacyPayload: event.legacyPayload ?? event.payload,
      routingKey: event.routingKey ?? delivery.routingKey,
      kazooData: () => (kazooData ??= kazooEventData(event.payload)),
    };
    const messageId = textField(event.payload, 'Msg-ID');
    const grouped = new Map<SessionGroup, Session[]>();
    for (const [session, matched] of recipients) {
      if (messageId !== undefined && !this.recentIdsOf(session).add(messageId)) continue;
      if (session.group) {
        const members = grouped.get(session.group);
        if (members) members.push(session);
        else grouped.set(session.group, [session]);
        continue;
      }
      this.deliver(() => session.send({ ...shared, matched }), 1, session.id);
    }
    for (const [group, sessions] of grouped) {
      this.deliver(
        () => group.sendToAll(sessions, shared),
        sessions.length,
        `group of ${sessions.length}`,
      );
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

  private recentIdsOf(session: Session): RecentIds {
    let recent = this.recentIds.get(session);
    if (!recent) {
      recent = new RecentIds();
      this.recentIds.set(session, recent);
    }
    return recent;
  }
}
