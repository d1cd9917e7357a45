import type { BrokerKey, FamilyBinding } from '../families/event-family';
import type { EventMatch, Session, Subscription } from '../session';
import { SubscriptionRegistry } from './subscription.registry';

const ACCOUNT_A = 'a'.repeat(32);
const ACCOUNT_B = 'b'.repeat(32);

class FakeSession implements Session {
  readonly sent: (readonly EventMatch[])[] = [];
  constructor(readonly id: string) {}
  send(matches: readonly EventMatch[]): void {
    this.sent.push(matches);
  }
}

/**
 * The subscriptions of `family` that may see an event of `accountId` (its own and the
 * superduper admins' `*`) and that `accepts` keeps, per session, in subscription order.
 */
function match(
  registry: SubscriptionRegistry,
  family: string,
  accountId: string,
  accepts: (subscription: Subscription) => boolean,
): Map<Session, Subscription[]> {
  const candidates = registry
    .ofFamily(family)
    .filter((s) => s.accountId === accountId || s.accountId === '*');
  const bySession = new Map<Session, Subscription[]>();
  for (const subscription of candidates) {
    if (!accepts(subscription)) continue;
    bySession.set(subscription.session, [
      ...(bySession.get(subscription.session) ?? []),
      subscription,
    ]);
  }
  return bySession;
}

function binding(text: string): FamilyBinding {
  return { binding: text, pattern: text };
}

const KEYS: readonly BrokerKey[] = [{ exchange: 'callevt', routingKey: 'call.CHANNEL_CREATE.*' }];

const bindingsOf = (subscriptions: readonly Subscription[]): string[] =>
  subscriptions.map((s) => s.binding.binding);

const all = (): boolean => true;

