import { accountModb } from '../../src/core';
import { MonthlyRollover } from '../../src/core/subscriptions/monthly-rollover';
import { FaxModule } from '../../src/features/fax/fax.module';
import { defaultFeatures } from '../../src/features';
import { brokerBindings } from '../support/amqp';
import type { ClientVersion, EventClient } from '../support/clients';
import { SettableClock } from '../support/clock';
import {
  faxDocument,
  faxStatus,
  faxStatusFixture,
  type KazooDelivery,
} from '../support/fax-events';
import { Stack } from '../support/stack';
import { waitUntil } from '../support/wait';
import { itWithNodeQueues } from '../support/replay-log-mode';

/** The suite's clock goes months ahead; its tokens must not expire on the way (a year). */
const TOKEN_TTL_BEYOND_CLOCK_S = 365 * 86400;

const features = defaultFeatures.includes(FaxModule)
  ? defaultFeatures
  : [...defaultFeatures, FaxModule];

/** Socket.io 2.x clients only hear the events they listen for by name. */
const WATCH = ['fax.status', 'doc_created_fax', 'doc_edited_fax', 'doc_deleted_fax'];

type Json = Record<string, unknown>;
const field = (payload: unknown, name: string): unknown => (payload as Json)[name];

/** `source:routingKey` of every key bound on this node's fax queues, sorted. */
/** Bindings of the node's queues: only fax subscriptions are made in this suite. */
async function faxBindings(stack: Stack): Promise<string[]> {
  return (await brokerBindings(stack.gateway.queuePrefix)).map(
    (binding) => `${binding.source}:${binding.routingKey}`,
  );
}

const noFaxBindings = async (stack: Stack) =>
  (await faxBindings(stack)).length === 0 ? true : undefined;

const publish = (stack: Stack, delivery: KazooDelivery) =>
  stack.publisher.publish(delivery.exchange, delivery.routingKey, delivery.body);

