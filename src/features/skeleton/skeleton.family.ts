import { Injectable } from '@nestjs/common';
import { ExchangeSubscription } from '../../amqp/family-subscription';
import {
  accountWord,
  wordAndId,
  textField,
  EventFamilyProvider,
  type BindingContext,
  type BrokerKey,
  type Delivery,
  type EventFamily,
  type FamilyBinding,
  type FamilyEvent,
  type KazooMessage,
} from '../../core';

/*
 * The copy-me family (Kazoo's `bh_skel`). It is complete and tested; rename `skeleton`, pick
 * your exchange and events, and register your module (docs/writing-a-family.md).
 *
 * What it serves: messages published on the `skeleton` topic exchange with the routing key
 * `skeleton.<EVENT>.<ACCOUNT_ID>.<encoded ID>` and a JSON body carrying `Event-Name` and
 * `Account-ID`. Clients bind `skeleton.<EVENT|*>.<ID|*>`.
 */

/** The exchange the family consumes. Kazoo declares its exchanges topic, non-durable. */
export const SKELETON_EXCHANGE = 'skeleton';

/** The events clients may ask for; anything else is refused at subscribe time. */
export const SKELETON_EVENTS = ['created', 'updated', 'deleted'] as const;
type SkeletonEvent = (typeof SKELETON_EVENTS)[number];

const isSkeletonEvent = (value: unknown): value is SkeletonEvent =>
  typeof value === 'string' && (SKELETON_EVENTS as readonly string[]).includes(value);

/** A parsed binding: what `brokerKeys` needs later, plus the two fields the core reads. */
interface SkeletonBinding extends FamilyBinding {
  readonly event: SkeletonEvent | '*';
}

@Injectable()
@EventFamilyProvider({ prefix: 'skeleton' })
export class SkeletonFamily implements EventFamily<SkeletonBinding> {
  /** Listed by `GET /v2/websockets`, in Kazoo's template form. */
  readonly availableBindings = SKELETON_EVENTS.map((event) => `skeleton.${event}.{ID}`);

  /**
   * Runs before any Crossbar call: accept exactly your documented forms and refuse the rest with
   * an `InvalidBindingError` naming the binding. `wordAndId` reads `skeleton.<EVENT|*>.<ID|*>`
   * with Kazoo's texts: an unknown event, a `#`, a missing id or a wildcard inside the id
   * (`skeleton.created.*.*`) are refused; the id may contain dots and comes back encoded.
   */
  parseBinding(binding: string): SkeletonBinding {
    const { word: event, id } = wordAndId('skeleton', binding, {
      words: SKELETON_EVENTS,
      anyWord: true,
    });
    return {
      binding,
      // Matched against `FamilyEvent.key`; the account word is left open because the core
      // compares accounts itself before it looks at patterns.
      pattern: `skeleton.${event}.*.${id}`,
      event,
    };
  }

  /**
   * Keys bound on the node queue while someone holds the binding. Putting the account in the
   * key keeps other tenants' traffic off this node. `accountWord` gives `*` for a superduper
   * admin's `ALL_ACCOUNTS` subscription (every account) and refuses anything that is not an
   * account id. Keys are reference-counted by the core.
   */
  brokerKeys(binding: SkeletonBinding, context: BindingContext): BrokerKey[] {
    return [
      {
        exchange: SKELETON_EXCHANGE,
        routingKey: `skeleton.${binding.event}.${accountWord(context.accountId)}.*`,
      },
    ];
  }

  /** Reads a delivery once: its account (never guessed), its name and what clients get. */
  @ExchangeSubscription(SKELETON_EXCHANGE)
  describe(message: KazooMessage, delivery: Delivery): FamilyEvent | undefined {
    const name = message['Event-Name'];
    if (!isSkeletonEvent(name)) return undefined;
    return {
      accountId: textField(message, 'Account-ID'),
      key: delivery.routingKey,
      name,
      payload: message,
    };
  }
}
