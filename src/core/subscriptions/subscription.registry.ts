import { ALL_ACCOUNTS, type BrokerKey, type FamilyBinding } from '../families/event-family';
import type { Session, Subscription } from '../session';
import { TopicTrie } from '../topics/topic-trie';
import { PatternBucket } from './pattern-bucket';

const subscriptionKey = (accountId: string, binding: string): string =>
  `${accountId}\u0000${binding}`;
const indexKey = (family: string, accountId: string): string => `${family}\u0000${accountId}`;
const brokerKeyId = (key: BrokerKey): string => `${key.exchange}\u0000${key.routingKey}`;

interface SharedShape {
  readonly accountId: string;
  readonly binding: FamilyBinding;
  readonly brokerKeys: readonly BrokerKey[];
  readonly subscriptionKey: string;
  /** The subscription's key in its session's map. */
  readonly key: string;
  users: number;
}

/** The same broker keys, in any order (a family's key lists hold a handful of keys). */
export function sameKeys(a: readonly BrokerKey[], b: readonly BrokerKey[]): boolean {
  return (
    a.length === b.length &&
    a.every((key) =>
      b.some((other) => other.exchange === key.exchange && other.routingKey === key.routingKey),
    )
  );
}

/**
 * In-memory index of who listens to what: session ↔ account ↔ bindings. Pure bookkeeping with
 * no I/O, so every operation is synchronous and consistent even while broker calls are pending.
 */
export class SubscriptionRegistry {
  private readonly bySession = new Map<Session, Map<string, Subscription>>();
  /** (family, account) → the subscriptions sharing each pattern, indexed by pattern words. */
  private readonly byFamilyAccount = new Map<string, TopicTrie<PatternBucket>>();
  /**
   * What every subscription to one binding of one account shares: the parsed binding, its keys
   * and strings. A thousand dashboards on one account hold one copy, not a thousand.
   */
  private readonly shapes = new Map<string, SharedShape>();
  /**
   * Account (or `*`) → each broker key its subscriptions hold → how many of them hold it. Kept
   * on every change, so the per-account limit costs a lookup per key, not a scan.
   */
  private readonly keysByAccount = new Map<string, Map<string, number>>();
  private nextOrder = 0;
  private removed = 0;

  /** Adds a subscription; subscribing the same account and binding again is a no-op. */
  add(
    session: Session,
    accountId: string,
    family: string,
    binding: FamilyBinding,
    brokerKeys: readonly BrokerKey[],
    extras: Partial<
      Pick<Subscription, 'subscriptionKey' | 'name' | 'metadata' | 'authAccountId'>
    > = {},
  ): { subscription: Subscription; added: boolean } {
    let own = this.bySession.get(session);
    if (!own) {
      own = new Map();
      this.bySession.set(session, own);
    }
    const existing = own.get(subscriptionKey(accountId, binding.binding));
    if (existing) return { subscription: existing, added: false };

    const shape = this.shapeOf(family, accountId, binding, brokerKeys, extras.subscriptionKey);
    shape.users++;
    const subscription: Subscription = {
      session,
      accountId: shape.accountId,
      family,
      binding: shape.binding,
      brokerKeys: shape.brokerKeys,
      subscriptionKey: shape.subscriptionKey,
      name: extras.name,
      metadata: extras.metadata,
      authAccountId: extras.authAccountId,
      order: this.nextOrder++,
    };
    own.set(shape.key, subscription);
    const index = indexKey(family, accountId);
    let buckets = this.byFamilyAccount.get(index);
    if (!buckets) {
      buckets = new TopicTrie();
      this.byFamilyAccount.set(index, buckets);
    }
    let bucket = buckets.get(binding.pattern);
    if (!bucket) {
      bucket = new PatternBucket(binding.pattern);
      buckets.set(binding.pattern, bucket);
    }
    bucket.add(subscription);
    this.countKeys(accountId, subscription.brokerKeys, +1);
    return { subscription, added: true };
  }

  /**
   * Moves a live subscription to other broker keys (a new month, a realm that moved); the caller
   * binds the new keys first and releases the old ones after. False, changing nothing, when the
   * subscription is gone.
   */
  replaceKeys(subscription: Subscription, keys: readonly BrokerKey[]): boolean {
    if (!this.contains(subscription)) return false;
    this.countKeys(subscription.accountId, keys, +1);
    this.countKeys(subscription.accountId, subscription.brokerKeys, -1);
    // The one place a subscription's keys change, so the counts above stay right.
    (subscription as { brokerKeys: readonly BrokerKey[] }).brokerKeys = keys;
    return true;
  }

  /** Distinct broker keys the subscriptions of `accountId` (or `*`) hold on this node. */
  brokerKeyCount(accountId: string): number {
    return this.keysByAccount.get(accountId)?.size ?? 0;
  }

  /** How many distinct keys of `keys` the subscriptions of `accountId` do not hold yet. */
  unheldBrokerKeys(accountId: string, keys: readonly BrokerKey[]): number {
    const held = this.keysByAccount.get(accountId);
    const unheld = new Set<string>();
    for (const key of keys) {
      const id = brokerKeyId(key);
      if (!held?.has(id)) unheld.add(id);
    }
    return unheld.size;
  }

