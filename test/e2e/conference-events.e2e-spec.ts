import { ConferenceModule } from '../../src/features/conference/conference.module';
import { defaultFeatures } from '../../src/features';
import { brokerBindings } from '../support/amqp';
import type { ClientVersion, EventClient } from '../support/clients';
import { conferenceEvent } from '../support/conference-events';
import { readFixture } from '../support/kazoo-events';
import { Stack } from '../support/stack';
import { waitUntil } from '../support/wait';
import type { KazooFrame } from '../support/ws-client';
import { itWithNodeQueues } from '../support/replay-log-mode';

type Json = Record<string, unknown>;

const CONFERENCE = 'conference';
const PARTICIPANTS_EVENT = 'participants_event';
const FIXTURE_ACCOUNT = '4b8c6fec4b2597882c0390202d195419';
const FIXTURE_CONFERENCE = '5edbfdd3b825314a71b0a05957392edb';
// Once the owner lists ConferenceModule in defaultFeatures, importing it again would be refused.
const FEATURES = defaultFeatures.includes(ConferenceModule)
  ? defaultFeatures
  : [...defaultFeatures, ConferenceModule];

const field = (payload: unknown, key: string): unknown => (payload as Json)[key];
const callIdsOf = (client: EventClient): unknown[] =>
  client.named(PARTICIPANTS_EVENT).map((p) => field(p, 'Call-ID'));
const conferenceCallsOf = (client: EventClient): string[] =>
  client
    .named(PARTICIPANTS_EVENT)
    .map((p) => `${String(field(p, 'Conference-ID'))}/${String(field(p, 'Call-ID'))}`);