describe.each<ClientVersion>(['v4', 'v2'])('fax events to socket.io %s clients', (version) => {
  describe('on the current month', () => {
    let stack: Stack;
    let a: { accountId: string; token: string };
    let b: { accountId: string; token: string };

    const connect = (): Promise<EventClient> => stack.connect(version, { watch: WATCH });

    beforeAll(async () => {
      stack = await Stack.start({ features });
      a = stack.account();
      b = stack.account();
    });

    afterEach(() => stack.closeClients());

    afterAll(() => stack.close());

    it('delivers a Kazoo 4.x fax status as fax.status with the 3.22 normalized payload', async () => {
      const client = await connect();
      const ack = await client.subscribe(a.token, a.accountId, 'fax.status.*');
      expect(ack).toEqual({ status: 'success', data: { subscribed: ['fax.status.*'] } });

      const fixture = faxStatusFixture();
      const status = faxStatus(a.accountId, fixture.body['Job-ID'] as string, {
        fields: { 'Msg-ID': fixture.body['Msg-ID'] },
      });
      expect(status.exchange).toBe(fixture.exchange);
      expect(status.routingKey).toBe(
        fixture.routing_key.replace(/\.[0-9a-f]{32}\./, `.${a.accountId}.`),
      );
      await publish(stack, status);

      const received = await client.waitFor('fax.status');
      expect(received.payload).toEqual({
        ...fixture['_3.22_equivalent'].socketio_frame.args,
        account_id: a.accountId,
      });
    });

    it('matches a fax id with dots through a specific-id binding', async () => {
      const client = await connect();
      await client.subscribe(a.token, a.accountId, ['fax.status.201911-abc.def', 'fax.status.end']);

      const wanted = faxStatus(a.accountId, '201911-abc.def');
      expect(wanted.routingKey).toBe(`fax.status.${a.accountId}.201911-abc%2Edef`);
      for (const jobId of ['201911-abc', '201911-abc.deg', 'abc.def']) {
        await publish(stack, faxStatus(a.accountId, jobId));
      }
      await publish(stack, wanted);
      await publish(stack, faxStatus(a.accountId, 'end'));
      await client.waitFor('fax.status', (p) => field(p, 'job_id') === 'end');

      expect(client.named('fax.status').map((p) => field(p, 'job_id'))).toEqual([
        '201911-abc.def',
        'end',
      ]);
    });

    it("refuses bindings outside bh_fax's grammar, which used to succeed and deliver nothing", async () => {
      const client = await connect();
      const cases: ReadonlyArray<readonly [string, string]> = [
        ['fax.status.x.*', 'invalid format for fax subscription : status, x, *'],
        ['fax.status.ab*c', 'invalid format for fax subscription : status, ab*c'],
        ['fax.object.*.*', 'invalid format for fax subscription : object, *, *'],
      ];
      for (const [binding, message] of cases) {
        expect(await client.subscribe(a.token, a.accountId, binding)).toEqual({
          status: 'error',
          data: { errors: [message], code: 'invalid_binding', temporary: false },
        });
      }
    });

    it("never delivers another account's fax status, over many events", async () => {
      const own = await connect();
      const other = await connect();
      await own.subscribe(a.token, a.accountId, 'fax.status.*');
      // B's key is bound too, so B's statuses do reach the node queue A's client is fed from.
      await other.subscribe(b.token, b.accountId, 'fax.status.*');

      const ownJobs: string[] = [];
      for (let i = 0; i < 40; i++) {
        // The same message for account B; every other one carries its account only in the key.
        await publish(stack, faxStatus(b.accountId, `b-${i}`, { withoutAccountId: i % 2 === 1 }));
        if (i % 10 === 0) {
          ownJobs.push(`a-${i}`);
          await publish(stack, faxStatus(a.accountId, `a-${i}`));
        }
      }
      // One queue, one publisher: once A's marker arrived, every earlier status was dispatched.
      await publish(stack, faxStatus(a.accountId, 'a-marker', { withoutAccountId: true }));
      await own.waitFor('fax.status', (p) => field(p, 'job_id') === 'a-marker');
      await waitUntil('B to receive its 40 statuses', () =>
        other.named('fax.status').length === 40 ? true : undefined,
      );

      expect(own.named('fax.status').map((p) => field(p, 'job_id'))).toEqual([
        ...ownJobs,
        'a-marker',
      ]);
      // The marker has no account_id field: only Kazoo's routing key names its account.
      expect(new Set(own.named('fax.status').map((p) => field(p, 'account_id')))).toEqual(
        new Set([a.accountId, undefined]),
      );
      expect(
        other.named('fax.status').every((p) => String(field(p, 'job_id')).startsWith('b-')),
      ).toBe(true);
    });

    it("delivers fax documents of the current MODB as doc_created_fax, never another account's", async () => {
      const own = await connect();
      const other = await connect();
      expect(await own.subscribe(a.token, a.accountId, 'fax.object.*')).toEqual({
        status: 'success',
        data: { subscribed: ['fax.object.*'] },
      });
      await other.subscribe(b.token, b.accountId, 'fax.object.doc_created');

      const now = new Date();
      const othersFax = faxDocument('doc_created', b.accountId, now);
      const ownFax = faxDocument('doc_created', a.accountId, now);
      expect(ownFax.routingKey.split('.')[1]).toBe(accountModb(a.accountId, now));
      await publish(stack, othersFax);
      await publish(stack, ownFax);
      const marker = faxDocument('doc_deleted', a.accountId, now, ownFax.body.ID as string);
      await publish(stack, marker);

      expect((await own.waitFor('doc_deleted_fax')).payload).toEqual(marker.body);
      expect(own.named('doc_created_fax')).toEqual([ownFax.body]);
      expect((await other.waitFor('doc_created_fax')).payload).toEqual(othersFax.body);
      expect(other.events.map((e) => e.name)).toEqual(['doc_created_fax']);
    });

    itWithNodeQueues('releases the broker bindings on unsubscribe', async () => {
      await waitUntil('earlier tests to release their bindings', () => noFaxBindings(stack));
      const client = await connect();
      await client.subscribe(a.token, a.accountId, [
        'fax.status.*',
        'fax.status.201911-abc.def',
        'fax.object.doc_created',
      ]);
      const now = new Date();
      const window = [-1, 0, 1].map((offset) =>
        accountModb(
          a.accountId,
          new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + offset)),
        ),
      );
      expect(new Set(await faxBindings(stack))).toEqual(
        new Set([
          `faxes:fax.status.${a.accountId}.*`,
          ...window.map((modb) => `configuration:doc_created.${modb}.fax.*`),
        ]),
      );

      const ack = await client.request('unsubscribe', {
        auth_token: a.token,
        account_id: a.accountId,
        binding: 'fax.object.doc_created',
      });
      expect(ack).toEqual({
        status: 'success',
        data: {
          unsubscribed: ['fax.object.doc_created'],
          subscribed: ['fax.status.*', 'fax.status.201911-abc.def'],
        },
      });
      await waitUntil('the document bindings to go', async () => {
        const keys = await faxBindings(stack);
        return keys.length === 1 ? keys : undefined;
      });
      expect(await faxBindings(stack)).toEqual([`faxes:fax.status.${a.accountId}.*`]);

      await client.request('unsubscribe', { auth_token: a.token, account_id: a.accountId });
      await waitUntil('every fax binding to go', () => noFaxBindings(stack));
      expect(stack.gateway.binder.boundKeys().filter((key) => key.queue.includes('.fax.'))).toEqual(
        [],
      );
    });
  });

  describe('across a month change', () => {
    const OLD_MONTHS = /-2026(10|11)\.fax\./;
    const clock = new SettableClock('2026-11-30T23:59:00Z');
    let stack: Stack;
    let a: { accountId: string; token: string };

    beforeAll(async () => {
      stack = await Stack.start({ features, clock });
      a = stack.account(undefined, TOKEN_TTL_BEYOND_CLOCK_S);
    });

    afterAll(() => stack.close());

    itWithNodeQueues('moves fax.object keys to the new month and keeps delivering', async () => {
      const modb = (month: string) => accountModb(a.accountId, new Date(`${month}-01T00:00:00Z`));
      const keysFor = (months: string[]) =>
        months.map((month) => `configuration:doc_created.${modb(month)}.fax.*`);
      const client = await stack.connect(version, { watch: WATCH });
      await client.subscribe(a.token, a.accountId, 'fax.object.doc_created');
      expect(await faxBindings(stack)).toEqual(keysFor(['2026-10', '2026-11', '2026-12']));

      // A publisher whose clock is already in December: next month's key is bound ahead.
      const december = faxDocument('doc_created', a.accountId, new Date('2026-12-01T00:00:30Z'));
      await publish(stack, december);
      await client.waitFor('doc_created_fax', (p) => field(p, 'ID') === december.body.ID);

      clock.set('2027-01-15T00:00:00Z');
      await stack.gateway.app.get(MonthlyRollover).check();
      // New keys are bound before check() resolves; the old ones are unbound right after.
      await waitUntil('the keys to move to January', async () => {
        const keys = await faxBindings(stack);
        return keys.length === 3 && !keys.some((key) => OLD_MONTHS.test(key)) ? keys : undefined;
      });
      const keys = await faxBindings(stack);
      expect(keys).toEqual(keysFor(['2026-12', '2027-01', '2027-02']));
      expect(keys.filter((key) => OLD_MONTHS.test(key))).toEqual([]);

      const stale = faxDocument('doc_created', a.accountId, new Date('2026-11-20T00:00:00Z'));
      const january = faxDocument('doc_created', a.accountId, new Date('2027-01-15T00:00:00Z'));
      const lateDecember = faxDocument(
        'doc_created',
        a.accountId,
        new Date('2026-12-31T12:00:00Z'),
      );
      await publish(stack, stale);
      await publish(stack, lateDecember);
      await publish(stack, january);
      await client.waitFor('doc_created_fax', (p) => field(p, 'ID') === january.body.ID);

      expect(client.named('doc_created_fax').map((p) => field(p, 'Database'))).toEqual([
        modb('2026-12'),
        modb('2026-12'),
        modb('2027-01'),
      ]);
    });
  });
});
