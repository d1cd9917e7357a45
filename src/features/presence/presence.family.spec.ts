import type { Environment } from '../../config/environment';
import { Clock } from '../../core/clock';
import { AuthUnavailableError, TokenInvalidError } from '../../core/errors';
import type { Session, Subscription } from '../../core/session';
import type { BrokerBindings } from '../../core/subscriptions/ports';
import type { SubscriptionRegistry } from '../../core/subscriptions/subscription.registry';
import {
  ALL_ACCOUNTS,
  InvalidBindingError,
  encodeRoutingWord,
  type BindingContext,
  type BrokerKey,
  type KazooMessage,
} from '../../core';
import { FIXTURE_REALM, presenceFixture } from '../../../test/support/presence-events';
import {
  PRESENCE_EVENTS,
  PRESENCE_EXCHANGE,
  PRESENCE_KINDS,
  PENDING_CLAIM_MS,
  PresenceFamily,
  type PresenceKind,
} from './presence.family';

const ACCOUNT = '4b8c6fec4b2597882c0390202d195419';
const OTHER_ACCOUNT = 'a'.repeat(32);
const ENCODED_REALM = 'wefwefwefwef%2E2600hz%2Ecom';

function newFamily(): PresenceFamily {
  return new PresenceFamily();
}

/** A BindingContext whose realm is `realm`, counting how often it is asked for. */
function contextFor(accountId: string, realm: string): BindingContext & { asked: number } {
  const context = {
    accountId,
    now: new Date('2024-05-01T00:00:00Z'),
    asked: 0,
    realm: () => {
      context.asked++;
      return Promise.resolve(realm);
    },
  };
  return context;
}

/** Lets `family` learn that `accountId` owns `realm`, as a subscription would. */
async function learn(family: PresenceFamily, accountId: string, realm: string): Promise<void> {
  await family.brokerKeys(family.parseBinding('presence.dialog.*'), contextFor(accountId, realm));
}

function thrownBy(action: () => unknown): unknown {
  try {
    action();
  } catch (error) {
    return error;
  }
  return undefined;
}

