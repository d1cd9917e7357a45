import { accountDb } from '../../src/core';
import { MonthlyRollover } from '../../src/core/subscriptions/monthly-rollover';
import { brokerBindings } from '../support/amqp';
import { SettableClock } from '../support/clock';
import type { ClientVersion, EventClient } from '../support/clients';
import { documentEvent, type DocumentEvent } from '../support/document-events';
import { readFixture } from '../support/kazoo-events';
import { Stack } from '../support/stack';
import { waitUntil } from '../support/wait';
import { itWithNodeQueues } from '../support/replay-log-mode';

/** The suite's clock goes months ahead; its tokens must not expire on the way (a year). */
const TOKEN_TTL_BEYOND_CLOCK_S = 365 * 86400;

const CONFIGURATION = 'configuration';
const FIXTURE_ACCOUNT = '4b8c6fec4b2597882c0390202d195419';
const WATCH = [
  'doc_created_fax',
  'doc_created_user',
  'doc_edited_user',
  'doc_deleted_user',
  'doc_created_device',
  'doc_created_mailbox_message',
];

describe.each<ClientVersion>(['v4', 'v2'])(
  'document events (object family), socket.io %s',
  (version) => {
    const clock = new SettableClock('2026-11-30T23:59:00Z');
    let stack: Stack;
    let a: { accountId: string; token: string };
    let b: { accountId: string; token: string };

    const publish = (event: DocumentEvent) =>
      stack.publisher.publish(CONFIGURATION, event.routingKey, event.body);
    const connect = () => stack.connect(version, { watch: WATCH });
    const idsOf = (client: EventClient, name: string) =>
      client.named(name).map((payload) => (payload as { ID: string }).ID);

    beforeAll(async () => {
      stack = await Stack.start({ clock });
      a = stack.account(undefined, TOKEN_TTL_BEYOND_CLOCK_S);
      b = stack.account(undefined, TOKEN_TTL_BEYOND_CLOCK_S);
    });
    afterEach(() => stack.closeClients());
    afterAll(() => stack.close());

    it('delivers a fixture-shaped user creation as doc_created_user with the payload intact', async () => {
      const client = await connect();
      expect((await client.subscribe(a.token, a.accountId, 'object.*.user')).status).toBe(
        'success',
      );
      const fixture = readFixture<{ routing_key: string; body: Record<string, unknown> }>(
        'object/11-amqp-configuration-doc_created-user.json',
      );
      const event = documentEvent('doc_created', 'user', a.accountId, {
        id: fixture.body.ID as string,
      });
      // The key follows Kazoo's own (fixture 11), re-addressed to this test's account.
      expect(fixture.routing_key).toBe(
        `doc_created.${accountDb(FIXTURE_ACCOUNT)}.user.${event.body.ID as string}`,
      );
      expect(event.routingKey).toBe(
        `doc_created.${accountDb(a.accountId)}.user.${event.body.ID as string}`,
      );
      await publish(event);
      expect((await client.waitFor('doc_created_user')).payload).toEqual(event.body);
    });

    it("never delivers another account's documents, over many events", async () => {
      const mine = await connect();
      const theirs = await connect();
      await mine.subscribe(a.token, a.accountId, 'object.*.user');
      await theirs.subscribe(b.token, b.accountId, 'object.doc_created.user');
      const own: string[] = [];
      for (let i = 0; i < 40; i++) {
        await publish(documentEvent('doc_created', 'user', b.accountId, { id: `b-${i}` }));
        if (i % 8 === 0) {
          own.push(`a-${i}`);
          await publish(documentEvent('doc_edited', 'user', a.accountId, { id: `a-${i}` }));
        }
      }
      await publish(documentEvent('doc_deleted', 'user', a.accountId, { id: 'a-marker' }));
      await mine.waitFor('doc_deleted_user');
      await waitUntil('B to get its 40 documents', () =>
        theirs.named('doc_created_user').length === 40 ? true : undefined,
      );
      expect(idsOf(mine, 'doc_edited_user')).toEqual(own);
      expect(idsOf(mine, 'doc_created_user')).toEqual([]);
      expect(
        theirs.events.every(
          (e) => (e.payload as { 'Account-ID': string })['Account-ID'] === b.accountId,
        ),
      ).toBe(true);
    });

    it('accepts the Kazoo 3.x form and specific ids, and filters by type', async () => {
      const client = await connect();
      expect((await client.subscribe(a.token, a.accountId, 'doc_created.*.device.*')).status).toBe(
        'success',
      );
      expect(
        (await client.subscribe(a.token, a.accountId, 'doc_edited.*.user.user.with.dots')).status,
      ).toBe('success');
      await publish(documentEvent('doc_created', 'user', a.accountId, { id: 'not-a-device' }));
      await publish(documentEvent('doc_edited', 'user', a.accountId, { id: 'someone-else' }));
      await publish(documentEvent('doc_edited', 'user', a.accountId, { id: 'user%2Ewith%2Edots' }));
      await publish(documentEvent('doc_created', 'device', a.accountId, { id: 'dev-1' }));
      await client.waitFor('doc_created_device');
      expect(idsOf(client, 'doc_edited_user')).toEqual(['user%2Ewith%2Edots']);
      expect(client.named('doc_created_user')).toEqual([]);
    });

    itWithNodeQueues(
      'keeps a month-database subscription alive across the month change',
      async () => {
        clock.set('2026-11-30T23:59:00Z');
        const client = await connect();
        await client.subscribe(a.token, a.accountId, 'object.doc_created.mailbox_message');
        const modbs = async () =>
          (await brokerBindings(stack.gateway.queuePrefix))
            .map((binding) => binding.routingKey)
            .filter((key) => key.includes('mailbox_message'))
            .map((key) => key.split('.')[1].slice(-6))
            .sort();
        expect(await modbs()).toEqual(['202610', '202611', '202612']);

        // Kazoo's clock already says December: the message lands in next month's database.
        await publish(
          documentEvent('doc_created', 'mailbox_message', a.accountId, {
            id: 'vm-dec',
            month: new Date('2026-12-01T00:00:01Z'),
          }),
        );
        await client.waitFor('doc_created_mailbox_message');

        clock.set('2027-01-15T10:00:00Z');
        await stack.gateway.app.get(MonthlyRollover).check();
        await waitUntil('the keys to move on', async () =>
          (await modbs()).join() === '202612,202701,202702' ? true : undefined,
        );
        await publish(
          documentEvent('doc_created', 'mailbox_message', a.accountId, {
            id: 'vm-jan',
            month: new Date('2027-01-15T10:00:00Z'),
          }),
        );
        await publish(
          documentEvent('doc_created', 'mailbox_message', b.accountId, {
            id: 'vm-b',
            month: new Date('2027-01-15T10:00:00Z'),
          }),
        );
        await waitUntil('the January voicemail', () =>
          client.named('doc_created_mailbox_message').length === 2 ? true : undefined,
        );
        expect(idsOf(client, 'doc_created_mailbox_message')).toEqual(['vm-dec', 'vm-jan']);
      },
    );

    it('sends a fax document once to a socket that watches it through both the fax and the object family', async () => {
      clock.set('2026-11-15T12:00:00Z');
      const received = async () =>
        ((await stack.gateway.health()).body as unknown as { events: { received: number } }).events
          .received;
      const client = await connect();
      await client.subscribe(a.token, a.accountId, [
        'fax.object.*',
        'object.*.fax',
        'object.doc_created.device',
      ]);
      const before = await received();
      const month = new Date('2026-11-15T12:00:00Z');
      await publish(documentEvent('doc_created', 'fax', a.accountId, { id: 'fax-once', month }));
      // The node consumes the configuration exchange once: one delivery, read by both families.
      await waitUntil('the delivery to be consumed', async () =>
        (await received()) - before >= 1 ? true : undefined,
      );
      // Anything sent to the socket before this marker reaches it before the marker.
      await publish(documentEvent('doc_created', 'device', a.accountId, { id: 'after-fax' }));
      await client.waitFor('doc_created_device');
      expect(idsOf(client, 'doc_created_fax')).toEqual(['fax-once']);
    });

    it('refuses unknown actions and types with Kazoo texts', async () => {
      const client = await connect();
      const cases: [string, string][] = [
        // bh_object:validate/2 names both words when neither is `*`.
        ['object.doc_moved.user', 'event doc_moved.user not supported'],
        ['object.doc_created.spaceship', 'event doc_created.spaceship not supported'],
        ['object.doc_moved.spaceship', 'event doc_moved.spaceship not supported'],
        ['object.doc_moved.*', 'event doc_moved.* not supported'],
        ['object.*.spaceship', 'event *.spaceship not supported'],
        ['object.doc_created', 'invalid format for object subscription : doc_created'],
        // A wildcard is a whole word where the grammar has one, or nothing.
        ['object.*.user.*', 'invalid format for object subscription : *, user, *'],
        ['doc_created.*.user.ab*c', 'invalid format for object subscription : *, user, ab*c'],
      ];
      for (const [binding, message] of cases) {
        expect(await client.subscribe(a.token, a.accountId, binding)).toEqual({
          status: 'error',
          data: { errors: [message], code: 'invalid_binding', temporary: false },
        });
      }
    });

    itWithNodeQueues('releases its broker bindings on unsubscribe', async () => {
      await waitUntil('earlier tests to release', async () =>
        (await brokerBindings(stack.gateway.queuePrefix)).length === 0 ? true : undefined,
      );
      const client = await connect();
      await client.subscribe(a.token, a.accountId, ['object.*.*', 'doc_edited.*.vmbox.*']);
      expect((await brokerBindings(stack.gateway.queuePrefix)).length).toBe(5);
      await client.request('unsubscribe', { auth_token: a.token, account_id: a.accountId });
      await waitUntil('every binding to go', async () =>
        (await brokerBindings(stack.gateway.queuePrefix)).length === 0 ? true : undefined,
      );
    });
  },
);