describe('SubscriptionRegistry', () => {
  let registry: SubscriptionRegistry;
  let s1: FakeSession;
  let s2: FakeSession;

  beforeEach(() => {
    registry = new SubscriptionRegistry();
    s1 = new FakeSession('s1');
    s2 = new FakeSession('s2');
  });

  it('starts empty', () => {
    expect(registry.sessionCount).toBe(0);
    expect(registry.subscriptionCount).toBe(0);
    expect(registry.of(s1)).toEqual([]);
    expect(match(registry, 'call', ACCOUNT_A, all).size).toBe(0);
  });

  it('subscribes and records everything given', () => {
    const b = binding('call.CHANNEL_CREATE.*');
    const { subscription, added } = registry.add(s1, ACCOUNT_A, 'call', b, KEYS, {
      name: 'mine',
      metadata: { k: 1 },
    });
    expect(added).toBe(true);
    expect(subscription).toEqual({
      session: s1,
      accountId: ACCOUNT_A,
      family: 'call',
      binding: b,
      brokerKeys: KEYS,
      subscriptionKey: 'call.CHANNEL_CREATE.*',
      name: 'mine',
      metadata: { k: 1 },
      order: 0,
    });
    expect(registry.of(s1)).toEqual([subscription]);
    expect(registry.sessionCount).toBe(1);
    expect(registry.subscriptionCount).toBe(1);
  });

  it('treats a duplicate subscribe (same account and binding) as a no-op', () => {
    const first = registry.add(s1, ACCOUNT_A, 'call', binding('call.CHANNEL_CREATE.*'), KEYS, {
      name: 'first',
    });
    const again = registry.add(s1, ACCOUNT_A, 'call', binding('call.CHANNEL_CREATE.*'), KEYS, {
      name: 'second',
    });
    expect(again.added).toBe(false);
    expect(again.subscription).toBe(first.subscription);
    expect(again.subscription.name).toBe('first');
    expect(registry.subscriptionCount).toBe(1);
    expect(match(registry, 'call', ACCOUNT_A, all).get(s1)).toHaveLength(1);
  });

  it('keeps the same binding for two accounts as two subscriptions', () => {
    registry.add(s1, ACCOUNT_A, 'call', binding('call.CHANNEL_CREATE.*'), KEYS);
    const second = registry.add(s1, ACCOUNT_B, 'call', binding('call.CHANNEL_CREATE.*'), KEYS);
    expect(second.added).toBe(true);
    expect(registry.subscriptionCount).toBe(2);
    expect(registry.sessionCount).toBe(1);
    expect(registry.of(s1).map((s) => s.accountId)).toEqual([ACCOUNT_A, ACCOUNT_B]);
  });

  it('keeps the same binding of two sessions apart', () => {
    registry.add(s1, ACCOUNT_A, 'call', binding('call.CHANNEL_CREATE.*'), KEYS);
    const other = registry.add(s2, ACCOUNT_A, 'call', binding('call.CHANNEL_CREATE.*'), KEYS);
    expect(other.added).toBe(true);
    expect(registry.sessionCount).toBe(2);
    expect(registry.subscriptionCount).toBe(2);
  });

  it('unsubscribes one binding and leaves the others', () => {
    registry.add(s1, ACCOUNT_A, 'call', binding('call.CHANNEL_CREATE.*'), KEYS);
    registry.add(s1, ACCOUNT_A, 'call', binding('call.CHANNEL_DESTROY.*'), KEYS);
    registry.add(s1, ACCOUNT_B, 'call', binding('call.CHANNEL_CREATE.*'), KEYS);

    const removed = registry.remove(s1, ACCOUNT_A, 'call.CHANNEL_CREATE.*');
    expect(removed?.accountId).toBe(ACCOUNT_A);
    expect(removed?.binding.binding).toBe('call.CHANNEL_CREATE.*');
    expect(registry.subscriptionCount).toBe(2);
    expect(registry.of(s1).map((s) => `${s.accountId[0]}:${s.binding.binding}`)).toEqual([
      'a:call.CHANNEL_DESTROY.*',
      'b:call.CHANNEL_CREATE.*',
    ]);
    expect(bindingsOf(match(registry, 'call', ACCOUNT_A, all).get(s1) ?? [])).toEqual([
      'call.CHANNEL_DESTROY.*',
    ]);
  });

  it.each([
    ['a binding never held', ACCOUNT_A, 'call.CHANNEL_ANSWER.*'],
    ['a held binding of another account', ACCOUNT_B, 'call.CHANNEL_CREATE.*'],
  ])('remove of %s returns undefined and changes nothing', (_label, account, text) => {
    registry.add(s1, ACCOUNT_A, 'call', binding('call.CHANNEL_CREATE.*'), KEYS);
    registry.add(s2, ACCOUNT_A, 'call', binding('call.CHANNEL_ANSWER.*'), KEYS);
    const before = registry.of(s1);

    expect(registry.remove(s1, account, text)).toBeUndefined();
    expect(registry.of(s1)).toEqual(before);
    expect(registry.subscriptionCount).toBe(2);
    expect(registry.sessionCount).toBe(2);
    expect(match(registry, 'call', ACCOUNT_A, all).size).toBe(2);
  });

  it('remove for an unknown session returns undefined and registers nothing', () => {
    expect(registry.remove(s1, ACCOUNT_A, 'call.CHANNEL_CREATE.*')).toBeUndefined();
    expect(registry.sessionCount).toBe(0);
  });

  it('removes all subscriptions of a session over all accounts', () => {
    registry.add(s1, ACCOUNT_A, 'call', binding('call.CHANNEL_CREATE.*'), KEYS);
    registry.add(s1, ACCOUNT_B, 'call', binding('call.CHANNEL_DESTROY.*'), KEYS);
    registry.add(s2, ACCOUNT_A, 'call', binding('call.CHANNEL_CREATE.*'), KEYS);

    const removed = registry.removeAll(s1);
    expect(removed.map((s) => s.accountId).sort()).toEqual([ACCOUNT_A, ACCOUNT_B]);
    expect(registry.of(s1)).toEqual([]);
    expect(registry.sessionCount).toBe(1);
    expect(registry.subscriptionCount).toBe(1);
    expect([...match(registry, 'call', ACCOUNT_A, all).keys()]).toEqual([s2]);
    expect(match(registry, 'call', ACCOUNT_B, all).size).toBe(0);
  });

  it('removes all subscriptions of a session for one account only', () => {
    registry.add(s1, ACCOUNT_A, 'call', binding('call.CHANNEL_CREATE.*'), KEYS);
    registry.add(s1, ACCOUNT_A, 'call', binding('call.CHANNEL_ANSWER.*'), KEYS);
    registry.add(s1, ACCOUNT_B, 'call', binding('call.CHANNEL_DESTROY.*'), KEYS);

    const removed = registry.removeAll(s1, ACCOUNT_A);
    expect(bindingsOf(removed)).toEqual(['call.CHANNEL_CREATE.*', 'call.CHANNEL_ANSWER.*']);
    expect(registry.of(s1).map((s) => s.accountId)).toEqual([ACCOUNT_B]);
    expect(registry.sessionCount).toBe(1);
    expect(match(registry, 'call', ACCOUNT_A, all).size).toBe(0);
  });

  it('disconnect-style removeAll forgets the session entirely, and is idempotent', () => {
    registry.add(s1, ACCOUNT_A, 'call', binding('call.CHANNEL_CREATE.*'), KEYS);
    registry.add(s1, ACCOUNT_B, 'call', binding('call.CHANNEL_CREATE.*'), KEYS);
    expect(registry.removeAll(s1)).toHaveLength(2);
    expect(registry.sessionCount).toBe(0);
    expect(registry.subscriptionCount).toBe(0);
    expect(registry.removeAll(s1)).toEqual([]);

    // The session can subscribe again afterwards.
    expect(registry.add(s1, ACCOUNT_A, 'call', binding('call.CHANNEL_CREATE.*'), KEYS).added).toBe(
      true,
    );
    expect(registry.sessionCount).toBe(1);
  });

  describe('broker keys per account', () => {
    const key = (routingKey: string): BrokerKey => ({ exchange: 'conference', routingKey });
    const C1 = key('conference.event.*.a.c1.*');
    const C2 = key('conference.event.*.a.c2.*');
    const C3 = key('conference.event.*.a.c3.*');

    it('counts each distinct key once per account, across sessions and subscriptions', () => {
      registry.add(s1, ACCOUNT_A, 'conference', binding('conference.event.c1'), [C1]);
      registry.add(s2, ACCOUNT_A, 'conference', binding('conference.event.c1'), [C1]);
      registry.add(s1, ACCOUNT_A, 'conference', binding('conference.event.c1.leg'), [C1]);
      registry.add(s1, ACCOUNT_A, 'conference', binding('conference.event.c2'), [C2, C2]);
      registry.add(s1, ACCOUNT_B, 'conference', binding('conference.event.c3'), [C3]);
      registry.add(s2, '*', 'conference', binding('conference.event.c3'), [C3]);
      expect(registry.brokerKeyCount(ACCOUNT_A)).toBe(2);
      expect(registry.brokerKeyCount(ACCOUNT_B)).toBe(1);
      expect(registry.brokerKeyCount('*')).toBe(1);
      expect(registry.unheldBrokerKeys(ACCOUNT_A, [C1, C3, C3])).toBe(1);
      expect(registry.unheldBrokerKeys(ACCOUNT_B, [C1, C3])).toBe(1);
    });

    it('frees a key when the last subscription of the account holding it goes', () => {
      registry.add(s1, ACCOUNT_A, 'conference', binding('conference.event.c1'), [C1]);
      registry.add(s2, ACCOUNT_A, 'conference', binding('conference.event.c1'), [C1]);
      registry.add(s2, ACCOUNT_A, 'conference', binding('conference.event.c2'), [C2]);
      registry.remove(s1, ACCOUNT_A, 'conference.event.c1');
      expect(registry.brokerKeyCount(ACCOUNT_A)).toBe(2);
      registry.removeAll(s2);
      expect(registry.brokerKeyCount(ACCOUNT_A)).toBe(0);
      expect(registry.unheldBrokerKeys(ACCOUNT_A, [C1])).toBe(1);
    });

    it('moves the counts with replaced keys (a new month), and ignores a subscription that is gone', () => {
      const { subscription } = registry.add(
        s1,
        ACCOUNT_A,
        'conference',
        binding('conference.event.c1'),
        [C1],
      );
      registry.add(s2, ACCOUNT_A, 'conference', binding('conference.event.c1'), [C1]);
      expect(registry.replaceKeys(subscription, [C2, C3])).toBe(true);
      expect(subscription.brokerKeys).toEqual([C2, C3]);
      // s2 still holds C1.
      expect(registry.brokerKeyCount(ACCOUNT_A)).toBe(3);
      registry.remove(s1, ACCOUNT_A, 'conference.event.c1');
      expect(registry.brokerKeyCount(ACCOUNT_A)).toBe(1);
      expect(registry.replaceKeys(subscription, [C1])).toBe(false);
      expect(subscription.brokerKeys).toEqual([C2, C3]);
      expect(registry.brokerKeyCount(ACCOUNT_A)).toBe(1);
    });
  });

  describe('match', () => {
    const byPattern =
      (key: string) =>
      (s: Subscription): boolean =>
        s.binding.pattern === '*' || s.binding.pattern === key;

    it('groups by session: a session with two matching bindings appears once with both', () => {
      const create = registry.add(s1, ACCOUNT_A, 'call', binding('call.CHANNEL_CREATE.*'), KEYS);
      const wildcard = registry.add(s1, ACCOUNT_A, 'call', binding('*'), KEYS);
      const other = registry.add(s2, ACCOUNT_A, 'call', binding('call.CHANNEL_CREATE.*'), KEYS);
      registry.add(s2, ACCOUNT_A, 'call', binding('call.CHANNEL_DESTROY.*'), KEYS);

      const result = match(registry, 'call', ACCOUNT_A, byPattern('call.CHANNEL_CREATE.*'));
      expect([...result.keys()]).toEqual([s1, s2]);
      expect(result.get(s1)).toEqual([create.subscription, wildcard.subscription]);
      expect(result.get(s2)).toEqual([other.subscription]);
    });

    it('leaves out sessions whose subscriptions do not match', () => {
      registry.add(s1, ACCOUNT_A, 'call', binding('call.CHANNEL_CREATE.*'), KEYS);
      registry.add(s2, ACCOUNT_A, 'call', binding('call.CHANNEL_DESTROY.*'), KEYS);
      const result = match(registry, 'call', ACCOUNT_A, byPattern('call.CHANNEL_DESTROY.*'));
      expect([...result.keys()]).toEqual([s2]);
    });

    it("never returns another account's subscriptions, even when the binding matches", () => {
      registry.add(s1, ACCOUNT_A, 'call', binding('*'), KEYS);
      registry.add(s2, ACCOUNT_B, 'call', binding('*'), KEYS);
      const seen: string[] = [];
      const result = match(registry, 'call', ACCOUNT_A, (s) => {
        seen.push(s.accountId);
        return true;
      });
      expect([...result.keys()]).toEqual([s1]);
      expect(seen).toEqual([ACCOUNT_A]);
      expect(match(registry, 'call', 'c'.repeat(32), all).size).toBe(0);
    });

    it("never returns another family's subscriptions", () => {
      registry.add(s1, ACCOUNT_A, 'call', binding('*'), KEYS);
      registry.add(s2, ACCOUNT_A, 'fax', binding('*'), KEYS);
      expect([...match(registry, 'call', ACCOUNT_A, all).keys()]).toEqual([s1]);
      expect([...match(registry, 'fax', ACCOUNT_A, all).keys()]).toEqual([s2]);
    });

    it('no longer returns removed subscriptions', () => {
      registry.add(s1, ACCOUNT_A, 'call', binding('*'), KEYS);
      registry.remove(s1, ACCOUNT_A, '*');
      expect(match(registry, 'call', ACCOUNT_A, all).size).toBe(0);
    });

    it('does not send anything itself', () => {
      registry.add(s1, ACCOUNT_A, 'call', binding('*'), KEYS);
      match(registry, 'call', ACCOUNT_A, all);
      expect(s1.sent).toEqual([]);
    });
  });

  it('counts sessions and subscriptions through adds and removes', () => {
    const steps: Array<[() => void, number, number]> = [
      [() => registry.add(s1, ACCOUNT_A, 'call', binding('x'), KEYS), 1, 1],
      [() => registry.add(s1, ACCOUNT_A, 'call', binding('x'), KEYS), 1, 1],
      [() => registry.add(s1, ACCOUNT_A, 'call', binding('y'), KEYS), 1, 2],
      [() => registry.add(s2, ACCOUNT_B, 'call', binding('x'), KEYS), 2, 3],
      [() => registry.remove(s1, ACCOUNT_A, 'x'), 2, 2],
      [() => registry.remove(s1, ACCOUNT_A, 'x'), 2, 2],
      [() => registry.removeAll(s2), 1, 1],
      [() => registry.remove(s1, ACCOUNT_A, 'y'), 0, 0],
    ];
    for (const [step, sessions, subscriptions] of steps) {
      step();
      expect([registry.sessionCount, registry.subscriptionCount]).toEqual([
        sessions,
        subscriptions,
      ]);
    }
  });

  it('lets subscriptions to one binding of one account share one parsed binding and key list', () => {
    const first = registry.add(s1, ACCOUNT_A, 'call', binding('call.*.*'), [...KEYS]).subscription;
    const second = registry.add(s2, ACCOUNT_A, 'call', binding('call.*.*'), [...KEYS]).subscription;
    expect(second.binding).toBe(first.binding);
    expect(second.brokerKeys).toBe(first.brokerKeys);
    const otherAccount = registry.add(s2, ACCOUNT_B, 'call', binding('call.*.*'), [...KEYS]);
    expect(otherAccount.subscription.binding).not.toBe(first.binding);
    // Keys of a new month: later subscriptions share the new ones, earlier keep theirs.
    registry.removeAll(s2);
    const moved = [{ exchange: 'callevt', routingKey: 'call.CHANNEL_ANSWER.*' }];
    const third = registry.add(s2, ACCOUNT_A, 'call', binding('call.*.*'), moved).subscription;
    expect(third.brokerKeys).toEqual(moved);
    expect(first.brokerKeys).toEqual(KEYS);
  });
});