describe('PresenceFamily', () => {
  it('offers Kazoo master’s three bindings', () => {
    expect(newFamily().availableBindings).toEqual([
      'presence.dialog.{CALL_ID}',
      'presence.update.{CALL_ID}',
      'presence.mwi_updates.{USER}',
    ]);
  });

  describe('parseBinding: valid bindings', () => {
    const family = newFamily();
    const cases: ReadonlyArray<readonly [string, string, PresenceKind]> = [
      ['presence.dialog.*', 'dialog.*.*', 'dialog'],
      ['presence.update.*', 'update.*.*', 'update'],
      ['presence.mwi_updates.*', 'mwi_updates.*.*', 'mwi_updates'],
      [
        'presence.dialog.4f2a9c1e-77b1-4c1e-9d3a-5b6e0f8a2c10',
        'dialog.*.4f2a9c1e-77b1-4c1e-9d3a-5b6e0f8a2c10',
        'dialog',
      ],
      ['presence.dialog.abc@10.0.0.1', 'dialog.*.abc%4010%2E0%2E0%2E1', 'dialog'],
      ['presence.update.abc%4010%2E0%2E0%2E1', 'update.*.abc%4010%2E0%2E0%2E1', 'update'],
      ['presence.mwi_updates.1001', 'mwi_updates.*.1001', 'mwi_updates'],
      [
        'presence.mwi_updates.alice.smith@branch',
        'mwi_updates.*.alice%2Esmith%40branch',
        'mwi_updates',
      ],
      // Feature codes are sent encoded; an encoded star is part of the user, not a wildcard.
      ['presence.mwi_updates.%2A3101', 'mwi_updates.*.%2A3101', 'mwi_updates'],
    ];

    it.each(cases)('%s -> pattern %s', (binding, pattern, kind) => {
      const parsed = family.parseBinding(binding);
      expect(parsed).toEqual({ binding, pattern, kind });
    });

    it('raw and already-encoded ids give the same pattern', () => {
      expect(family.parseBinding('presence.mwi_updates.alice.smith@branch').pattern).toBe(
        family.parseBinding('presence.mwi_updates.alice%2Esmith%40branch').pattern,
      );
    });
  });

  describe('parseBinding: invalid bindings', () => {
    const family = newFamily();
    const cases: ReadonlyArray<readonly [string, string]> = [
      ['presence', 'invalid format for presence subscription : '],
      ['presence.dialog', 'invalid format for presence subscription : dialog'],
      ['presence.dialog.', 'invalid format for presence subscription : dialog, '],
      ['presence.#', 'invalid format for presence subscription : #'],
      ['presence.dialog.#', 'invalid format for presence subscription : dialog, #'],
      [
        'presence.mwi_updates.1001.#',
        'invalid format for presence subscription : mwi_updates, 1001, #',
      ],
      // A wildcard is a whole id or nothing.
      ['presence.dialog.*.*', 'invalid format for presence subscription : dialog, *, *'],
      ['presence.dialog.abc.*', 'invalid format for presence subscription : dialog, abc, *'],
      ['presence.update.*.abc', 'invalid format for presence subscription : update, *, abc'],
      [
        'presence.mwi_updates.*3101',
        'invalid format for presence subscription : mwi_updates, *3101',
      ],
      ['presence.dialog.ab*c', 'invalid format for presence subscription : dialog, ab*c'],
      ['presence.*.*', 'event * not supported'],
      ['presence.foo.*', 'event foo not supported'],
      // Kazoo's bh_presence judges the kind before the shape.
      ['presence.foo', 'event foo not supported'],
      ['presence.foo.*.*', 'event foo not supported'],
      ['presence.dial*.*', 'event dial* not supported'],
      ['presence.DIALOG.*', 'event DIALOG not supported'],
      // Kazoo's Event-Names and other presence routing words are not binding kinds.
      ['presence.dialog_update.*', 'event dialog_update not supported'],
      ['presence.mwi_update.1001', 'event mwi_update not supported'],
      ['presence.subscriptions.*', 'event subscriptions not supported'],
      ['presence.constructor.*', 'event constructor not supported'],
      ['presence.__proto__.*', 'event __proto__ not supported'],
    ];

    it.each(cases)('%s -> %j', (binding, message) => {
      const thrown = thrownBy(() => family.parseBinding(binding));
      expect(thrown).toBeInstanceOf(InvalidBindingError);
      expect((thrown as InvalidBindingError).message).toBe(message);
      expect((thrown as InvalidBindingError).code).toBe('invalid_binding');
    });
  });

  describe('brokerKeys', () => {
    it.each(PRESENCE_KINDS.map((kind) => [kind]))(
      'presence.%s.* binds <kind>.<encoded realm>.* on the presence exchange',
      async (kind) => {
        const family = newFamily();
        const context = contextFor(ACCOUNT, FIXTURE_REALM);
        const keys = await family.brokerKeys(family.parseBinding(`presence.${kind}.*`), context);
        expect(keys).toEqual([{ exchange: 'presence', routingKey: `${kind}.${ENCODED_REALM}.*` }]);
        expect(context.asked).toBe(1);
      },
    );

    it('encodes every dot of the realm as %2E', async () => {
      const family = newFamily();
      const keys = await family.brokerKeys(
        family.parseBinding('presence.update.*'),
        contextFor(ACCOUNT, 'a.b-c.sip.example.com'),
      );
      expect(keys.map((k) => k.routingKey)).toEqual(['update.a%2Eb-c%2Esip%2Eexample%2Ecom.*']);
    });

    it('needs the same key for a specific id as for the wildcard', async () => {
      const family = newFamily();
      const context = contextFor(ACCOUNT, FIXTURE_REALM);
      const specific = await family.brokerKeys(
        family.parseBinding('presence.dialog.abc@10.0.0.1'),
        context,
      );
      const wildcard = await family.brokerKeys(family.parseBinding('presence.dialog.*'), context);
      expect(specific).toEqual(wildcard);
    });

    it('lets a failing realm lookup fail the binding', async () => {
      const family = newFamily();
      const context: BindingContext = {
        accountId: ACCOUNT,
        now: new Date(),
        realm: () => Promise.reject(new InvalidBindingError(`account ${ACCOUNT} has no realm`)),
      };
      await expect(
        family.brokerKeys(family.parseBinding('presence.dialog.*'), context),
      ).rejects.toThrow(`account ${ACCOUNT} has no realm`);
    });

    it("refuses a superduper admin's ALL_ACCOUNTS, which has no single realm", async () => {
      const family = newFamily();
      const context = contextFor(ALL_ACCOUNTS, 'never.asked');
      for (const binding of ['presence.dialog.*', 'presence.mwi_updates.1001']) {
        const rejection = family.brokerKeys(family.parseBinding(binding), context);
        await expect(rejection).rejects.toBeInstanceOf(InvalidBindingError);
        await expect(rejection).rejects.toThrow(
          `${binding} needs one account's realm: account id * has none`,
        );
      }
      // Nothing was asked of Crossbar and no realm was taken for "every account".
      expect(context.asked).toBe(0);
      const delivery = { exchange: PRESENCE_EXCHANGE, routingKey: 'dialog.never%2Easked.x' };
      expect(family.describe({ 'Event-Name': 'dialog_update' }, delivery)?.accountId).toBe(
        undefined,
      );
    });

    it.each([[''], ['*'], ['#']])(
      'refuses the realm %j, which would bind every tenant',
      async (realm) => {
        const family = newFamily();
        const rejection = family.brokerKeys(
          family.parseBinding('presence.dialog.*'),
          contextFor(ACCOUNT, realm),
        );
        await expect(rejection).rejects.toBeInstanceOf(InvalidBindingError);
        await expect(rejection).rejects.toThrow(`account ${ACCOUNT} has no usable realm`);
      },
    );
  });

  describe('describe', () => {
    it.each(PRESENCE_KINDS.map((kind) => [kind]))(
      'the %s fixture carries the routing key kapi_presence gives it',
      (kind) => {
        const { exchange, routing_key, body } = presenceFixture(kind);
        const presenceId = body['Presence-ID'] as string;
        const [user, realm] = presenceId.split('@');
        const id = kind === 'mwi_updates' ? user : (body['Call-ID'] as string);
        expect(exchange).toBe(PRESENCE_EXCHANGE);
        expect(realm).toBe(FIXTURE_REALM);
        expect(routing_key).toBe(`${kind}.${encodeRoutingWord(realm)}.${encodeRoutingWord(id)}`);
        expect(body['Event-Name']).toBe(PRESENCE_EVENTS[kind]);
        expect(body).not.toHaveProperty('_source');
      },
    );

    it.each(PRESENCE_KINDS.map((kind) => [kind, PRESENCE_EVENTS[kind]]))(
      'gives a %s message of a known realm to its account, named %s',
      async (kind, name) => {
        const family = newFamily();
        await learn(family, ACCOUNT, FIXTURE_REALM);
        const fixture = presenceFixture(kind);
        const event = family.describe(fixture.body, {
          exchange: fixture.exchange,
          routingKey: fixture.routing_key,
        });
        expect(event).toEqual({
          accountId: ACCOUNT,
          key: fixture.routing_key,
          name,
          payload: fixture.body,
        });
        // The payload is the message itself, not a copy or a rewrite.
        expect(event?.payload).toBe(fixture.body);
      },
    );

    it('leaves the message untouched', async () => {
      const family = newFamily();
      await learn(family, ACCOUNT, FIXTURE_REALM);
      const fixture = presenceFixture('dialog');
      const before = JSON.stringify(fixture.body);
      family.describe(fixture.body, { exchange: 'presence', routingKey: fixture.routing_key });
      expect(JSON.stringify(fixture.body)).toBe(before);
    });

    it('has no account for a realm no subscription named', () => {
      const family = newFamily();
      const fixture = presenceFixture('dialog');
      const event = family.describe(fixture.body, {
        exchange: 'presence',
        routingKey: fixture.routing_key,
      });
      expect(event).toBeDefined();
      expect(event?.accountId).toBeUndefined();
    });

    it('tells accounts apart by the realm word of the routing key, whatever To and From say', async () => {
      const family = newFamily();
      await learn(family, ACCOUNT, FIXTURE_REALM);
      await learn(family, OTHER_ACCOUNT, 'other.example.com');
      const body = presenceFixture('dialog').body;
      const delivery = (realm: string) => ({
        exchange: 'presence',
        routingKey: `dialog.${realm}.abc`,
      });
      expect(family.describe(body, delivery(ENCODED_REALM))?.accountId).toBe(ACCOUNT);
      expect(family.describe(body, delivery('other%2Eexample%2Ecom'))?.accountId).toBe(
        OTHER_ACCOUNT,
      );
      // The unencoded realm is not the word Kazoo publishes; it names no known realm.
      expect(family.describe(body, delivery('other.example.com'))?.accountId).toBeUndefined();
    });

    it('keeps a realm known when its account subscribes again or to other kinds', async () => {
      const family = newFamily();
      const context = contextFor(ACCOUNT, FIXTURE_REALM);
      for (const binding of [
        'presence.dialog.*',
        'presence.dialog.x',
        'presence.mwi_updates.1001',
      ]) {
        await family.brokerKeys(family.parseBinding(binding), context);
      }
      const fixture = presenceFixture('update');
      expect(
        family.describe(fixture.body, { exchange: 'presence', routingKey: fixture.routing_key })
          ?.accountId,
      ).toBe(ACCOUNT);
    });

    it('drops a realm two accounts claim, for both of them', async () => {
      const family = newFamily();
      await learn(family, ACCOUNT, FIXTURE_REALM);
      await learn(family, OTHER_ACCOUNT, FIXTURE_REALM);
      for (const kind of PRESENCE_KINDS) {
        const fixture = presenceFixture(kind);
        const event = family.describe(fixture.body, {
          exchange: 'presence',
          routingKey: fixture.routing_key,
        });
        expect(event).toBeDefined();
        expect(event?.accountId).toBeUndefined();
      }
    });

    it.each([
      ['subscriptions.wefwefwefwef%2E2600hz%2Ecom'],
      ['mwi_unsolicited_updates.wefwefwefwef%2E2600hz%2Ecom'],
      ['presence.search_req.wefwefwefwef%2E2600hz%2Ecom'],
      ['probes.dialog'],
      ['dialog'],
      ['dialog..abc'],
    ])('does not emit what arrives with routing key %s', async (routingKey) => {
      const family = newFamily();
      await learn(family, ACCOUNT, FIXTURE_REALM);
      expect(
        family.describe(presenceFixture('dialog').body, { exchange: 'presence', routingKey }),
      ).toBeUndefined();
    });

    it.each([[''], [42], [null], [undefined]])(
      'does not emit a message whose Event-Name is %j',
      async (name) => {
        const family = newFamily();
        await learn(family, ACCOUNT, FIXTURE_REALM);
        const fixture = presenceFixture('dialog');
        const message: KazooMessage = { ...fixture.body, 'Event-Name': name };
        expect(
          family.describe(message, { exchange: 'presence', routingKey: fixture.routing_key }),
        ).toBeUndefined();
      },
    );
  });

  describe('realm ownership follows Crossbar', () => {
    /** Crossbar's realms, changeable; every lookup reads the current one. */
    const crossbar = new Map<string, string | Error>();
    const lookupOf = (accountId: string) => () => {
      const answer = crossbar.get(accountId);
      return answer instanceof Error ? Promise.reject(answer) : Promise.resolve(answer ?? '');
    };
    const subscriptions: Subscription[] = [];
    const bound: string[] = [];
    let time = 0;

    const registry = {
      ofFamily: () => subscriptions,
      contains: (s: Subscription) => subscriptions.includes(s),
      replaceKeys: (s: Subscription, keys: readonly BrokerKey[]) => {
        if (!subscriptions.includes(s)) return false;
        (s as { brokerKeys: readonly BrokerKey[] }).brokerKeys = keys;
        return true;
      },
    } as unknown as SubscriptionRegistry;
    const broker: BrokerBindings = {
      acquire: (keys) => {
        bound.push(...keys.map((k) => k.routingKey));
        return Promise.resolve();
      },
      release: (keys) => {
        for (const key of keys) bound.splice(bound.indexOf(key.routingKey), 1);
      },
    };
    const clock = new (class extends Clock {
      override now(): Date {
        return new Date(time);
      }
    })();

    const withRegistry = () =>
      new PresenceFamily(registry, broker, { PRESENCE_REALM_CHECK_S: 1 } as Environment, clock);

    /** Subscribes `accountId` as the core would: keys from the family, then recorded and bound. */
    async function subscribe(family: PresenceFamily, accountId: string): Promise<Subscription> {
      const binding = family.parseBinding('presence.dialog.*');
      const keys = await family.brokerKeys(binding, {
        accountId,
        now: new Date(time),
        realm: lookupOf(accountId),
      });
      const subscription = {
        session: {} as Session,
        accountId,
        family: 'presence',
        binding,
        brokerKeys: keys,
        subscriptionKey: keys[0].routingKey,
        order: subscriptions.length,
      };
      subscriptions.push(subscription);
      await broker.acquire(keys);
      return subscription;
    }

    const ownerOf = (family: PresenceFamily, realm: string) =>
      family.describe(presenceFixture('dialog').body, {
        exchange: 'presence',
        routingKey: `dialog.${encodeRoutingWord(realm)}.abc`,
      })?.accountId;

    /** Lets checks started in the background finish. */
    const settle = () => new Promise((resolve) => setImmediate(resolve));

    beforeEach(() => {
      crossbar.clear();
      subscriptions.length = 0;
      bound.length = 0;
      time = 0;
    });

    it("checks the holder at once when another account claims its realm, and follows Crossbar's answer", async () => {
      const family = withRegistry();
      crossbar.set(ACCOUNT, 'shared.example.com');
      await subscribe(family, ACCOUNT);
      expect(ownerOf(family, 'shared.example.com')).toBe(ACCOUNT);

      crossbar.set(ACCOUNT, 'new.example.com');
      crossbar.set(OTHER_ACCOUNT, 'shared.example.com');
      const claiming = subscribe(family, OTHER_ACCOUNT);
      await claiming;
      await settle();
      expect(ownerOf(family, 'shared.example.com')).toBe(OTHER_ACCOUNT);
      expect(ownerOf(family, 'new.example.com')).toBe(ACCOUNT);
      expect(subscriptions[0].brokerKeys).toEqual([
        { exchange: 'presence', routingKey: 'dialog.new%2Eexample%2Ecom.*' },
      ]);
      expect(bound.sort()).toEqual([
        'dialog.new%2Eexample%2Ecom.*',
        'dialog.shared%2Eexample%2Ecom.*',
      ]);
    });

    it('delivers a contested realm to no one while the holder still claims it', async () => {
      const family = withRegistry();
      crossbar.set(ACCOUNT, 'shared.example.com');
      crossbar.set(OTHER_ACCOUNT, 'shared.example.com');
      await subscribe(family, ACCOUNT);
      await subscribe(family, OTHER_ACCOUNT);
      await settle();
      expect(ownerOf(family, 'shared.example.com')).toBeUndefined();
    });

    it('stops delivering an account whose realm Crossbar no longer confirms', async () => {
      const family = withRegistry();
      crossbar.set(ACCOUNT, 'mine.example.com');
      await subscribe(family, ACCOUNT);
      crossbar.set(ACCOUNT, new TokenInvalidError());
      await family.checkRealms();
      expect(ownerOf(family, 'mine.example.com')).toBeUndefined();
    });

    it('keeps the last answer while Crossbar is unreachable', async () => {
      const family = withRegistry();
      crossbar.set(ACCOUNT, 'mine.example.com');
      await subscribe(family, ACCOUNT);
      crossbar.set(ACCOUNT, new AuthUnavailableError('crossbar timed out'));
      await family.checkRealms();
      expect(ownerOf(family, 'mine.example.com')).toBe(ACCOUNT);
    });

    it('forgets accounts without a presence subscription once the pending grace is over', async () => {
      const family = withRegistry();
      crossbar.set(ACCOUNT, 'mine.example.com');
      await subscribe(family, ACCOUNT);
      subscriptions.length = 0;
      await family.checkRealms();
      // Just claimed: its subscription may not be recorded yet.
      expect(family.size).toEqual({ accounts: 1, realms: 1 });
      time += PENDING_CLAIM_MS;
      await family.checkRealms();
      expect(family.size).toEqual({ accounts: 0, realms: 0 });
      expect(ownerOf(family, 'mine.example.com')).toBeUndefined();
    });

    it('moves the earlier subscriptions of an account that subscribes with a new realm', async () => {
      const family = withRegistry();
      crossbar.set(ACCOUNT, 'old.example.com');
      const earlier = await subscribe(family, ACCOUNT);
      crossbar.set(ACCOUNT, 'new.example.com');
      await subscribe(family, ACCOUNT);
      await settle();
      expect(earlier.brokerKeys[0].routingKey).toBe('dialog.new%2Eexample%2Ecom.*');
      expect(ownerOf(family, 'old.example.com')).toBeUndefined();
      expect(bound).toEqual(['dialog.new%2Eexample%2Ecom.*', 'dialog.new%2Eexample%2Ecom.*']);
    });
  });
});
