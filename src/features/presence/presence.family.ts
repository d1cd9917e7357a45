import {
  Inject,
  Injectable,
  Logger,
  OnApplicationBootstrap,
  Optional,
  OnApplicationShutdown,
} from '@nestjs/common';
import { ExchangeSubscription } from '../../amqp/family-subscription';
import { Environment } from '../../config/environment';
import {
  BROKER_BINDINGS,
  Clock,
  SubscriptionRegistry,
  type BrokerBindings,
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
  GatewayError,
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

const isPresenceBinding = (binding: FamilyBinding): binding is PresenceBinding =>
  isPresenceKind((binding as Partial<PresenceBinding>).kind);

/**
 * A claim no subscription holds yet is kept this long: the family learns the realm before the
 * core records the subscription, and a sweep in between must not forget it.
 */
export const PENDING_CLAIM_MS = 60_000;

/** What Crossbar last said about an account's realm. */
interface RealmClaim {
  readonly accountId: string;
  /** The encoded realm Crossbar last confirmed; `undefined` once it no longer does (stale). */
  realm: string | undefined;
  /** Reads the realm again, with the token of the account's latest subscribe. */
  lookup: () => Promise<string>;
  /** When a subscribe last made the claim. */
  claimedAt: number;
  /** A check in flight, shared by whoever asks meanwhile. */
  checking: Promise<void> | undefined;
}

/**
 * Presence events (Kazoo master's `bh_presence`): client bindings `presence.dialog.<CALL_ID|*>`,
 * `presence.update.<CALL_ID|*>` and `presence.mwi_updates.<USER|*>`, consumed from the `presence`
 * exchange where Kazoo publishes `<kind>.<encoded realm>.<encoded id>`.
 *
 * Presence messages name a SIP realm, never an account. The node binds
 * `<kind>.<encoded realm>.*` per subscribed account, and keeps, per account, the realm Crossbar
 * last gave it, so delivered messages can be given back to their account.
 *
 * Ownership follows Crossbar: every `PRESENCE_REALM_CHECK_S`, and at once for the accounts
 * holding a realm another account's subscribe claims, each account's realm is read again with
 * the token of its latest subscribe. A realm that moved moves the account's keys with it; a realm
 * two accounts claim delivers to neither; an account whose realm Crossbar no longer confirms
 * (token expired, access lost) delivers nothing until it subscribes again. Claims of accounts
 * that hold no presence subscription any more are forgotten at the next check.
 */
@Injectable()
@EventFamilyProvider({ prefix: 'presence' })
export class PresenceFamily
  implements EventFamily<PresenceBinding>, OnApplicationBootstrap, OnApplicationShutdown
{
  private readonly logger = new Logger(PresenceFamily.name);
  readonly availableBindings = [
    'presence.dialog.{CALL_ID}',
    'presence.update.{CALL_ID}',
    'presence.mwi_updates.{USER}',
  ];

  /** Account → what Crossbar last said its realm is. */
  private readonly claims = new Map<string, RealmClaim>();
  /** Encoded realm → the accounts whose confirmed claim names it (an index of `claims`). */
  private readonly realms = new Map<string, Set<string>>();
  private timer: NodeJS.Timeout | undefined;
  private sweeping: Promise<void> | undefined;

  /**
   * Without the registry and the broker (a family built by hand, as in unit specs) realms are
   * still checked when another account claims them, but keys are not moved and nothing is swept.
   */
  constructor(
    @Optional() private readonly registry?: SubscriptionRegistry,
    @Optional() @Inject(BROKER_BINDINGS) private readonly broker?: BrokerBindings,
    @Optional() private readonly env?: Environment,
    @Optional() private readonly clock: Clock = new Clock(),
  ) {}

  onApplicationBootstrap(): void {
    if (!this.env) return;
    this.timer = setInterval(() => {
      this.checkRealms().catch((error: unknown) =>
        this.logger.error(`checking presence realms failed: ${messageOf(error)}`),
      );
    }, this.env.PRESENCE_REALM_CHECK_S * 1000);
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

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
    const realm = usableRealm(await context.realm());
    if (realm === undefined) {
      throw new InvalidBindingError(`account ${context.accountId} has no usable realm`);
    }
    this.claim(context.accountId, realm, context.realm.bind(context));
    return [keyFor(binding.kind, realm)];
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

  /**
   * Reads the realm of every account holding a presence subscription again, moves keys whose
   * realm moved, and forgets claims no subscription needs. Runs every `PRESENCE_REALM_CHECK_S`;
   * a call while one runs waits for that one.
   */
  checkRealms(): Promise<void> {
    this.sweeping ??= this.sweep().finally(() => {
      this.sweeping = undefined;
    });
    return this.sweeping;
  }

  private async sweep(): Promise<void> {
    if (!this.registry) return;
    const live = new Set(this.registry.ofFamily('presence').map((s) => s.accountId));
    const now = this.clock.now().getTime();
    for (const claim of [...this.claims.values()]) {
      if (live.has(claim.accountId) || now - claim.claimedAt < PENDING_CLAIM_MS) continue;
      this.claims.delete(claim.accountId);
      this.index(claim.accountId, claim.realm, undefined);
    }
    // One account at a time: a node with many tenants must not burst Crossbar.
    for (const accountId of live) await this.recheck(accountId);
  }

  /** Records what a subscribe learned; accounts already holding the realm are checked at once. */
  private claim(accountId: string, realm: string, lookup: () => Promise<string>): void {
    const now = this.clock.now().getTime();
    const claim = this.claims.get(accountId);
    if (claim) {
      claim.lookup = lookup;
      claim.claimedAt = now;
      if (claim.realm !== realm) {
        this.setRealm(claim, realm);
        // The account's earlier subscriptions still listen on the realm it had.
        this.moveKeys(accountId, realm).catch((error: unknown) =>
          this.logger.error(`moving the keys of ${accountId} failed: ${messageOf(error)}`),
        );
      }
    } else {
      const fresh: RealmClaim = {
        accountId,
        realm: undefined,
        lookup,
        claimedAt: now,
        checking: undefined,
      };
      this.claims.set(accountId, fresh);
      this.setRealm(fresh, realm);
    }
    // Until they are checked the realm is ambiguous, and delivers to no one.
    for (const holder of this.realms.get(realm) ?? []) {
      if (holder === accountId) continue;
      this.recheck(holder).catch((error: unknown) =>
        this.logger.error(`checking the realm of ${holder} failed: ${messageOf(error)}`),
      );
    }
  }

  /** Asks Crossbar for the account's realm again and follows the answer. */
  private recheck(accountId: string): Promise<void> {
    const claim = this.claims.get(accountId);
    if (!claim) return Promise.resolve();
    claim.checking ??= this.confirm(claim).finally(() => {
      claim.checking = undefined;
    });
    return claim.checking;
  }

  private async confirm(claim: RealmClaim): Promise<void> {
    let realm: string | undefined;
    try {
      realm = usableRealm(await claim.lookup());
    } catch (error) {
      if (error instanceof GatewayError && error.temporary) {
        // Crossbar is unreachable: what it said last still stands, and is asked again next time.
        this.logger.warn(`realm of ${claim.accountId} not checked: ${error.message}`);
        return;
      }
      realm = undefined;
    }
    if (this.claims.get(claim.accountId) !== claim) return;
    if (realm === undefined && claim.realm !== undefined) {
      this.logger.warn(
        `realm of ${claim.accountId} no longer confirmed by Crossbar: its presence events stop until it subscribes again`,
      );
    }
    this.setRealm(claim, realm);
    if (realm !== undefined) await this.moveKeys(claim.accountId, realm);
  }

  /**
   * Rebinds the account's presence subscriptions on `realm`: new keys are bound before old ones
   * are released, as the core does for monthly keys, so nothing of the new realm is missed.
   */
  private async moveKeys(accountId: string, realm: string): Promise<void> {
    const { registry, broker } = this;
    if (!registry || !broker) return;
    for (const subscription of registry.ofFamily('presence')) {
      if (subscription.accountId !== accountId || !isPresenceBinding(subscription.binding)) {
        continue;
      }
      const keys = [keyFor(subscription.binding.kind, realm)];
      const previous = subscription.brokerKeys;
      if (previous.length === 1 && previous[0].routingKey === keys[0].routingKey) continue;
      try {
        await broker.acquire(keys);
      } catch (error) {
        // The subscription keeps its old keys, whose events now go to no one; next check retries.
        this.logger.warn(
          `moving ${subscription.binding.binding} of ${accountId}: ${messageOf(error)}`,
        );
        continue;
      }
      if (!registry.contains(subscription) || subscription.brokerKeys !== previous) {
        // Unsubscribed (or moved by a concurrent check) meanwhile: drop what was just taken.
        broker.release(keys);
        continue;
      }
      registry.replaceKeys(subscription, keys);
      broker.release(previous);
    }
  }

  private setRealm(claim: RealmClaim, realm: string | undefined): void {
    if (claim.realm === realm) return;
    this.index(claim.accountId, claim.realm, realm);
    claim.realm = realm;
  }

  private index(accountId: string, from: string | undefined, to: string | undefined): void {
    if (from !== undefined) {
      const accounts = this.realms.get(from);
      accounts?.delete(accountId);
      if (accounts?.size === 0) this.realms.delete(from);
    }
    if (to !== undefined) {
      const accounts = this.realms.get(to);
      if (accounts) accounts.add(accountId);
      else this.realms.set(to, new Set([accountId]));
    }
  }

  /** Accounts with a claim, and realms indexed: what the family holds, for tests and health. */
  get size(): { accounts: number; realms: number } {
    return { accounts: this.claims.size, realms: this.realms.size };
  }

  /**
   * The account a realm belongs to, when exactly one is known. A realm claimed by several
   * accounts (a misconfiguration, or a realm moved between accounts and not checked yet) gives
   * `undefined`, so the core drops the event: tenant isolation beats delivery.
   */
  private accountOf(realm: string): string | undefined {
    const accounts = this.realms.get(realm);
    if (accounts?.size !== 1) return undefined;
    const [accountId] = accounts;
    return accountId;
  }
}

function keyFor(kind: PresenceKind, realm: string): BrokerKey {
  return { exchange: PRESENCE_EXCHANGE, routingKey: `${kind}.${realm}.*` };
}

/**
 * The realm as a routing word, or `undefined` when it cannot be one account's: encodeRoutingWord
 * passes `*` and `#` through, and such a "realm" would bind every tenant's presence.
 */
function usableRealm(realm: string): string | undefined {
  const word = encodeRoutingWord(realm);
  return word === '' || word === '*' || word === '#' ? undefined : word;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
