import { Injectable } from '@nestjs/common';
import { ExchangeSubscription } from '../../amqp/family-subscription';
import {
  wordAndId,
  ALL_ACCOUNTS,
  EventFamilyProvider,
  InvalidBindingError,
  encodeRoutingWord,
  type BindingContext,
  type BrokerKey,
  type Delivery,
  type EventFamily,
  type FamilyBinding,
  type FamilyEvent,
  type KazooMessage,
} from '../../core';

export const PRESENCE_EXCHANGE = 'presence';

/**
 * The kinds a client may subscribe to, each with the `Event-Name` `kapi_presence` publishes it
 * under. Kind and name differ for two of them, and clients see the name.
 */
export const PRESENCE_EVENTS = {
  dialog: 'dialog_update',
  update: 'update',
  mwi_updates: 'mwi_update',
} as const;
export type PresenceKind = keyof typeof PRESENCE_EVENTS;
export const PRESENCE_KINDS = Object.keys(PRESENCE_EVENTS) as readonly PresenceKind[];

const isPresenceKind = (value: string | undefined): value is PresenceKind =>
  value !== undefined && Object.hasOwn(PRESENCE_EVENTS, value);

interface PresenceBinding extends FamilyBinding {
  readonly kind: PresenceKind;
}

/**
 * Presence events (Kazoo master's `bh_presence`): client bindings `presence.dialog.<CALL_ID|*>`,
 * `presence.update.<CALL_ID|*>` and `presence.mwi_updates.<USER|*>`, consumed from the `presence`
 * exchange where Kazoo publishes `<kind>.<encoded realm>.<encoded id>`.
 *
 * Presence messages name a SIP realm, never an account. The node binds
 * `<kind>.<encoded realm>.*` per subscribed account, and remembers which account each realm
 * belongs to so delivered messages can be given back to their account.
 */
@Injectable()
@EventFamilyProvider({ prefix: 'presence' })
export class PresenceFamily implements EventFamily<PresenceBinding> {
  readonly availableBindings = [
    'presence.dialog.{CALL_ID}',
    'presence.update.{CALL_ID}',
    'presence.mwi_updates.{USER}',
  ];

  /**
   * Encoded realm → the accounts Crossbar said own it. Only filled, never pruned: the family is
   * not told when subscriptions end, and an entry only ever maps a realm to an account a client
   * was authorized for. Bounded by the number of accounts that subscribed on this node.
   */
  private readonly realms = new Map<string, Set<string>>();

  /**
   * `presence.<KIND>.<ID|*>`; the id is a call-id or a SIP user, either may contain dots and `@`.
   * There is no `*` kind, and Kazoo's `bh_presence` judges the kind before anything else.
   */
  parseBinding(binding: string): PresenceBinding {
    const { word: kind, id } = wordAndId('presence', binding, {
      words: PRESENCE_KINDS,
      wordFirst: true,
    });
    return {
      binding,
      // The realm word is left to `*`: the core compares the account, which describe() derives
      // from the realm.
      pattern: `${kind}.*.${id}`,
      kind,
    };
  }

  /** `<kind>.<encoded realm>.*`: one key per account and kind serves every call or user. */
  async brokerKeys(binding: PresenceBinding, context: BindingContext): Promise<BrokerKey[]> {
    // Kazoo's presence keys name a realm, and "every account" has none: a `*` realm word would
    // deliver every tenant's presence, which the realm → account map below could not attribute.
    if (context.accountId === ALL_ACCOUNTS) {
      throw new InvalidBindingError(
        `${binding.binding} needs one account's realm: account id * has none`,
      );
    }
    const realm = encodeRoutingWord(await context.realm());
    // encodeRoutingWord passes `*` and `#` through: such a "realm" would bind every tenant's
    // presence to this account.
    if (realm === '' || realm === '*' || realm === '#') {
      throw new InvalidBindingError(`account ${context.accountId} has no usable realm`);
    }
    this.remember(realm, context.accountId);
    return [{ exchange: PRESENCE_EXCHANGE, routingKey: `${binding.kind}.${realm}.*` }];
  }

  @ExchangeSubscription(PRESENCE_EXCHANGE)
  describe(message: KazooMessage, delivery: Delivery): FamilyEvent | undefined {
    const [kind, realm] = delivery.routingKey.split('.');
    if (!isPresenceKind(kind) || !realm) return undefined;
    const name = message['Event-Name'];
    if (typeof name !== 'string' || name === '') return undefined;
    return {
      accountId: this.accountOf(realm),
      key: delivery.routingKey,
      name,
      payload: message,
    };
  }

  private remember(realm: string, accountId: string): void {
    const accounts = this.realms.get(realm);
    if (accounts) accounts.add(accountId);
    else this.realms.set(realm, new Set([accountId]));
  }

  /**
   * The account a realm belongs to, when exactly one is known. A realm claimed by several
   * accounts (a misconfiguration, or a realm moved between accounts) gives `undefined`, so the
   * core drops the event: tenant isolation beats delivery when the realm is ambiguous.
   */
  private accountOf(realm: string): string | undefined {
    const accounts = this.realms.get(realm);
    if (accounts?.size !== 1) return undefined;
    const [accountId] = accounts;
    return accountId;
  }
}