  /** Removes one subscription of the session; returns it, or `undefined` if it held none. */
  remove(session: Session, accountId: string, binding: string): Subscription | undefined {
    const subscription = this.bySession.get(session)?.get(subscriptionKey(accountId, binding));
    if (subscription) this.detach(subscription);
    return subscription;
  }

  /** Removes every subscription of the session (of one account when given) and returns them. */
  removeAll(session: Session, accountId?: string): Subscription[] {
    const removed = this.of(session).filter(
      (s) => accountId === undefined || s.accountId === accountId,
    );
    removed.forEach((s) => this.detach(s));
    return removed;
  }

  /** Every subscription of `family`, across sessions and accounts. */
  ofFamily(family: string): Subscription[] {
    const prefix = `${family}\u0000`;
    return [...this.byFamilyAccount]
      .filter(([index]) => index.startsWith(prefix))
      .flatMap(([, buckets]) => [...buckets.values()].flatMap((b) => b.subscriptions))
      .sort((a, b) => a.order - b.order);
  }

  contains(subscription: Subscription): boolean {
    const key = subscriptionKey(subscription.accountId, subscription.binding.binding);
    return this.bySession.get(subscription.session)?.get(key) === subscription;
  }

  of(session: Session): Subscription[] {
    return [...(this.bySession.get(session)?.values() ?? [])];
  }

  /**
   * Calls `visit` with every pattern bucket of `family` whose pattern matches `key` (split into
   * words) and that may see an event of `accountId`: the account's own, then the superduper
   * admins' (`*`). The cost is that of walking the key's words, whatever the number of patterns.
   */
  forEachMatch(
    family: string,
    accountId: string,
    key: readonly string[],
    visit: (bucket: PatternBucket) => void,
  ): void {
    this.byFamilyAccount.get(indexKey(family, accountId))?.match(key, visit);
    if (accountId === ALL_ACCOUNTS) return;
    this.byFamilyAccount.get(indexKey(family, ALL_ACCOUNTS))?.match(key, visit);
  }

  /** Every session holding at least one subscription, with its subscriptions. */
  *sessions(): IterableIterator<[Session, Subscription[]]> {
    for (const [session, own] of this.bySession) yield [session, [...own.values()]];
  }

  /**
   * Rises with every subscription removed: a long-running reader of the registry (a replay)
   * checks whether its sessions are still there only when it has moved.
   */
  get removals(): number {
    return this.removed;
  }

  get sessionCount(): number {
    return this.bySession.size;
  }

  get subscriptionCount(): number {
    let count = 0;
    for (const own of this.bySession.values()) count += own.size;
    return count;
  }

  private shapeOf(
    family: string,
    accountId: string,
    binding: FamilyBinding,
    brokerKeys: readonly BrokerKey[],
    key: string | undefined,
  ): SharedShape {
    const id = `${family}\u0000${accountId}\u0000${binding.binding}`;
    const subscriptionKeyValue = key ?? binding.pattern;
    const shape = this.shapes.get(id);
    if (
      shape &&
      shape.subscriptionKey === subscriptionKeyValue &&
      shape.binding.pattern === binding.pattern &&
      sameKeys(shape.brokerKeys, brokerKeys)
    ) {
      return shape;
    }
    // New, or the keys moved on (a new month): later subscriptions share the new shape.
    const fresh: SharedShape = {
      accountId,
      binding,
      brokerKeys,
      subscriptionKey: subscriptionKeyValue,
      key: subscriptionKey(accountId, binding.binding),
      users: 0,
    };
    this.shapes.set(id, fresh);
    return fresh;
  }

  private releaseShape(subscription: Subscription): void {
    const id = `${subscription.family}\u0000${subscription.accountId}\u0000${subscription.binding.binding}`;
    const shape = this.shapes.get(id);
    if (shape?.binding !== subscription.binding) return;
    if (--shape.users === 0) this.shapes.delete(id);
  }

  /** Each distinct key of one subscription counts once for its account. */
  private countKeys(accountId: string, keys: readonly BrokerKey[], delta: 1 | -1): void {
    let counts = this.keysByAccount.get(accountId);
    if (!counts) {
      if (delta < 0) return;
      counts = new Map();
      this.keysByAccount.set(accountId, counts);
    }
    for (const id of new Set(keys.map(brokerKeyId))) {
      const count = (counts.get(id) ?? 0) + delta;
      if (count > 0) counts.set(id, count);
      else counts.delete(id);
    }
    if (counts.size === 0) this.keysByAccount.delete(accountId);
  }

  private detach(subscription: Subscription): void {
    this.removed++;
    this.releaseShape(subscription);
    this.countKeys(subscription.accountId, subscription.brokerKeys, -1);
    const own = this.bySession.get(subscription.session);
    own?.delete(subscriptionKey(subscription.accountId, subscription.binding.binding));
    if (own?.size === 0) this.bySession.delete(subscription.session);
    const index = indexKey(subscription.family, subscription.accountId);
    const buckets = this.byFamilyAccount.get(index);
    const bucket = buckets?.get(subscription.binding.pattern);
    if (!buckets || !bucket) return;
    bucket.delete(subscription);
    if (bucket.size === 0) buckets.delete(subscription.binding.pattern);
    if (buckets.size === 0) this.byFamilyAccount.delete(index);
  }
}