describe.each<ClientVersion>(['v4', 'v2'])(
  'conference events to socket.io %s clients',
  (version) => {
    let stack: Stack;
    let a: { accountId: string; token: string };
    let b: { accountId: string; token: string };

    const connect = () => stack.connect(version, { watch: [PARTICIPANTS_EVENT] });
    const publish = (event: { routingKey: string; body: Json }) =>
      stack.publisher.publish(CONFERENCE, event.routingKey, event.body);
    /** Waits for the conference event of the call `callId`. */
    const waitForCall = (client: EventClient, callId: string) =>
      client.waitFor(PARTICIPANTS_EVENT, (p) => field(p, 'Call-ID') === callId);
    const keysOf = async () =>
      (await brokerBindings(stack.gateway.queuePrefix))
        .map((binding) => `${binding.source}:${binding.routingKey}`)
        .sort();

    beforeAll(async () => {
      stack = await Stack.start({ features: FEATURES });
      a = stack.account();
      b = stack.account();
    });
    afterEach(() => stack.closeClients());
    afterAll(() => stack.close());

    it("delivers Kazoo's add-member event as participants_event with the payload intact", async () => {
      const fixture = readFixture<{ exchange: string; routing_key: string; body: Json }>(
        'conference/05-amqp-conference-event-4.3-add-member.json',
      );
      // Fixture 05 as Kazoo published it, re-addressed to this test's account.
      const routingKey = fixture.routing_key.replace(FIXTURE_ACCOUNT, a.accountId);
      const body: Json = {
        ...fixture.body,
        'Account-ID': a.accountId,
        'Custom-Channel-Vars': {
          ...(fixture.body['Custom-Channel-Vars'] as Json),
          'Account-ID': a.accountId,
        },
      };
      expect(fixture.exchange).toBe(CONFERENCE);
      expect(routingKey).toBe(
        `conference.event.add-member.${a.accountId}.${FIXTURE_CONFERENCE}.934800819`,
      );
      // The helper the other tests use builds the same message.
      const built = conferenceEvent(a.accountId);
      expect(built.routingKey).toBe(routingKey);
      expect({ ...built.body, 'Msg-ID': body['Msg-ID'] }).toEqual(body);

      const client = await connect();
      const binding = `conference.event.${FIXTURE_CONFERENCE}`;
      expect(await client.subscribe(a.token, a.accountId, binding)).toEqual({
        status: 'success',
        data: { subscribed: [binding] },
      });
      await stack.publisher.publish(CONFERENCE, routingKey, body);

      const received = await client.waitFor(PARTICIPANTS_EVENT);
      expect(received.payload).toEqual(body);
      // 3.x clients know conference events only by the 3.x name, never by 4.x's `event`.
      expect(client.events.map((e) => e.name)).toEqual([PARTICIPANTS_EVENT]);
    });

    it("never delivers another account's conference events, over many events", async () => {
      const mine = await connect();
      const theirs = await connect();
      await mine.subscribe(a.token, a.accountId, 'conference.event.*');
      await theirs.subscribe(b.token, b.accountId, 'conference.event.*');

      const ownCalls: string[] = [];
      for (let i = 0; i < 60; i++) {
        // Every third event names its account in the routing key only.
        await publish(
          conferenceEvent(b.accountId, {
            conferenceId: `b-conf-${i % 3}`,
            callId: `b-${i}`,
            accountInBody: i % 3 !== 0,
          }),
        );
        if (i % 10 === 0) {
          // The same conference and call ids as B's, only the account differs.
          await publish(
            conferenceEvent(a.accountId, { conferenceId: `b-conf-${i % 3}`, callId: `b-${i}` }),
          );
          ownCalls.push(`b-conf-${i % 3}/b-${i}`);
        }
      }
      // One queue, one publisher: once A's marker arrived, every earlier event was dispatched.
      await publish(
        conferenceEvent(a.accountId, {
          conferenceId: 'a-conf',
          callId: 'a-marker',
          accountInBody: false,
        }),
      );
      await waitForCall(mine, 'a-marker');
      await waitUntil('B to receive its 60 events', () =>
        theirs.named(PARTICIPANTS_EVENT).length === 60 ? true : undefined,
      );

      expect(conferenceCallsOf(mine)).toEqual([...ownCalls, 'a-conf/a-marker']);
      const accountsSeenByMine = mine
        .named(PARTICIPANTS_EVENT)
        .map((p) => field(p, 'Account-ID'))
        .filter((account) => account !== undefined);
      expect(new Set(accountsSeenByMine)).toEqual(new Set([a.accountId]));
      expect(callIdsOf(theirs)).toEqual(Array.from({ length: 60 }, (_, i) => `b-${i}`));
      const accountsSeenByTheirs = theirs
        .named(PARTICIPANTS_EVENT)
        .map((p) => field(p, 'Account-ID'))
        .filter((account) => account !== undefined);
      expect(new Set(accountsSeenByTheirs)).toEqual(new Set([b.accountId]));
    });

    it('delivers every conference to a wildcard binding and one conference to a specific one', async () => {
      const everything = await connect();
      const roomOne = await connect();
      await everything.subscribe(a.token, a.accountId, 'conference.event.*');
      expect(
        await roomOne.subscribe(a.token, a.accountId, [
          'conference.event.room-1',
          'conference.event.room-marker.*',
        ]),
      ).toEqual({
        status: 'success',
        data: { subscribed: ['conference.event.room-1', 'conference.event.room-marker.*'] },
      });

      await publish(conferenceEvent(a.accountId, { conferenceId: 'room-1', callId: 'one' }));
      await publish(conferenceEvent(a.accountId, { conferenceId: 'room-2', callId: 'two' }));
      // A conference-wide event has no call: Kazoo puts the conference id in the call word.
      const destroyed = conferenceEvent(a.accountId, {
        event: 'conference-destroy',
        conferenceId: 'room-1',
        callId: null,
      });
      expect(destroyed.routingKey).toBe(
        `conference.event.conference-destroy.${a.accountId}.room-1.room-1`,
      );
      await publish(destroyed);
      await publish(
        conferenceEvent(a.accountId, { conferenceId: 'room-marker', callId: 'marker' }),
      );

      await waitForCall(everything, 'marker');
      await waitForCall(roomOne, 'marker');
      expect(conferenceCallsOf(everything)).toEqual([
        'room-1/one',
        'room-2/two',
        'room-1/undefined',
        'room-marker/marker',
      ]);
      expect(conferenceCallsOf(roomOne)).toEqual([
        'room-1/one',
        'room-1/undefined',
        'room-marker/marker',
      ]);
      expect(roomOne.named(PARTICIPANTS_EVENT)[1]).toEqual(destroyed.body);
    });

    it('matches a specific call-id that needs routing-key encoding', async () => {
      const raw = await connect();
      const encoded = await connect();
      await raw.subscribe(a.token, a.accountId, [
        'conference.event.room-3.abc@10.0.0.1',
        'conference.event.room-marker',
      ]);
      await encoded.subscribe(a.token, a.accountId, [
        'conference.event.room-3.abc%4010%2E0%2E0%2E1',
        'conference.event.room-marker',
      ]);

      const wanted = conferenceEvent(a.accountId, {
        conferenceId: 'room-3',
        callId: 'abc@10.0.0.1',
      });
      expect(wanted.routingKey).toBe(
        `conference.event.add-member.${a.accountId}.room-3.abc%4010%2E0%2E0%2E1`,
      );
      await publish(
        conferenceEvent(a.accountId, { conferenceId: 'room-3', callId: 'xyz@10.0.0.2' }),
      );
      await publish(
        conferenceEvent(a.accountId, { conferenceId: 'room-4', callId: 'abc@10.0.0.1' }),
      );
      await publish(conferenceEvent(a.accountId, { conferenceId: 'room-3', callId: null }));
      await publish(wanted);
      await publish(
        conferenceEvent(a.accountId, { conferenceId: 'room-marker', callId: 'marker' }),
      );

      for (const client of [raw, encoded]) {
        await waitForCall(client, 'marker');
        expect(conferenceCallsOf(client)).toEqual(['room-3/abc@10.0.0.1', 'room-marker/marker']);
      }
    });

    it.each([
      ['conference.command.room-1', 'invalid format for conference subscription : command, room-1'],
      ['conference.event', 'invalid format for conference subscription : event'],
      ['conference.event.#', 'invalid format for conference subscription : event, #'],
      ['conference.event.room*', 'invalid format for conference subscription : event, room*'],
      [
        'conference.event.*.room-1.*',
        'invalid format for conference subscription : event, *, room-1, *',
      ],
      [
        'conference.event.room-1.abc.*',
        'invalid format for conference subscription : event, room-1, abc, *',
      ],
      ['conference.event.room-1.*.kick-member', 'Unsupported conference event kick-member'],
    ])('refuses %s with %j', async (binding, message) => {
      const client = await connect();
      expect(await client.subscribe(a.token, a.accountId, binding)).toEqual({
        status: 'error',
        data: { errors: [message], code: 'invalid_binding', temporary: false },
      });
      expect((await client.waitFor('error')).payload).toEqual({ message, code: 'invalid_binding' });
    });

    itWithNodeQueues(
      'releases the broker bindings on unsubscribe, keeping a key while another binding needs it',
      async () => {
        await waitUntil('earlier tests to release their bindings', async () =>
          (await keysOf()).length === 0 ? true : undefined,
        );
        const wildcardKey = `conference:conference.event.*.${a.accountId}.*.*`;
        const roomKey = `conference:conference.event.*.${a.accountId}.room-5.*`;
        const otherAccountKey = `conference:conference.event.*.${b.accountId}.room-5.*`;
        const client = await connect();
        const other = await connect();
        await client.subscribe(a.token, a.accountId, [
          'conference.event.*',
          'conference.event.room-5',
          'conference.event.room-5.abc@10.0.0.1',
        ]);
        await other.subscribe(b.token, b.accountId, 'conference.event.room-5');
        expect(await keysOf()).toEqual([wildcardKey, roomKey, otherAccountKey].sort());

        // Both room-5 bindings of account A need the same key: it stays while one is left.
        expect(
          await client.request('unsubscribe', {
            auth_token: a.token,
            account_id: a.accountId,
            binding: 'conference.event.room-5',
          }),
        ).toEqual({
          status: 'success',
          data: {
            unsubscribed: ['conference.event.room-5'],
            subscribed: ['conference.event.*', 'conference.event.room-5.abc@10.0.0.1'],
          },
        });
        // Unbinding happens after the reply, so the binder's count is what proves the key was kept.
        expect(
          stack.gateway.binder
            .boundKeys()
            .filter((key) => `${key.exchange}:${key.routingKey}` === roomKey)
            .map((key) => key.references),
        ).toEqual([1]);
        expect(await keysOf()).toEqual([wildcardKey, roomKey, otherAccountKey].sort());

        await client.request('unsubscribe', {
          auth_token: a.token,
          account_id: a.accountId,
          binding: 'conference.event.room-5.abc@10.0.0.1',
        });
        await waitUntil("account A's room-5 key to go", async () =>
          (await keysOf()).includes(roomKey) ? undefined : true,
        );
        expect(await keysOf()).toEqual([wildcardKey, otherAccountKey].sort());

        // The wildcard still brings room-5's events.
        await publish(conferenceEvent(a.accountId, { conferenceId: 'room-5', callId: 'still' }));
        await waitForCall(client, 'still');

        await client.request('unsubscribe', { auth_token: a.token });
        other.close();
        await waitUntil('every conference binding to go', async () =>
          (await keysOf()).length === 0 ? true : undefined,
        );
        expect(stack.gateway.binder.boundKeys()).toEqual([]);
      },
    );
  },
);

