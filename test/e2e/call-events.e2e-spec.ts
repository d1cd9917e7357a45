import { brokerBindings, type KazooPublisher } from '../support/amqp';
import type { ClientVersion, EventClient } from '../support/clients';
import { callEvent } from '../support/kazoo-events';
import type { TestGateway } from '../support/start-app';
import { Stack } from '../support/stack';
import { waitUntil } from '../support/wait';
import { itWithNodeQueues } from '../support/replay-log-mode';

const CALLEVT = 'callevt';

describe.each<ClientVersion>(['v4', 'v2'])('call events to socket.io %s clients', (version) => {
  let stack: Stack;
  let gateway: TestGateway;
  let publisher: KazooPublisher;
  let accountA: string;
  let accountB: string;
  let tokenA: string;
  let tokenB: string;

  const connect = (): Promise<EventClient> => stack.connect(version);
  const subscribe = (client: EventClient, token: string, accountId: string, binding: string) =>
    client.subscribe(token, accountId, binding);

  beforeAll(async () => {
    stack = await Stack.start();
    ({ gateway, publisher } = stack);
    ({ accountId: accountA, token: tokenA } = stack.account());
    ({ accountId: accountB, token: tokenB } = stack.account());
  });
  afterEach(() => stack.closeClients());
  afterAll(() => stack.close());

  it('delivers CHANNEL_CREATE, CHANNEL_ANSWER and CHANNEL_DESTROY under their names with the payload intact', async () => {
    const client = await connect();
    for (const name of ['CHANNEL_CREATE', 'CHANNEL_ANSWER', 'CHANNEL_DESTROY']) {
      const ack = await subscribe(client, tokenA, accountA, `call.${name}.*`);
      expect(ack).toEqual({
        status: 'success',
        data: { subscribed: expect.arrayContaining([`call.${name}.*`]) as unknown },
      });
    }

    const published = (['CHANNEL_CREATE', 'CHANNEL_ANSWER', 'CHANNEL_DESTROY'] as const).map(
      (name) => callEvent(name, accountA, 'at6dmu4ffk97vnlp6qfq'),
    );
    for (const event of published) await publisher.publish(CALLEVT, event.routingKey, event.body);

    for (const event of published) {
      const received = await client.waitFor(event.body['Event-Name'] as string);
      expect(received.payload).toEqual(event.body);
    }
  });

  it("never delivers another account's events, over many events", async () => {
    const a = await connect();
    const b = await connect();
    await subscribe(a, tokenA, accountA, 'call.*.*');
    await subscribe(b, tokenB, accountB, 'call.CHANNEL_CREATE.*');

    const ownCallIds: string[] = [];
    for (let i = 0; i < 60; i++) {
      const other = callEvent('CHANNEL_CREATE', accountB, `b-${i}`);
      await publisher.publish(CALLEVT, other.routingKey, other.body);
      if (i % 10 === 0) {
        const own = callEvent('CHANNEL_CREATE', accountA, `a-${i}`);
        ownCallIds.push(own.body['Call-ID'] as string);
        await publisher.publish(CALLEVT, own.routingKey, own.body);
      }
    }
    // One queue, one publisher: once A's last event arrived, every earlier event was dispatched.
    const marker = callEvent('CHANNEL_DESTROY', accountA, 'a-marker');
    await publisher.publish(CALLEVT, marker.routingKey, marker.body);
    await a.waitFor(
      'CHANNEL_DESTROY',
      (p) => (p as Record<string, unknown>)['Call-ID'] === 'a-marker',
    );
    await waitUntil('B to receive its 60 events', () =>
      b.named('CHANNEL_CREATE').length === 60 ? true : undefined,
    );

    const accountsSeenByA = a.events.map(
      (e) =>
        (e.payload as { 'Custom-Channel-Vars': { 'Account-ID': string } })['Custom-Channel-Vars'][
          'Account-ID'
        ],
    );
    expect(new Set(accountsSeenByA)).toEqual(new Set([accountA]));
    expect(a.named('CHANNEL_CREATE').map((p) => (p as Record<string, unknown>)['Call-ID'])).toEqual(
      ownCallIds,
    );
    const accountsSeenByB = b.events.map(
      (e) =>
        (e.payload as { 'Custom-Channel-Vars': { 'Account-ID': string } })['Custom-Channel-Vars'][
          'Account-ID'
        ],
    );
    expect(new Set(accountsSeenByB)).toEqual(new Set([accountB]));
  });

  it('delivers an event once to a socket whose several bindings match it', async () => {
    const client = await connect();
    await subscribe(client, tokenA, accountA, 'call.*.*');
    await subscribe(client, tokenA, accountA, 'call.CHANNEL_ANSWER.*');
    await subscribe(client, tokenA, accountA, 'call.CHANNEL_ANSWER.once');
    const event = callEvent('CHANNEL_ANSWER', accountA, 'once');
    await publisher.publish(CALLEVT, event.routingKey, event.body);
    const marker = callEvent('CHANNEL_DESTROY', accountA, 'once-marker');
    await publisher.publish(CALLEVT, marker.routingKey, marker.body);
    await client.waitFor('CHANNEL_DESTROY');
    expect(client.named('CHANNEL_ANSWER')).toHaveLength(1);
  });

  it('matches a specific call-id that needs routing-key encoding', async () => {
    const client = await connect();
    await subscribe(client, tokenA, accountA, 'call.CHANNEL_CREATE.abc@10.0.0.1');
    await subscribe(client, tokenA, accountA, 'call.CHANNEL_DESTROY.*');
    const other = callEvent('CHANNEL_CREATE', accountA, 'xyz@10.0.0.2');
    const wanted = callEvent('CHANNEL_CREATE', accountA, 'abc@10.0.0.1');
    expect(wanted.routingKey).toBe('call.CHANNEL_CREATE.abc%4010%2E0%2E0%2E1');
    await publisher.publish(CALLEVT, other.routingKey, other.body);
    await publisher.publish(CALLEVT, wanted.routingKey, wanted.body);
    const marker = callEvent('CHANNEL_DESTROY', accountA, 'enc-marker');
    await publisher.publish(CALLEVT, marker.routingKey, marker.body);
    await client.waitFor('CHANNEL_DESTROY');
    expect(
      client.named('CHANNEL_CREATE').map((p) => (p as Record<string, unknown>)['Call-ID']),
    ).toEqual(['abc@10.0.0.1']);
  });

  it("refuses bindings outside bh_call's grammar, which used to succeed and deliver nothing", async () => {
    const client = await connect();
    const cases: ReadonlyArray<readonly [string, string]> = [
      ['call.X.*.*', 'invalid format for call subscription : X, *, *'],
      ['call.CHANNEL_CREATE.*.*', 'invalid format for call subscription : CHANNEL_CREATE, *, *'],
      ['call.*.abc.*', 'invalid format for call subscription : *, abc, *'],
      ['call.CHANNEL_CREATE.ab*c', 'invalid format for call subscription : CHANNEL_CREATE, ab*c'],
      ['call.FOO.*', 'event FOO not supported'],
    ];
    for (const [binding, message] of cases) {
      expect(await subscribe(client, tokenA, accountA, binding)).toEqual({
        status: 'error',
        data: { errors: [message], code: 'invalid_binding', temporary: false },
      });
    }
  });

  it('stops delivery after unsubscribe', async () => {
    const client = await connect();
    await subscribe(client, tokenA, accountA, 'call.CHANNEL_CREATE.*');
    await subscribe(client, tokenA, accountA, 'call.CHANNEL_DESTROY.*');
    const before = callEvent('CHANNEL_CREATE', accountA, 'before');
    await publisher.publish(CALLEVT, before.routingKey, before.body);
    await client.waitFor('CHANNEL_CREATE');

    const ack = await client.request('unsubscribe', {
      auth_token: tokenA,
      account_id: accountA,
      binding: 'call.CHANNEL_CREATE.*',
    });
    expect(ack).toEqual({
      status: 'success',
      data: { unsubscribed: ['call.CHANNEL_CREATE.*'], subscribed: ['call.CHANNEL_DESTROY.*'] },
    });
    const after = callEvent('CHANNEL_CREATE', accountA, 'after');
    await publisher.publish(CALLEVT, after.routingKey, after.body);
    const marker = callEvent('CHANNEL_DESTROY', accountA, 'unsub-marker');
    await publisher.publish(CALLEVT, marker.routingKey, marker.body);
    await client.waitFor('CHANNEL_DESTROY');
    expect(
      client.named('CHANNEL_CREATE').map((p) => (p as Record<string, unknown>)['Call-ID']),
    ).toEqual(['before']);
  });

  it('accepts a bindings list and drops everything on unsubscribe without a binding', async () => {
    const client = await connect();
    const witness = await connect();
    const ack = await client.request('subscribe', {
      auth_token: tokenA,
      account_id: accountA,
      bindings: ['call.CHANNEL_CREATE.*', 'call.CHANNEL_ANSWER.*'],
    });
    expect(ack).toEqual({
      status: 'success',
      data: { subscribed: ['call.CHANNEL_CREATE.*', 'call.CHANNEL_ANSWER.*'] },
    });
    await subscribe(witness, tokenA, accountA, 'call.CHANNEL_DESTROY.*');

    const dropped = await client.request('unsubscribe', { auth_token: tokenA });
    expect(dropped).toEqual({
      status: 'success',
      data: { unsubscribed: ['call.CHANNEL_CREATE.*', 'call.CHANNEL_ANSWER.*'], subscribed: [] },
    });
    for (const name of ['CHANNEL_CREATE', 'CHANNEL_ANSWER', 'CHANNEL_DESTROY'] as const) {
      const event = callEvent(name, accountA, `all-${name}`);
      await publisher.publish(CALLEVT, event.routingKey, event.body);
    }
    await witness.waitFor('CHANNEL_DESTROY');
    expect(client.events).toEqual([]);
  });

  itWithNodeQueues(
    'releases every broker binding once all sockets leave, and keeps shared ones while one stays',
    async () => {
      const keysOf = async () =>
        (await brokerBindings(gateway.queuePrefix)).map((b) => `${b.source}:${b.routingKey}`);
      await waitUntil('earlier tests to release their bindings', async () =>
        (await keysOf()).length === 0 ? true : undefined,
      );
      const first = await connect();
      const second = await connect();
      await subscribe(first, tokenA, accountA, 'call.CHANNEL_CREATE.*');
      await subscribe(second, tokenB, accountB, 'call.CHANNEL_CREATE.*');
      await subscribe(second, tokenB, accountB, 'call.CHANNEL_ANSWER.*');
      expect(await keysOf()).toEqual([
        'callevt:call.CHANNEL_ANSWER.*',
        'callevt:call.CHANNEL_CREATE.*',
      ]);

      second.close();
      await waitUntil('the ANSWER binding to go', async () => {
        const keys = await keysOf();
        return keys.length === 1 ? keys : undefined;
      });
      expect(await keysOf()).toEqual(['callevt:call.CHANNEL_CREATE.*']);
      const stillFlowing = callEvent('CHANNEL_CREATE', accountA, 'still');
      await publisher.publish(CALLEVT, stillFlowing.routingKey, stillFlowing.body);
      await first.waitFor('CHANNEL_CREATE');

      first.close();
      await waitUntil('every call binding to go', async () =>
        (await keysOf()).length === 0 ? true : undefined,
      );
      expect(gateway.binder.boundKeys()).toEqual([]);
    },
  );
});
