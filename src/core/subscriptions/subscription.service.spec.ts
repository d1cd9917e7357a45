import type { DiscoveryService } from '@nestjs/core';
import { CallFamily } from '../../features/call/call.family';
import {
  AccountForbiddenError,
  AuthUnavailableError,
  BadRequestError,
  GatewayError,
  InvalidAccountError,
  InvalidBindingError,
  LimitExceededError,
  TokenInvalidError,
  TokenRequiredError,
} from '../errors';
import { Clock } from '../clock';
import type { BrokerKey } from '../families/event-family';
import { FamilyRegistry } from '../families/family.registry';
import type { Session } from '../session';
import type { AccountAuthorizer, AccountDirectory, BrokerBindings, TokenIdentity } from './ports';
import { SettableClock } from '../../../test/support/clock';
import { AuthorizationWatch } from './authorization-watch';
import { SubscriptionRegistry } from './subscription.registry';
import { SubscriptionService } from './subscription.service';

const TOKEN = 'token-of-a';
const ACCOUNT_A = '0123456789abcdef0123456789abcdef';
const ACCOUNT_B = 'fedcba9876543210fedcba9876543210';
const CREATE = 'call.CHANNEL_CREATE.*';
const DESTROY = 'call.CHANNEL_DESTROY.*';
const ANSWER = 'call.CHANNEL_ANSWER.*';

interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
  reject(error: unknown): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

type AuthCall =
  | { kind: 'authenticate'; token: string }
  | { kind: 'authorize' | 'recheck'; token: string; accountId: string };

/**
 * Records every call. Answers at once unless the account has a gate (then it waits for it) or a
 * refusal. Keyed by account, not by call order, so it does not depend on when calls arrive.
 */
class FakeAuthorizer implements AccountAuthorizer {
  readonly calls: AuthCall[] = [];
  readonly gates = new Map<string, Promise<void>>();
  readonly refusals = new Map<string, GatewayError>();

  authenticate(token: string): Promise<TokenIdentity> {
    this.calls.push({ kind: 'authenticate', token });
    return Promise.resolve({ accountId: ACCOUNT_A });
  }

  async authorize(token: string, accountId: string): Promise<TokenIdentity> {
    this.calls.push({ kind: 'authorize', token, accountId });
    await this.gates.get(accountId);
    const refusal = this.refusals.get(accountId);
    if (refusal) throw refusal;
    return { accountId: ACCOUNT_A };
  }

  /** Tokens Crossbar now refuses, as a re-check finds out. */
  readonly revoked = new Set<string>();

  recheck(token: string, accountId: string): Promise<TokenIdentity> {
    this.calls.push({ kind: 'recheck', token, accountId });
    if (this.revoked.has(token)) return Promise.reject(new TokenInvalidError());
    return Promise.resolve({ accountId: ACCOUNT_A });
  }
}

/** Records every acquire and release and keeps reference counts per exchange::key. */
class FakeBroker implements BrokerBindings {
  readonly acquired: Array<{ keys: readonly BrokerKey[] }> = [];
  readonly released: Array<{ keys: readonly BrokerKey[] }> = [];
  readonly counts = new Map<string, number>();
  failWith: Error | undefined;

  acquire(keys: readonly BrokerKey[]): Promise<void> {
    this.acquired.push({ keys });
    // A rejected acquire holds no references (BrokerBindings contract).
    if (this.failWith) return Promise.reject(this.failWith);
    for (const key of keys) this.counts.set(id(key), (this.counts.get(id(key)) ?? 0) + 1);
    return Promise.resolve();
  }

  release(keys: readonly BrokerKey[]): void {
    this.released.push({ keys });
    for (const key of keys) {
      const count = (this.counts.get(id(key)) ?? 0) - 1;
      if (count === 0) this.counts.delete(id(key));
      else this.counts.set(id(key), count);
    }
  }

  acquiredKeys(): string[] {
    return this.acquired.flatMap((a) => a.keys.map(id));
  }

  releasedKeys(): string[] {
    return this.released.flatMap((r) => r.keys.map(id));
  }
}

const id = (key: BrokerKey): string => `${key.exchange}::${key.routingKey}`;

function newSession(name: string): Session {
  return {
    id: name,
    send(): void {
      throw new Error('the subscription service never sends events');
    },
  };
}

async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the promise to reject');
}