describe("monster-ui 4.3's conference viewer on Kazoo 4.x's plain WebSocket", () => {
  let stack: Stack;
  let a: { accountId: string; token: string };
  let b: { accountId: string; token: string };

  /** Kazoo 4.3's per-event bindings the viewer holds, on the fixtures' conference. */
  const everyEvent = `conference.event.${FIXTURE_CONFERENCE}.*.*`;
  const addMember = `conference.event.${FIXTURE_CONFERENCE}.*.add-member`;

  const publish = (event: { routingKey: string; body: Json }) =>
    stack.publisher.publish(CONFERENCE, event.routingKey, event.body);
  /** Fixture 06's `data`, as Kazoo 4.3 sent it for fixture 05, re-addressed to `accountId`. */
  const expectedData = (accountId: string): Json => {
    const { data } = readFixture<{ data: Json }>(
      'conference/06-ws-4.3-event-conference-add-member.json',
    );
    return {
      ...data,
      account_id: accountId,
      custom_channel_vars: { ...(data.custom_channel_vars as Json), account_id: accountId },
    };
  };
  const summary = (frames: KazooFrame[]): string[] =>
    frames
      .map((f) => `${String(f.subscribed_key)} ${String(f.data?.event)} ${String(f.data?.call_id)}`)
      .sort();

  beforeAll(async () => {
    stack = await Stack.start({ features: FEATURES });
    a = stack.account();
    b = stack.account();
  });
  afterEach(() => stack.closeClients());
  afterAll(() => stack.close());

  itWithNodeQueues(
    "delivers Kazoo 4.3's add-member once per matching binding, and nothing to another account watching the same conference",
    async () => {
      const viewer = await stack.connectWs();
      const foreign = await stack.connectWs();
      expect(await viewer.subscribe(a.token, a.accountId, everyEvent)).toMatchObject({
        action: 'reply',
        status: 'success',
        data: { subscribed: [everyEvent] },
      });
      expect(await viewer.subscribe(a.token, a.accountId, addMember)).toMatchObject({
        status: 'success',
        data: { subscribed: [everyEvent, addMember] },
      });
      for (const binding of [everyEvent, addMember]) {
        expect((await foreign.subscribe(b.token, b.accountId, binding)).status).toBe('success');
      }
      // Each account's per-event key names its account; `.*.*` shares master's key.
      const bound = stack.gateway.binder
        .boundKeys()
        .map((key) => `${key.exchange}:${key.routingKey}`)
        .sort();
      expect(bound).toEqual(
        [a.accountId, b.accountId]
          .flatMap((account) => [
            `conference:conference.event.*.${account}.${FIXTURE_CONFERENCE}.*`,
            `conference:conference.event.add-member.${account}.${FIXTURE_CONFERENCE}.*`,
          ])
          .sort(),
      );

      // Fixture 05 as Kazoo published it, re-addressed to A, Msg-ID included. Kazoo repeats
      // Msg-IDs (fixture 05 shares its own with a call fixture), so every event below carries it.
      const fixture = readFixture<{ routing_key: string; body: Json }>(
        'conference/05-amqp-conference-event-4.3-add-member.json',
      );
      const msgId = fixture.body['Msg-ID'] as string;
      const added = conferenceEvent(a.accountId, { msgId });
      expect(added.routingKey).toBe(fixture.routing_key.replace(FIXTURE_ACCOUNT, a.accountId));
      const removed = conferenceEvent(a.accountId, { event: 'del-member', msgId });
      // The same conference id in B's account, last: B's own marker.
      const marker = conferenceEvent(b.accountId, { callId: 'b-marker', msgId });
      await publish(added);
      await publish(removed);
      await publish(marker);

      await viewer.waitForEvent((f) => f.data?.event === 'del-member');
      expect(summary(viewer.events)).toEqual([
        `${everyEvent} add-member 934800819`,
        `${everyEvent} del-member 934800819`,
        `${addMember} add-member 934800819`,
      ]);
      const perEvent = viewer.events.find((f) => f.subscribed_key === addMember);
      expect(perEvent).toEqual({
        action: 'event',
        subscribed_key: addMember,
        // Kazoo 4.3's ?ACCOUNT_BINDING(AccountId, ConferenceId, CallId, Event).
        subscription_key: `conference.event.add-member.${a.accountId}.${FIXTURE_CONFERENCE}.*`,
        name: 'event',
        routing_key: added.routingKey,
        data: expectedData(a.accountId),
      });
      const wildcard = viewer.events.find(
        (f) => f.subscribed_key === everyEvent && f.data?.event === 'add-member',
      );
      expect(wildcard?.subscription_key).toBe(
        `conference.event.*.${a.accountId}.${FIXTURE_CONFERENCE}.*`,
      );
      expect(wildcard?.data).toEqual(expectedData(a.accountId));

      // One queue, ordered delivery: once B's own marker is in, A's events were dispatched.
      await foreign.waitForEvent((f) => f.subscribed_key === everyEvent);
      await foreign.waitForEvent((f) => f.subscribed_key === addMember);
      expect(summary(foreign.events)).toEqual([
        `${everyEvent} add-member b-marker`,
        `${addMember} add-member b-marker`,
      ]);
      expect(new Set(foreign.events.map((f) => f.data?.account_id))).toEqual(
        new Set([b.accountId]),
      );
    },
  );

  it.each([
    // Newer monster-ui's binding, which Kazoo 4.3 refuses as well.
    [
      `conference.event.*.${FIXTURE_CONFERENCE}.*`,
      `invalid format for conference subscription : event, *, ${FIXTURE_CONFERENCE}, *`,
    ],
    [
      `conference.event.${FIXTURE_CONFERENCE}.*.kick-member`,
      'Unsupported conference event kick-member',
    ],
  ])('answers %s with an error reply and subscribes nothing', async (binding, message) => {
    const viewer = await stack.connectWs();
    expect(await viewer.subscribe(a.token, a.accountId, binding)).toMatchObject({
      action: 'reply',
      status: 'error',
      data: { errors: [message], code: 'invalid_binding' },
    });
    expect(await viewer.subscribe(a.token, a.accountId, addMember)).toMatchObject({
      status: 'success',
      data: { subscribed: [addMember] },
    });
  });
});
