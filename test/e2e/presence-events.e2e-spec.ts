import { randomBytes } from 'node:crypto';
import { defaultFeatures } from '../../src/features';
import { PRESENCE_EVENTS, PRESENCE_EXCHANGE } from '../../src/features/presence/presence.family';
import { PresenceModule } from '../../src/features/presence/presence.module';
import { encodeRoutingWord } from '../../src/core/topics/routing-key-encoding';
import { brokerBindings } from '../support/amqp';
import type { ClientVersion, EventClient } from '../support/clients';
import { presenceEvent, realmOf } from '../support/presence-events';
import { Stack } from '../support/stack';
import { waitUntil } from '../support/wait';
import { itWithNodeQueues } from '../support/replay-log-mode';

type Json = Record<string, unknown>;

// Until presence joins the default features, this suite adds it itself.
const features = defaultFeatures.includes(PresenceModule)
  ? defaultFeatures
  : [...defaultFeatures, PresenceModule];

/** socket.io 2.x clients have no `onAny`: they must name the events they listen for. */
const WATCH = Object.values(PRESENCE_EVENTS);

interface Tenant {
  readonly accountId: string;
  readonly token: string;
  readonly realm: string;
}

const field = (payload: unknown, name: string): unknown => (payload as Json)[name];

describe.each<ClientVersion>(['v4', 'v2'])('presence events to socket.io %s clients', (version) => {
  let stack: Stack;
  let a: Tenant;
  let b: Tenant;

  const tenant = async (accountId?: string): Promise<Tenant> => {
    const { crossbar } = stack;
    const id = accountId === undefined ? stack.account().accountId : crossbar.addAccount(accountId);
    const token = crossbar.issueToken(id);
    return { accountId: id, token, realm: await realmOf(crossbar.url, token, id) };
  };

  const connect = () => stack.connect(version, { watch: WATCH });

  const subscribe = async (client: EventClient, who: Tenant, binding: string) => {
    const ack = await client.subscribe(who.token, who.accountId, binding);
    expect(ack).toEqual({
      status: 'success',
      data: { subscribed: expect.arrayContaining([binding]) as unknown },
    });
  };

  const publish = (event: { routingKey: string; body: Json }) =>
    stack.publisher.publish(PRESENCE_EXCHANGE, event.routingKey, event.body);

  const keysOf = async () =>
    (await brokerBindings(stack.gateway.queuePrefix)).map((k) => `${k.source}:${k.routingKey}`);

  beforeAll(async () => {
    stack = await Stack.start({ features });
    a = await tenant();
    b = await tenant();
  });

  afterEach(() => stack.closeClients());

  afterAll(async () => {
    await stack.close();
  });

  it("delivers dialog and update messages for the account's realm under their Event-Name, payload intact", async () => {
    const client = await connect();
    await subscribe(client, a, 'presence.dialog.*');
    await subscribe(client, a, 'presence.update.*');
    const dialog = presenceEvent('dialog', a.realm, 'intact@10.0.0.1');
    const update = presenceEvent('update', a.realm, 'intact@10.0.0.1');
    // Kazoo's key: the realm's dots and the call-id's `@` and dots are encoded.
    expect(dialog.routingKey).toBe(
      `dialog.${a.realm.replaceAll('.', '%2E')}.intact%4010%2E0%2E0%2E1`,
    );
    await publish(dialog);
    await publish(update);

    expect((await client.waitFor('dialog_update')).payload).toEqual(dialog.body);
    expect((await client.waitFor('update')).payload).toEqual(update.body);
  });

  it('delivers mwi_updates for a specific user whose name holds `@` and dots, and not for others', async () => {
    const client = await connect();
    const user = 'alice.smith@branch';
    await subscribe(client, a, `presence.mwi_updates.${user}`);
    const other = presenceEvent('mwi_updates', a.realm, 'bob');
    const wanted = presenceEvent('mwi_updates', a.realm, user);
    expect(wanted.routingKey).toBe(
      `mwi_updates.${encodeRoutingWord(a.realm)}.alice%2Esmith%40branch`,
    );
    // One queue, ordered delivery: once `wanted` is in, `other` was dispatched before it.
    await publish(other);
    await publish(wanted);

    const received = await client.waitFor('mwi_update');
    expect(received.payload).toEqual(wanted.body);
    expect(field(received.payload, 'Messages-New')).toBe(2);
    expect(client.named('mwi_update')).toHaveLength(1);
  });

  it("never delivers another account's realm, over many interleaved events", async () => {
    const clientA = await connect();
    const clientB = await connect();
    await subscribe(clientA, a, 'presence.dialog.*');
    // B's subscription binds B's realm on the node queue, so B's messages do reach the node.
    await subscribe(clientB, b, 'presence.dialog.*');

    const ownCallIds: string[] = [];
    for (let i = 0; i < 60; i++) {
      // The same message as A's, addressed to B's realm.
      await publish(presenceEvent('dialog', b.realm, `call-${i}`));
      if (i % 10 === 0) {
        ownCallIds.push(`call-${i}`);
        await publish(presenceEvent('dialog', a.realm, `call-${i}`));
      }
    }
    await publish(presenceEvent('dialog', a.realm, 'a-marker'));
    await clientA.waitFor('dialog_update', (p) => field(p, 'Call-ID') === 'a-marker');
    await waitUntil('B to receive its 60 events', () =>
      clientB.named('dialog_update').length === 60 ? true : undefined,
    );

    const realmsOf = (client: EventClient) =>
      new Set(client.events.map((e) => String(field(e.payload, 'Presence-ID')).split('@')[1]));
    expect(realmsOf(clientA)).toEqual(new Set([a.realm]));
    expect(clientA.named('dialog_update').map((p) => field(p, 'Call-ID'))).toEqual([
      ...ownCallIds,
      'a-marker',
    ]);
    expect(realmsOf(clientB)).toEqual(new Set([b.realm]));
  });

  it('drops the messages of a realm two accounts claim, for both', async () => {
    // The Crossbar stand-in derives the realm from the first 8 characters of the account id.
    const prefix = randomBytes(4).toString('hex');
    const twinOne = await tenant(`${prefix}${randomBytes(12).toString('hex')}`);
    const twinTwo = await tenant(`${prefix}${randomBytes(12).toString('hex')}`);
    expect(twinOne.realm).toBe(twinTwo.realm);
    const one = await connect();
    const two = await connect();
    const witness = await connect();
    await subscribe(one, twinOne, 'presence.dialog.*');
    await subscribe(two, twinTwo, 'presence.dialog.*');
    await subscribe(witness, a, 'presence.dialog.*');

    await publish(presenceEvent('dialog', twinOne.realm, 'ambiguous'));
    await publish(presenceEvent('dialog', a.realm, 'twin-marker'));
    await witness.waitFor('dialog_update', (p) => field(p, 'Call-ID') === 'twin-marker');
    expect(one.events).toEqual([]);
    expect(two.events).toEqual([]);
  });

  it('serves wildcard, raw and already-encoded call-id bindings', async () => {
    const callId = 'abc@10.0.0.1';
    const wildcard = await connect();
    const raw = await connect();
    const encoded = await connect();
    await subscribe(wildcard, a, 'presence.dialog.*');
    await subscribe(raw, a, `presence.dialog.${callId}`);
    await subscribe(encoded, a, `presence.dialog.${encodeRoutingWord(callId)}`);

    await publish(presenceEvent('dialog', a.realm, 'xyz@10.0.0.2'));
    await publish(presenceEvent('dialog', a.realm, callId));
    await publish(presenceEvent('dialog', a.realm, 'id-marker'));
    await wildcard.waitFor('dialog_update', (p) => field(p, 'Call-ID') === 'id-marker');

    expect(wildcard.named('dialog_update').map((p) => field(p, 'Call-ID'))).toEqual([
      'xyz@10.0.0.2',
      callId,
      'id-marker',
    ]);
    for (const client of [raw, encoded]) {
      await client.waitFor('dialog_update');
      expect(client.named('dialog_update').map((p) => field(p, 'Call-ID'))).toEqual([callId]);
    }
  });

  it("rejects bindings outside bh_presence's grammar with Kazoo's texts", async () => {
    const client = await connect();
    const cases: ReadonlyArray<readonly [string, string]> = [
      ['presence.dialog_update.*', 'event dialog_update not supported'],
      ['presence.dialog', 'invalid format for presence subscription : dialog'],
      ['presence.#', 'invalid format for presence subscription : #'],
      ['presence.dialog.*.*', 'invalid format for presence subscription : dialog, *, *'],
      ['presence.dialog.abc.*', 'invalid format for presence subscription : dialog, abc, *'],
      ['presence.foo.*.*', 'event foo not supported'],
    ];
    for (const [binding, message] of cases) {
      expect(await client.subscribe(a.token, a.accountId, binding)).toEqual({
        status: 'error',
        data: { errors: [message], code: 'invalid_binding', temporary: false },
      });
    }
  });

  itWithNodeQueues(
    'binds <kind>.<encoded realm>.* per account and releases it on unsubscribe',
    async () => {
      await waitUntil('earlier tests to release their bindings', async () =>
        (await keysOf()).length === 0 ? true : undefined,
      );
      const realmA = encodeRoutingWord(a.realm);
      const realmB = encodeRoutingWord(b.realm);
      const first = await connect();
      const second = await connect();
      await subscribe(first, a, 'presence.dialog.*');
      await subscribe(first, a, 'presence.dialog.abc@10.0.0.1');
      await subscribe(first, a, 'presence.mwi_updates.1001');
      await subscribe(second, b, 'presence.dialog.*');
      expect(await keysOf()).toEqual(
        [
          `presence:dialog.${realmA}.*`,
          `presence:dialog.${realmB}.*`,
          `presence:mwi_updates.${realmA}.*`,
        ].sort((x, y) => x.localeCompare(y)),
      );

      // The specific and the wildcard dialog bindings share one key: it stays until both go.
      const unsubscribe = (binding: string) =>
        first.request('unsubscribe', { auth_token: a.token, account_id: a.accountId, binding });
      expect(await unsubscribe('presence.dialog.*')).toEqual({
        status: 'success',
        data: {
          unsubscribed: ['presence.dialog.*'],
          subscribed: ['presence.dialog.abc@10.0.0.1', 'presence.mwi_updates.1001'],
        },
      });
      await unsubscribe('presence.mwi_updates.1001');
      const withoutMwi = await waitUntil('the mwi binding to go', async () => {
        const keys = await keysOf();
        return keys.some((k) => k.includes('mwi_updates')) ? undefined : keys;
      });
      expect(withoutMwi).toContain(`presence:dialog.${realmA}.*`);
      await unsubscribe('presence.dialog.abc@10.0.0.1');
      const onlyB = await waitUntil("A's dialog binding to go", async () => {
        const keys = await keysOf();
        return keys.includes(`presence:dialog.${realmA}.*`) ? undefined : keys;
      });
      expect(onlyB).toEqual([`presence:dialog.${realmB}.*`]);

      await second.request('unsubscribe', { auth_token: b.token });
      await waitUntil('every presence binding to go', async () =>
        (await keysOf()).length === 0 ? true : undefined,
      );
      expect(stack.gateway.binder.boundKeys()).toEqual([]);
    },
  );
});