describe('SubscriptionService', () => {
  let registry: SubscriptionRegistry;
  let authorizer: FakeAuthorizer;
  let broker: FakeBroker;
  let service: SubscriptionService;
  let session: Session;
  let clock: SettableClock;
  let watch: AuthorizationWatch;

  beforeEach(() => {
    registry = new SubscriptionRegistry();
    // The DiscoveryService is only used by onModuleInit, which these tests never call.
    const families = new FamilyRegistry({} as DiscoveryService);
    families.register({ prefix: 'call' }, new CallFamily());
    authorizer = new FakeAuthorizer();
    broker = new FakeBroker();
    const directory: AccountDirectory = {
      realmOf: () => Promise.reject(new Error('call bindings never need a realm')),
    };
    clock = new SettableClock('2026-05-01T12:00:00Z');
    watch = new AuthorizationWatch(authorizer, clock, {
      intervalMs: 60_000,
      outageGraceMs: 300_000,
    });
    service = new SubscriptionService(
      registry,
      families,
      authorizer,
      broker,
      directory,
      new Clock(),
      { maxBindingsPerConnection: 5, maxBrokerKeysPerAccount: 1000 },
      watch,
    );
    session = newSession('s1');
  });

  /** A service like the suite's, on the same registry and broker, with other limits. */
  function serviceWithLimits(maxBrokerKeysPerAccount: number): SubscriptionService {
    const families = new FamilyRegistry({} as DiscoveryService);
    families.register({ prefix: 'call' }, new CallFamily());
    const directory: AccountDirectory = {
      realmOf: () => Promise.reject(new Error('call bindings never need a realm')),
    };
    return new SubscriptionService(
      registry,
      families,
      authorizer,
      broker,
      directory,
      new Clock(),
      { maxBindingsPerConnection: 100, maxBrokerKeysPerAccount },
      new AuthorizationWatch(authorizer, clock, { intervalMs: 60_000, outageGraceMs: 300_000 }),
    );
  }

  describe('subscribe: validation', () => {
    it.each([
      ['no token', undefined],
      ['an empty token', ''],
    ])('requires a token (%s)', async (_label, token) => {
      const error = await rejectionOf(
        service.subscribe(session, { token, accountId: ACCOUNT_A, bindings: [CREATE] }),
      );
      expect(error).toBeInstanceOf(TokenRequiredError);
      expect((error as GatewayError).message).toBe('authentication token required');
      expect(authorizer.calls).toEqual([]);
    });

    it.each([
      [undefined, [], 'missing required keys : account_id, binding'],
      [undefined, [CREATE], 'missing required keys : account_id'],
      [ACCOUNT_A, [], 'missing required keys : binding'],
    ])('account %j with bindings %j -> %j', async (accountId, bindings, message) => {
      const error = await rejectionOf(
        service.subscribe(session, { token: TOKEN, accountId, bindings }),
      );
      expect(error).toBeInstanceOf(BadRequestError);
      expect((error as GatewayError).message).toBe(message);
      expect(authorizer.calls).toEqual([]);
    });

    it.each([
      ['', 'invalid account id'],
      ['not-an-account', 'invalid account id'],
      ['0123456789ABCDEF0123456789ABCDEF', 'invalid account id'],
      ['0123456789abcdef0123456789abcde', 'invalid account id'],
      ['0123456789abcdef0123456789abcdef0', 'invalid account id'],
      ['account%2F01%2F23%2F456789abcdef0123456789abcdef', 'invalid account id'],
    ])('account id %j -> %j', async (accountId, message) => {
      const error = await rejectionOf(
        service.subscribe(session, { token: TOKEN, accountId, bindings: [CREATE] }),
      );
      expect(error).toBeInstanceOf(InvalidAccountError);
      expect((error as GatewayError).message).toBe(message);
      expect(authorizer.calls).toEqual([]);
      expect(broker.acquired).toEqual([]);
    });

    it('leaves "*" (every account) to the authorizer, which allows it for superduper admins only', async () => {
      authorizer.refusals.set('*', new InvalidAccountError('unauthorized wildcard account id'));
      const refused = await rejectionOf(
        service.subscribe(session, { token: TOKEN, accountId: '*', bindings: [CREATE] }),
      );
      expect((refused as GatewayError).message).toBe('unauthorized wildcard account id');
      expect(broker.acquired).toEqual([]);

      authorizer.refusals.delete('*');
      expect(
        await service.subscribe(session, { token: TOKEN, accountId: '*', bindings: [CREATE] }),
      ).toEqual([CREATE]);
      expect(authorizer.calls.map((call) => call.kind === 'authorize' && call.accountId)).toEqual([
        '*',
        '*',
      ]);
      expect(registry.of(session).map((s) => s.accountId)).toEqual(['*']);
    });

    it.each(['fax.status.*', 'calls.CHANNEL_CREATE.*', 'CALL.CHANNEL_CREATE.*', ''])(
      'rejects binding %j of an unknown family',
      async (binding) => {
        const error = await rejectionOf(
          service.subscribe(session, { token: TOKEN, accountId: ACCOUNT_A, bindings: [binding] }),
        );
        expect(error).toBeInstanceOf(InvalidBindingError);
        expect((error as GatewayError).message).toBe(
          `no available subscriptions to requested binding ${binding}`,
        );
      },
    );

    it.each([
      [[CREATE, 'call.FOO.*'], 'event FOO not supported'],
      [
        ['call.CHANNEL_CREATE.#', CREATE],
        'invalid format for call subscription : CHANNEL_CREATE, #',
      ],
      [
        [CREATE, DESTROY, 'fax.status.*'],
        'no available subscriptions to requested binding fax.status.*',
      ],
    ])('is all-or-nothing: %j fails with %j and subscribes nothing', async (bindings, message) => {
      const error = await rejectionOf(
        service.subscribe(session, { token: TOKEN, accountId: ACCOUNT_A, bindings }),
      );
      expect(error).toBeInstanceOf(InvalidBindingError);
      expect((error as GatewayError).message).toBe(message);
      expect(broker.acquired).toEqual([]);
      expect(authorizer.calls).toEqual([]);
      expect(service.bindingsOf(session)).toEqual([]);
      expect(registry.subscriptionCount).toBe(0);
    });

    it('tells the session it is authorized only once a subscribe succeeds', async () => {
      let authorized = 0;
      const watched: Session = { ...newSession('s-deadline'), authorized: () => authorized++ };
      authorizer.refusals.set(ACCOUNT_B, new AccountForbiddenError());
      await rejectionOf(
        service.subscribe(watched, { token: TOKEN, accountId: ACCOUNT_B, bindings: [CREATE] }),
      );
      await rejectionOf(
        service.subscribe(watched, { token: TOKEN, accountId: ACCOUNT_A, bindings: ['nope.x'] }),
      );
      expect(authorized).toBe(0);
      await service.subscribe(watched, { token: TOKEN, accountId: ACCOUNT_A, bindings: [CREATE] });
      expect(authorized).toBe(1);
    });

    it('subscribes nothing when the authorizer refuses', async () => {
      authorizer.refusals.set(ACCOUNT_B, new AccountForbiddenError());
      const error = await rejectionOf(
        service.subscribe(session, { token: TOKEN, accountId: ACCOUNT_B, bindings: [CREATE] }),
      );
      expect(error).toBeInstanceOf(AccountForbiddenError);
      expect(authorizer.calls).toEqual([{ kind: 'authorize', token: TOKEN, accountId: ACCOUNT_B }]);
      expect(broker.acquired).toEqual([]);
      expect(registry.subscriptionCount).toBe(0);
    });
  });

  describe('subscribe: bookkeeping', () => {
    it('authorizes the account, records the bindings and acquires their broker keys', async () => {
      const subscribed = await service.subscribe(session, {
        token: TOKEN,
        accountId: ACCOUNT_A,
        bindings: [CREATE, DESTROY],
        name: 'label',
        metadata: { x: 1 },
      });
      expect(subscribed).toEqual([CREATE, DESTROY]);
      expect(authorizer.calls).toEqual([{ kind: 'authorize', token: TOKEN, accountId: ACCOUNT_A }]);
      expect(broker.acquired).toHaveLength(2);
      expect(broker.acquiredKeys()).toEqual([`callevt::${CREATE}`, `callevt::${DESTROY}`]);
      expect(registry.of(session).map((s) => [s.accountId, s.family, s.name, s.metadata])).toEqual([
        [ACCOUNT_A, 'call', 'label', { x: 1 }],
        [ACCOUNT_A, 'call', 'label', { x: 1 }],
      ]);
    });

    it('acquires call.*.* as nine keys', async () => {
      await service.subscribe(session, {
        token: TOKEN,
        accountId: ACCOUNT_A,
        bindings: ['call.*.*'],
      });
      expect(broker.acquired).toHaveLength(1);
      expect(broker.acquiredKeys()).toHaveLength(9);
    });

    it('acquires broker keys once per new subscription, never for duplicates', async () => {
      await service.subscribe(session, { token: TOKEN, accountId: ACCOUNT_A, bindings: [CREATE] });
      const again = await service.subscribe(session, {
        token: TOKEN,
        accountId: ACCOUNT_A,
        bindings: [CREATE, CREATE, DESTROY],
      });
      expect(again).toEqual([CREATE, DESTROY]);
      expect(broker.acquiredKeys()).toEqual([`callevt::${CREATE}`, `callevt::${DESTROY}`]);
      expect(registry.subscriptionCount).toBe(2);
    });

    it('acquires again for the same binding on another account or another session', async () => {
      const other = newSession('s2');
      await service.subscribe(session, { token: TOKEN, accountId: ACCOUNT_A, bindings: [CREATE] });
      await service.subscribe(session, { token: TOKEN, accountId: ACCOUNT_B, bindings: [CREATE] });
      await service.subscribe(other, { token: TOKEN, accountId: ACCOUNT_A, bindings: [CREATE] });
      expect(broker.acquired).toHaveLength(3);
      expect(broker.counts.get(`callevt::${CREATE}`)).toBe(3);
      // The reply lists each binding once, whatever the accounts.
      expect(service.bindingsOf(session)).toEqual([CREATE]);
    });
  });

  describe('limits', () => {
    it('refuses a request that would take a connection past its binding limit, and keeps what it held', async () => {
      await service.subscribe(session, {
        token: TOKEN,
        accountId: ACCOUNT_A,
        bindings: [CREATE, DESTROY],
      });
      // Bindings already held do not count again.
      await service.subscribe(session, {
        token: TOKEN,
        accountId: ACCOUNT_A,
        bindings: [CREATE, ANSWER, 'call.CHANNEL_HOLD.*'],
      });
      const error = await rejectionOf(
        service.subscribe(session, {
          token: TOKEN,
          accountId: ACCOUNT_B,
          bindings: [CREATE, DESTROY],
        }),
      );
      expect(error).toBeInstanceOf(LimitExceededError);
      expect(error).toMatchObject({ code: 'limit_exceeded', temporary: false });
      expect(service.bindingsOf(session)).toHaveLength(4);
      expect(
        await service.subscribe(session, {
          token: TOKEN,
          accountId: ACCOUNT_B,
          bindings: [CREATE],
        }),
      ).toHaveLength(4);
      expect(registry.of(session)).toHaveLength(5);
    });
  });

  describe('broker keys per account', () => {
    const HOLD = 'call.CHANNEL_HOLD.*';

    it('refuses a subscribe that would take the account past its limit, across connections, before any broker work', async () => {
      const limited = serviceWithLimits(3);
      const other = newSession('s2');
      await limited.subscribe(session, {
        token: TOKEN,
        accountId: ACCOUNT_A,
        bindings: [CREATE, DESTROY],
      });
      // A key the account holds already costs nothing, whichever connection asks.
      await limited.subscribe(other, { token: TOKEN, accountId: ACCOUNT_A, bindings: [CREATE] });
      await limited.subscribe(other, { token: TOKEN, accountId: ACCOUNT_A, bindings: [ANSWER] });
      expect(registry.brokerKeyCount(ACCOUNT_A)).toBe(3);
      const acquiredBefore = broker.acquired.length;

      const error = await rejectionOf(
        limited.subscribe(other, { token: TOKEN, accountId: ACCOUNT_A, bindings: [CREATE, HOLD] }),
      );
      expect(error).toBeInstanceOf(LimitExceededError);
      expect(error).toMatchObject({
        code: 'limit_exceeded',
        temporary: false,
        message: 'broker key limit reached for this account: an account may hold 3 on this node',
      });
      // Nothing of the refused request stays, not even its binding the account already held.
      expect(broker.acquired).toHaveLength(acquiredBefore);
      expect(limited.bindingsOf(other)).toEqual([CREATE, ANSWER]);
      expect(registry.brokerKeyCount(ACCOUNT_A)).toBe(3);

      // Another account, and `*`, count on their own.
      await limited.subscribe(other, { token: TOKEN, accountId: ACCOUNT_B, bindings: [HOLD] });
      await limited.subscribe(other, { token: TOKEN, accountId: '*', bindings: [HOLD] });

      // Once a key is given up by every connection of the account, there is room again.
      await limited.unsubscribe(session, {
        token: TOKEN,
        accountId: ACCOUNT_A,
        bindings: [CREATE],
      });
      await expect(
        limited.subscribe(session, { token: TOKEN, accountId: ACCOUNT_A, bindings: [HOLD] }),
      ).rejects.toBeInstanceOf(LimitExceededError);
      await limited.unsubscribe(other, { token: TOKEN, accountId: ACCOUNT_A, bindings: [CREATE] });
      await expect(
        limited.subscribe(session, { token: TOKEN, accountId: ACCOUNT_A, bindings: [HOLD] }),
      ).resolves.toEqual([DESTROY, HOLD]);
    });

    it("counts a request's own keys once, and bindings the connection holds not at all", async () => {
      const limited = serviceWithLimits(9);
      // call.*.* is nine keys, CREATE one of them.
      await expect(
        limited.subscribe(session, {
          token: TOKEN,
          accountId: ACCOUNT_A,
          bindings: ['call.*.*', CREATE],
        }),
      ).resolves.toEqual(['call.*.*', CREATE]);
      await expect(
        limited.subscribe(session, { token: TOKEN, accountId: ACCOUNT_A, bindings: ['call.*.*'] }),
      ).resolves.toEqual(['call.*.*', CREATE]);
      expect(registry.brokerKeyCount(ACCOUNT_A)).toBe(9);
    });

    it('gives the keys back when the broker refuses, and when the connection closes', async () => {
      const limited = serviceWithLimits(2);
      broker.failWith = new Error('refused');
      await expect(
        limited.subscribe(session, {
          token: TOKEN,
          accountId: ACCOUNT_A,
          bindings: [CREATE, HOLD],
        }),
      ).rejects.toThrow('refused');
      expect(registry.brokerKeyCount(ACCOUNT_A)).toBe(0);
      broker.failWith = undefined;
      await limited.subscribe(session, {
        token: TOKEN,
        accountId: ACCOUNT_A,
        bindings: [CREATE, HOLD],
      });
      limited.disconnect(session);
      expect(registry.brokerKeyCount(ACCOUNT_A)).toBe(0);
    });

    it('never refuses a request that adds no key, even once moved keys took the account past the limit', async () => {
      const limited = serviceWithLimits(1);
      await limited.subscribe(session, { token: TOKEN, accountId: ACCOUNT_A, bindings: [CREATE] });
      // As a monthly rollover could: the subscription now holds two keys.
      const [held] = registry.of(session);
      registry.replaceKeys(held, [
        { exchange: 'callevt', routingKey: CREATE },
        { exchange: 'callevt', routingKey: HOLD },
      ]);
      expect(registry.brokerKeyCount(ACCOUNT_A)).toBe(2);
      await expect(
        limited.subscribe(newSession('s2'), {
          token: TOKEN,
          accountId: ACCOUNT_A,
          bindings: [HOLD],
        }),
      ).resolves.toEqual([HOLD]);
      await expect(
        limited.subscribe(session, { token: TOKEN, accountId: ACCOUNT_A, bindings: [DESTROY] }),
      ).rejects.toBeInstanceOf(LimitExceededError);
    });

    it('two connections of one account subscribing at once cannot pass the limit together', async () => {
      const limited = serviceWithLimits(2);
      const gate = deferred<void>();
      authorizer.gates.set(ACCOUNT_A, gate.promise);
      const first = limited.subscribe(session, {
        token: TOKEN,
        accountId: ACCOUNT_A,
        bindings: [CREATE, DESTROY],
      });
      const second = limited.subscribe(newSession('s2'), {
        token: TOKEN,
        accountId: ACCOUNT_A,
        bindings: [HOLD],
      });
      gate.resolve();
      const outcomes = await Promise.allSettled([first, second]);
      expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected']);
      expect(registry.brokerKeyCount(ACCOUNT_A)).toBe(2);
    });
  });

  describe('unsubscribe', () => {
    beforeEach(async () => {
      await service.subscribe(session, {
        token: TOKEN,
        accountId: ACCOUNT_A,
        bindings: [CREATE, DESTROY],
      });
      await service.subscribe(session, { token: TOKEN, accountId: ACCOUNT_B, bindings: [CREATE] });
      authorizer.calls.length = 0;
    });

    it('requires a token', async () => {
      const error = await rejectionOf(service.unsubscribe(session, { accountId: ACCOUNT_A }));
      expect(error).toBeInstanceOf(TokenRequiredError);
      expect(service.bindingsOf(session)).toEqual([CREATE, DESTROY]);
      expect(broker.released).toEqual([]);
    });

    it('requires an account when bindings are given', async () => {
      const error = await rejectionOf(
        service.unsubscribe(session, { token: TOKEN, bindings: [CREATE] }),
      );
      expect(error).toBeInstanceOf(BadRequestError);
      expect((error as GatewayError).message).toBe('missing required keys : account_id');
      expect(broker.released).toEqual([]);
    });

    it('checks the account id, and authorizes requests for what the session does not hold', async () => {
      const invalid = await rejectionOf(
        service.unsubscribe(session, { token: TOKEN, accountId: 'nope', bindings: [CREATE] }),
      );
      expect((invalid as GatewayError).message).toBe('invalid account id');

      authorizer.refusals.set('*', new InvalidAccountError('unauthorized wildcard account id'));
      const wildcard = await rejectionOf(
        service.unsubscribe(session, { token: TOKEN, accountId: '*', bindings: [CREATE] }),
      );
      expect((wildcard as GatewayError).message).toBe('unauthorized wildcard account id');

      // The session holds CREATE on B but not DESTROY: the request is checked as a whole.
      authorizer.refusals.set(ACCOUNT_B, new AccountForbiddenError());
      const forbidden = await rejectionOf(
        service.unsubscribe(session, {
          token: TOKEN,
          accountId: ACCOUNT_B,
          bindings: [CREATE, DESTROY],
        }),
      );
      expect(forbidden).toBeInstanceOf(AccountForbiddenError);
      expect(broker.released).toEqual([]);
      expect(registry.subscriptionCount).toBe(3);
    });

    it('drops what the session holds without asking Crossbar, even while Crossbar is down', async () => {
      authorizer.refusals.set(ACCOUNT_A, new AuthUnavailableError('crossbar unreachable'));
      authorizer.refusals.set(ACCOUNT_B, new AuthUnavailableError('crossbar unreachable'));
      expect(
        await service.unsubscribe(session, {
          token: TOKEN,
          accountId: ACCOUNT_B,
          bindings: [CREATE],
        }),
      ).toEqual({ unsubscribed: [CREATE], subscribed: [CREATE, DESTROY] });
      expect(await service.unsubscribe(session, { token: TOKEN, accountId: ACCOUNT_A })).toEqual({
        unsubscribed: [CREATE, DESTROY],
        subscribed: [],
      });
      expect(authorizer.calls).toEqual([]);
      expect(broker.counts.size).toBe(0);
    });

    it('releases exactly the keys of the bindings removed', async () => {
      const result = await service.unsubscribe(session, {
        token: TOKEN,
        accountId: ACCOUNT_A,
        bindings: [CREATE],
      });
      expect(result).toEqual({ unsubscribed: [CREATE], subscribed: [DESTROY, CREATE] });
      expect(authorizer.calls).toEqual([]);
      expect(broker.releasedKeys()).toEqual([`callevt::${CREATE}`]);
      expect(registry.of(session).map((s) => `${s.accountId}/${s.binding.binding}`)).toEqual([
        `${ACCOUNT_A}/${DESTROY}`,
        `${ACCOUNT_B}/${CREATE}`,
      ]);
    });

    it('releases nothing for a binding the session never held (Kazoo weakness W8)', async () => {
      const other = newSession('s2');
      await service.subscribe(other, { token: TOKEN, accountId: ACCOUNT_A, bindings: [ANSWER] });
      const before = new Map(broker.counts);

      // `other` holds ANSWER on ACCOUNT_A; `session` never did, and DESTROY on ACCOUNT_B neither.
      const answer = await service.unsubscribe(session, {
        token: TOKEN,
        accountId: ACCOUNT_A,
        bindings: [ANSWER],
      });
      const destroy = await service.unsubscribe(session, {
        token: TOKEN,
        accountId: ACCOUNT_B,
        bindings: [DESTROY],
      });

      expect(broker.released).toEqual([]);
      expect(broker.counts).toEqual(before);
      expect(service.bindingsOf(other)).toEqual([ANSWER]);
      expect(answer.subscribed).toEqual([CREATE, DESTROY]);
      expect(destroy.subscribed).toEqual([CREATE, DESTROY]);
      expect(registry.subscriptionCount).toBe(4);
    });

    it('unsubscribing the same binding twice releases once', async () => {
      const command = { token: TOKEN, accountId: ACCOUNT_A, bindings: [CREATE, CREATE] };
      await service.unsubscribe(session, command);
      await service.unsubscribe(session, command);
      expect(broker.releasedKeys()).toEqual([`callevt::${CREATE}`]);
    });

    it('without bindings drops every subscription of the account', async () => {
      const result = await service.unsubscribe(session, { token: TOKEN, accountId: ACCOUNT_A });
      expect(result).toEqual({ unsubscribed: [CREATE, DESTROY], subscribed: [CREATE] });
      expect(broker.releasedKeys().sort()).toEqual([`callevt::${CREATE}`, `callevt::${DESTROY}`]);
      expect(registry.of(session).map((s) => s.accountId)).toEqual([ACCOUNT_B]);
    });

    it('without account and bindings drops everything, asking Crossbar only when nothing is held', async () => {
      const result = await service.unsubscribe(session, { token: TOKEN, bindings: [] });
      expect(authorizer.calls).toEqual([]);
      expect(result).toEqual({ unsubscribed: [CREATE, DESTROY], subscribed: [] });
      expect(broker.releasedKeys()).toHaveLength(3);
      expect(broker.counts.size).toBe(0);
      expect(registry.sessionCount).toBe(0);

      await service.unsubscribe(session, { token: TOKEN });
      expect(authorizer.calls).toEqual([{ kind: 'authenticate', token: TOKEN }]);
    });
  });

  describe('disconnect', () => {
    it('releases everything the session held and nothing of other sessions', async () => {
      const other = newSession('s2');
      await service.subscribe(session, {
        token: TOKEN,
        accountId: ACCOUNT_A,
        bindings: [CREATE, 'call.*.*'],
      });
      await service.subscribe(session, { token: TOKEN, accountId: ACCOUNT_B, bindings: [DESTROY] });
      await service.subscribe(other, { token: TOKEN, accountId: ACCOUNT_A, bindings: [CREATE] });

      service.disconnect(session);

      expect(broker.releasedKeys()).toHaveLength(1 + 9 + 1);
      expect(broker.counts).toEqual(new Map([[`callevt::${CREATE}`, 1]]));
      expect(service.bindingsOf(session)).toEqual([]);
      expect(service.bindingsOf(other)).toEqual([CREATE]);
      expect(registry.sessionCount).toBe(1);
    });

    it('a subscribe still waiting on authorization when the session closes leaves nothing behind', async () => {
      const gate = deferred<void>();
      authorizer.gates.set(ACCOUNT_A, gate.promise);
      const pending = service.subscribe(session, {
        token: TOKEN,
        accountId: ACCOUNT_A,
        bindings: [CREATE, DESTROY],
      });
      // Let the request reach the authorizer before the session goes away.
      await Promise.resolve();
      await Promise.resolve();
      expect(authorizer.calls).toHaveLength(1);

      service.disconnect(session);
      gate.resolve();

      await expect(pending).resolves.toEqual([]);
      expect(registry.subscriptionCount).toBe(0);
      expect(registry.sessionCount).toBe(0);
      expect(broker.acquired).toEqual([]);
      expect(broker.counts.size).toBe(0);
    });

    it('a subscribe queued behind another request of a closed session leaves nothing behind', async () => {
      const gate = deferred<void>();
      authorizer.gates.set(ACCOUNT_A, gate.promise);
      const first = service.subscribe(session, {
        token: TOKEN,
        accountId: ACCOUNT_A,
        bindings: [CREATE],
      });
      const second = service.subscribe(session, {
        token: TOKEN,
        accountId: ACCOUNT_A,
        bindings: [DESTROY],
      });
      service.disconnect(session);
      gate.resolve();
      await Promise.all([first, second]);
      expect(registry.subscriptionCount).toBe(0);
      expect(broker.counts.size).toBe(0);
    });
  });

  describe('ordering', () => {
    it('subscribe then unsubscribe issued without awaiting ends unsubscribed', async () => {
      const gate = deferred<void>();
      authorizer.gates.set(ACCOUNT_A, gate.promise);
      const subscribing = service.subscribe(session, {
        token: TOKEN,
        accountId: ACCOUNT_A,
        bindings: [CREATE],
      });
      const unsubscribing = service.unsubscribe(session, {
        token: TOKEN,
        accountId: ACCOUNT_A,
        bindings: [CREATE],
      });
      // The unsubscribe must not even reach the authorizer before the subscribe is done.
      await Promise.resolve();
      await Promise.resolve();
      expect(authorizer.calls).toHaveLength(1);

      gate.resolve();
      await expect(subscribing).resolves.toEqual([CREATE]);
      await expect(unsubscribing).resolves.toEqual({ unsubscribed: [CREATE], subscribed: [] });
      expect(service.bindingsOf(session)).toEqual([]);
      expect(broker.counts.size).toBe(0);
      expect(broker.acquiredKeys()).toEqual([`callevt::${CREATE}`]);
      expect(broker.releasedKeys()).toEqual([`callevt::${CREATE}`]);
    });

    it('a failing request does not stop the ones queued after it', async () => {
      const gate = deferred<void>();
      authorizer.gates.set(ACCOUNT_B, gate.promise);
      const refused = service.subscribe(session, {
        token: TOKEN,
        accountId: ACCOUNT_B,
        bindings: [CREATE],
      });
      const accepted = service.subscribe(session, {
        token: TOKEN,
        accountId: ACCOUNT_A,
        bindings: [DESTROY],
      });
      await Promise.resolve();
      await Promise.resolve();
      expect(authorizer.calls.map((c) => c.kind === 'authorize' && c.accountId)).toEqual([
        ACCOUNT_B,
      ]);

      gate.reject(new AccountForbiddenError());
      await expect(refused).rejects.toBeInstanceOf(AccountForbiddenError);
      await expect(accepted).resolves.toEqual([DESTROY]);
      expect(registry.of(session).map((s) => s.accountId)).toEqual([ACCOUNT_A]);
    });

    it('requests of different sessions do not wait for each other', async () => {
      const gate = deferred<void>();
      authorizer.gates.set(ACCOUNT_A, gate.promise);
      let blockedDone = false;
      const blocked = service
        .subscribe(session, { token: TOKEN, accountId: ACCOUNT_A, bindings: [CREATE] })
        .finally(() => (blockedDone = true));
      const other = newSession('s2');
      await expect(
        service.subscribe(other, { token: TOKEN, accountId: ACCOUNT_B, bindings: [DESTROY] }),
      ).resolves.toEqual([DESTROY]);
      expect(blockedDone).toBe(false);
      gate.resolve();
      await expect(blocked).resolves.toEqual([CREATE]);
    });
  });

  // All or nothing holds at the broker too: a rejected acquire rolls the whole request back.
  it('leaves no subscription behind when the broker acquire fails', async () => {
    broker.failWith = new Error('no consumer for exchange callevt');
    await expect(
      service.subscribe(session, {
        token: TOKEN,
        accountId: ACCOUNT_A,
        bindings: [CREATE, DESTROY],
      }),
    ).rejects.toThrow('no consumer for exchange callevt');
    expect(service.bindingsOf(session)).toEqual([]);
    expect(registry.subscriptionCount).toBe(0);
    expect(broker.counts.size).toBe(0);
    expect(broker.released).toEqual([]);
  });

  describe('revocation', () => {
    const OTHER_TOKEN = 'token-of-a-renewed';
    const lostBy = (target: Session) => {
      const lost: Array<{ accountId: string; bindings: readonly string[]; code: string }> = [];
      target.authorizationLost = (accountId, bindings, error) => {
        lost.push({ accountId, bindings, code: error.code });
      };
      return lost;
    };
    const later = (ms: number) => clock.set(new Date(clock.now().getTime() + ms).toISOString());

    it('drops the subscriptions of a revoked token, releases their keys and tells the session', async () => {
      const lost = lostBy(session);
      await service.subscribe(session, {
        token: TOKEN,
        accountId: ACCOUNT_A,
        bindings: [CREATE, DESTROY],
      });
      authorizer.revoked.add(TOKEN);
      later(60_000);
      await watch.sweep();

      expect(service.bindingsOf(session)).toEqual([]);
      expect(broker.counts.size).toBe(0);
      expect(lost).toEqual([
        { accountId: ACCOUNT_A, bindings: [CREATE, DESTROY], code: 'token_invalid' },
      ]);
      expect(watch.size).toBe(0);
    });

    it('keeps a binding subscribed again with a fresh token when the old one is revoked', async () => {
      const lost = lostBy(session);
      await service.subscribe(session, { token: TOKEN, accountId: ACCOUNT_A, bindings: [CREATE] });
      await service.subscribe(session, {
        token: OTHER_TOKEN,
        accountId: ACCOUNT_A,
        bindings: [CREATE, DESTROY],
      });
      authorizer.revoked.add(TOKEN);
      later(60_000);
      await watch.sweep();

      expect(service.bindingsOf(session)).toEqual([CREATE, DESTROY]);
      expect(lost).toEqual([]);
      expect(authorizer.calls.filter((c) => c.kind === 'recheck')).toEqual([
        { kind: 'recheck', token: OTHER_TOKEN, accountId: ACCOUNT_A },
      ]);
    });

    it('stops watching what was unsubscribed or disconnected', async () => {
      const other = newSession('s2');
      await service.subscribe(session, { token: TOKEN, accountId: ACCOUNT_A, bindings: [CREATE] });
      await service.subscribe(other, { token: TOKEN, accountId: ACCOUNT_A, bindings: [CREATE] });
      expect(watch.size).toBe(1);
      await service.unsubscribe(session, { token: TOKEN, accountId: ACCOUNT_A });
      expect(watch.size).toBe(1);
      service.disconnect(other);
      expect(watch.size).toBe(0);
      later(60_000);
      await watch.sweep();
      expect(authorizer.calls.filter((c) => c.kind === 'recheck')).toEqual([]);
    });

    it('watches nothing for a request the broker refused', async () => {
      broker.failWith = new Error('no consumer for exchange callevt');
      await rejectionOf(
        service.subscribe(session, { token: TOKEN, accountId: ACCOUNT_A, bindings: [CREATE] }),
      );
      expect(watch.size).toBe(0);
    });
  });
});
