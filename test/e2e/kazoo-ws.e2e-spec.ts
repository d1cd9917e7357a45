import { documentEvent } from '../support/document-events';
import { callEvent, readFixture } from '../support/kazoo-events';
import { Stack } from '../support/stack';
import { waitUntil } from '../support/wait';
import type { KazooFrame } from '../support/ws-client';
import { itWithNodeQueues, replayLogOn } from '../support/replay-log-mode';

type Json = Record<string, unknown>;
interface AmqpFixture {
  exchange: string;
  routing_key: string;
  body: Json;
}

/** The account every Kazoo fixture is addressed to; only this suite uses it. */
const FIXTURE_ACCOUNT = '4b8c6fec4b2597882c0390202d195419';

const callIdOf = (frame: KazooFrame): unknown => frame.data?.call_id;

describe("Kazoo 4.x's WebSocket protocol", () => {
  let stack: Stack;
  let reseller: { accountId: string; token: string };
  let child: { accountId: string; token: string };
  let stranger: { accountId: string; token: string };

  beforeAll(async () => {
    stack = await Stack.start();
    reseller = stack.account();
    child = stack.account(reseller.accountId);
    stranger = stack.account();
  });
  afterEach(() => stack.closeClients());
  afterAll(() => stack.close());

  describe("Kazoo's own pqc_blackhole sequences", () => {
    it('seq_ping: ping answers pong under the same request_id, twice', async () => {
      const client = await stack.connectWs();
      for (const requestId of ['ping-1', 'ping-2']) {
        const reply = await client.request({
          request_id: requestId,
          action: 'ping',
          auth_token: reseller.token,
        });
        expect(reply).toEqual({
          action: 'reply',
          request_id: requestId,
          status: 'success',
          data: { response: 'pong' },
        });
      }
    });

    it('seq_api: object and call subscriptions, their events, and unsubscribing', async () => {
      const catalog = (await (await fetch(`${stack.gateway.url}/v2/websockets`)).json()) as {
        data: Json;
      };
      expect(catalog.data).toHaveProperty('call');

      // The reseller's token watches its child account, as pqc does.
      const client = await stack.connectWs();
      const subscribed = await client.request({
        request_id: 'sub-object',
        action: 'subscribe',
        auth_token: reseller.token,
        data: { account_id: child.accountId, binding: 'object.*.user' },
      });
      expect(subscribed).toEqual({
        action: 'reply',
        request_id: 'sub-object',
        status: 'success',
        data: { subscribed: ['object.*.user'] },
      });

      const created = documentEvent('doc_created', 'user', child.accountId, { id: 'user-1' });
      await stack.publisher.publish('configuration', created.routingKey, created.body);
      const createdEvent = await client.waitForEvent((f) => f.name === 'doc_created');
      expect(createdEvent).toMatchObject({
        action: 'event',
        subscribed_key: 'object.*.user',
        name: 'doc_created',
      });
      expect(createdEvent.data).toMatchObject({
        type: 'user',
        account_id: child.accountId,
        id: 'user-1',
      });

      const deleted = documentEvent('doc_deleted', 'user', child.accountId, { id: 'user-1' });
      await stack.publisher.publish('configuration', deleted.routingKey, deleted.body);
      const deletedEvent = await client.waitForEvent((f) => f.name === 'doc_deleted');
      expect(deletedEvent.data).toMatchObject({ is_soft_deleted: true, id: 'user-1' });

      // Once authenticated, later frames may leave the token out.
      const callSub = await client.request({
        action: 'subscribe',
        data: { account_id: child.accountId, binding: 'call.CHANNEL_CREATE.*' },
      });
      expect(callSub.data).toEqual({ subscribed: ['object.*.user', 'call.CHANNEL_CREATE.*'] });
      const call = callEvent('CHANNEL_CREATE', child.accountId, 'seq-api-call');
      await stack.publisher.publish('callevt', call.routingKey, call.body);
      const callFrame = await client.waitForEvent((f) => f.name === 'CHANNEL_CREATE');
      expect(callFrame.data?.call_id).toBe('seq-api-call');
      expect((callFrame.data?.custom_channel_vars as Json).account_id).toBe(child.accountId);

      const unsubCall = await client.request({
        action: 'unsubscribe',
        data: { account_id: child.accountId, binding: 'call.CHANNEL_CREATE.*' },
      });
      expect(unsubCall.data).toEqual({
        unsubscribed: ['call.CHANNEL_CREATE.*'],
        subscribed: ['object.*.user'],
      });
      const unsubObject = await client.request({
        action: 'unsubscribe',
        data: { account_id: child.accountId, binding: 'object.*.user' },
      });
      expect(unsubObject.status).toBe('success');
      expect(unsubObject.data).toEqual({ unsubscribed: ['object.*.user'], subscribed: [] });
    });

    itWithNodeQueues(
      'seq_count_bindings: two subscriptions sharing a broker binding; dropping one keeps the other flowing',
      async () => {
        const client = await stack.connectWs();
        await client.subscribe(reseller.token, child.accountId, 'call.CHANNEL_CREATE.*');
        await client.subscribe(undefined, reseller.accountId, 'call.CHANNEL_CREATE.*');
        expect(
          stack.gateway.binder.boundKeys().filter((k) => k.routingKey === 'call.CHANNEL_CREATE.*'),
        ).toEqual([expect.objectContaining({ references: 2 })]);

        const first = callEvent('CHANNEL_CREATE', child.accountId, 'count-1');
        await stack.publisher.publish('callevt', first.routingKey, first.body);
        await client.waitForEvent((f) => callIdOf(f) === 'count-1');

        const reply = await client.request({
          action: 'unsubscribe',
          data: { account_id: reseller.accountId, binding: 'call.CHANNEL_CREATE.*' },
        });
        expect(reply.status).toBe('success');
        const second = callEvent('CHANNEL_CREATE', child.accountId, 'count-2');
        await stack.publisher.publish('callevt', second.routingKey, second.body);
        await client.waitForEvent((f) => callIdOf(f) === 'count-2');
      },
    );
  });

  describe("event envelopes, field by field against Kazoo 4.3's", () => {
    beforeAll(() => {
      stack.crossbar.addAccount(FIXTURE_ACCOUNT);
    });

    it.each([
      ['03 (call)', '02-amqp-callevt-CHANNEL_CREATE.json', '03-ws-4.3-event-CHANNEL_CREATE.json'],
      [
        '06 (conference)',
        '05-amqp-conference-event-4.3-add-member.json',
        '06-ws-4.3-event-conference-add-member.json',
      ],
      ['09 (fax)', '08-amqp-fax-status-4.3.json', '09-ws-4.3-event-fax-status.json'],
      [
        '12 (object)',
        '11-amqp-configuration-doc_created-user.json',
        '12-ws-4.3-event-doc_created-user.json',
      ],
    ])('fixture %s', async (_label, published, expected) => {
      const amqp = readFixture<AmqpFixture>(`ws/${published}`);
      const frame = readFixture<KazooFrame>(`ws/${expected}`);
      const client = await stack.connectWs();
      const reply = await client.subscribe(
        stack.crossbar.issueToken(FIXTURE_ACCOUNT),
        FIXTURE_ACCOUNT,
        frame.subscribed_key as string,
      );
      expect(reply.status).toBe('success');
      await stack.publisher.publish(amqp.exchange, amqp.routing_key, amqp.body);
      const received = await client.waitForEvent();
      // With the replay log on, every event also says where it sits in it (Blackhole's extension).
      const keys = replayLogOn() ? [...Object.keys(frame), 'position'] : Object.keys(frame);
      expect(Object.keys(received).sort()).toEqual(keys.sort());
      expect(received.action).toBe(frame.action);
      expect(received.subscribed_key).toBe(frame.subscribed_key);
      expect(received.subscription_key).toBe(frame.subscription_key);
      expect(received.name).toBe(frame.name);
      expect(received.routing_key).toBe(frame.routing_key);
      expect(received.data).toEqual(frame.data);
    });
  });

  it('delivers one event to a socket.io client and a plain-WebSocket client of the same account, and nothing to another account', async () => {
    const ws = await stack.connectWs();
    const io = await stack.connect('v4');
    const otherWs = await stack.connectWs();
    const otherIo = await stack.connect('v2');
    await ws.subscribe(child.token, child.accountId, 'call.CHANNEL_ANSWER.*');
    await io.subscribe(child.token, child.accountId, 'call.CHANNEL_ANSWER.*');
    await otherWs.subscribe(stranger.token, stranger.accountId, 'call.CHANNEL_ANSWER.*');
    await otherIo.subscribe(stranger.token, stranger.accountId, 'call.CHANNEL_ANSWER.*');

    const event = callEvent('CHANNEL_ANSWER', child.accountId, 'both-protocols');
    await stack.publisher.publish('callevt', event.routingKey, event.body);
    const [wsFrame, ioEvent] = await Promise.all([ws.waitForEvent(), io.waitFor('CHANNEL_ANSWER')]);
    expect(wsFrame.data?.call_id).toBe('both-protocols');
    expect(ioEvent.payload).toEqual(event.body);

    const marker = callEvent('CHANNEL_ANSWER', stranger.accountId, 'stranger-marker');
    await stack.publisher.publish('callevt', marker.routingKey, marker.body);
    await otherWs.waitForEvent();
    await otherIo.waitFor('CHANNEL_ANSWER');
    expect(otherWs.events.map(callIdOf)).toEqual(['stranger-marker']);
    expect(otherIo.named('CHANNEL_ANSWER').map((p) => (p as Json)['Call-ID'])).toEqual([
      'stranger-marker',
    ]);
    expect(ws.events).toHaveLength(1);
  });

  describe('authentication, as Kazoo 4.x but scoped to the account', () => {
    it('needs a token until the connection authenticated, and never echoes it', async () => {
      const client = await stack.connectWs();
      const noToken = await client.request({ action: 'ping' });
      expect(noToken).toMatchObject({
        status: 'error',
        data: { errors: ['authentication token required'] },
      });
      const badToken = 'bad-token-0123456789';
      const bad = await client.request({ action: 'ping', auth_token: badToken });
      expect(bad).toMatchObject({
        status: 'error',
        data: { errors: ['failed to authenticate token'], code: 'token_invalid' },
      });
      expect(JSON.stringify(client.frames)).not.toContain(badToken);
      expect((await client.request({ action: 'ping', auth_token: child.token })).status).toBe(
        'success',
      );
      expect((await client.request({ action: 'ping' })).status).toBe('success');
    });

    it('refuses subscribing and unsubscribing outside the scope, and unsubscribing what the connection never held changes nothing', async () => {
      const victim = await stack.connectWs();
      await victim.subscribe(reseller.token, reseller.accountId, 'call.CHANNEL_DESTROY.*');
      const attacker = await stack.connectWs();
      const sub = await attacker.subscribe(
        child.token,
        reseller.accountId,
        'call.CHANNEL_DESTROY.*',
      );
      expect(sub.data).toMatchObject({
        errors: ['unauthorized account id'],
        code: 'account_forbidden',
      });
      const unsub = await attacker.request({
        action: 'unsubscribe',
        data: { account_id: reseller.accountId, binding: 'call.CHANNEL_DESTROY.*' },
      });
      expect(unsub.data).toMatchObject({ errors: ['unauthorized account id'] });
      // Unsubscribing a binding of its own account it never held releases nothing either.
      const own = await attacker.request({
        action: 'unsubscribe',
        data: { account_id: child.accountId, binding: 'call.CHANNEL_DESTROY.*' },
      });
      expect(own.data).toEqual({ unsubscribed: ['call.CHANNEL_DESTROY.*'], subscribed: [] });

      const event = callEvent('CHANNEL_DESTROY', reseller.accountId, 'still-bound');
      await stack.publisher.publish('callevt', event.routingKey, event.body);
      await victim.waitForEvent((f) => callIdOf(f) === 'still-bound');
    });

    it('accepts data.bindings lists, name and metadata at the top level or in data, and unsubscribe without data drops all', async () => {
      const client = await stack.connectWs();
      const reply = await client.request({
        action: 'subscribe',
        auth_token: child.token,
        name: 'wallboard',
        data: {
          account_id: child.accountId,
          bindings: ['call.CHANNEL_CREATE.*', 'object.*.device'],
          metadata: { desk: 4 },
        },
      });
      expect(reply.data).toEqual({ subscribed: ['call.CHANNEL_CREATE.*', 'object.*.device'] });
      const dropped = await client.request({ action: 'unsubscribe' });
      expect(dropped.data).toEqual({
        unsubscribed: ['call.CHANNEL_CREATE.*', 'object.*.device'],
        subscribed: [],
      });
    });

    it('generates a request_id when the client sends none', async () => {
      const client = await stack.connectWs();
      client.sendRaw(JSON.stringify({ action: 'ping', auth_token: child.token }));
      const reply = await client.waitFor((f) => f.action === 'reply');
      expect(reply.request_id).toMatch(/^[0-9a-f]{32}$/);
      expect(reply.data).toEqual({ response: 'pong' });
    });
  });

  describe('bad input', () => {
    const token = () => child.token;
    const account = () => child.accountId;
    const cases: [string, () => string | Buffer, string][] = [
      ['invalid JSON', () => '{"action": "subscribe",', 'invalid JSON'],
      ['a JSON string', () => '"subscribe"', 'expected a JSON object'],
      ['a JSON number', () => '42', 'expected a JSON object'],
      ['a JSON array', () => '[{"action":"ping"}]', 'expected a JSON object'],
      ['JSON null', () => 'null', 'expected a JSON object'],
      ['a binary frame', () => Buffer.from('{"action":"ping"}'), 'binary frames are not supported'],
      ['no action', () => JSON.stringify({ auth_token: token() }), 'missing required key : action'],
      [
        'an unknown action',
        () => JSON.stringify({ action: 'explode', auth_token: token() }),
        'unsupported action "explode"',
      ],
      ['a numeric action', () => JSON.stringify({ action: 7 }), 'unsupported action 7'],
      [
        'a numeric token',
        () => JSON.stringify({ action: 'ping', auth_token: 12345 }),
        'invalid authentication token format',
      ],
      [
        'data as a string',
        () => JSON.stringify({ action: 'subscribe', auth_token: token(), data: 'call.*.*' }),
        'data must be a JSON object',
      ],
      [
        'subscribe without data',
        () => JSON.stringify({ action: 'subscribe', auth_token: token() }),
        'missing required keys in data object',
      ],
      [
        'subscribe with empty data',
        () => JSON.stringify({ action: 'subscribe', auth_token: token(), data: {} }),
        'missing required keys in data object',
      ],
      [
        'no binding',
        () =>
          JSON.stringify({
            action: 'subscribe',
            auth_token: token(),
            data: { account_id: account() },
          }),
        'missing required keys : binding',
      ],
      [
        'no account',
        () =>
          JSON.stringify({
            action: 'subscribe',
            auth_token: token(),
            data: { binding: 'call.*.*' },
          }),
        'missing required keys : account_id',
      ],
      [
        'a numeric binding',
        () =>
          JSON.stringify({
            action: 'subscribe',
            auth_token: token(),
            data: { account_id: account(), binding: 5 },
          }),
        'binding must be a string',
      ],
      [
        'bindings not a list',
        () =>
          JSON.stringify({
            action: 'subscribe',
            auth_token: token(),
            data: { account_id: account(), bindings: 'call.*.*' },
          }),
        'bindings must be a list of 1 to 100 non-empty strings',
      ],
      [
        'an unknown family',
        () =>
          JSON.stringify({
            action: 'subscribe',
            auth_token: token(),
            data: { account_id: account(), binding: 'weather.today' },
          }),
        'no available subscriptions to requested binding weather.today',
      ],
      [
        'an unknown call event',
        () =>
          JSON.stringify({
            action: 'subscribe',
            auth_token: token(),
            data: { account_id: account(), binding: 'call.CHANNEL_EXPLODE.*' },
          }),
        'event CHANNEL_EXPLODE not supported',
      ],
      [
        'the wildcard account',
        () =>
          JSON.stringify({
            action: 'subscribe',
            auth_token: token(),
            data: { account_id: '*', binding: 'call.*.*' },
          }),
        'unauthorized wildcard account id',
      ],
      [
        'a malformed account',
        () =>
          JSON.stringify({
            action: 'subscribe',
            auth_token: token(),
            data: { account_id: 'x/../y', binding: 'call.*.*' },
          }),
        'invalid account id',
      ],
      [
        'a bad token',
        () =>
          JSON.stringify({
            action: 'subscribe',
            auth_token: 'nope',
            data: { account_id: account(), binding: 'call.*.*' },
          }),
        'failed to authenticate token',
      ],
    ];

    it(`answers ${cases.length} kinds of bad frame with an error while a well-behaved client keeps receiving every event`, async () => {
      const steady = await stack.connectWs();
      await steady.subscribe(stranger.token, stranger.accountId, 'call.CHANNEL_CREATE.*');
      const sent: string[] = [];
      for (const [label, frame, message] of cases) {
        const abuser = await stack.connectWs();
        const payload = frame();
        abuser.sendRaw(payload, Buffer.isBuffer(payload));
        const reply = await abuser.waitFor((f) => f.action === 'reply');
        expect({ label, status: reply.status, errors: reply.data?.errors }).toEqual({
          label,
          status: 'error',
          errors: [message],
        });
        expect(reply.request_id).toEqual(expect.any(String));
        // The connection survives and still answers.
        expect((await abuser.request({ action: 'ping', auth_token: child.token })).status).toBe(
          'success',
        );

        const event = callEvent('CHANNEL_CREATE', stranger.accountId, `steady-${sent.length}`);
        sent.push(event.body['Call-ID'] as string);
        await stack.publisher.publish('callevt', event.routingKey, event.body);
      }
      await waitUntil('every event at the steady client', () =>
        steady.events.length === sent.length ? true : undefined,
      );
      expect(steady.events.map(callIdOf)).toEqual(sent);
      expect((await stack.gateway.health()).status).toBe(200);
    });

    it('closes a connection that sends an oversized frame with 1009, and the process carries on', async () => {
      const abuser = await stack.connectWs();
      abuser.sendRaw(JSON.stringify({ action: 'ping', auth_token: 'x'.repeat(100 * 1024) }));
      expect((await abuser.whenClosed()).code).toBe(1009);
      const fine = await stack.connectWs();
      expect((await fine.request({ action: 'ping', auth_token: child.token })).status).toBe(
        'success',
      );
    });

    it('leaves socket.io alone on /socket.io/ and serves the Kazoo protocol on any other path', async () => {
      const elsewhere = await stack.connectWs('/some/path?x=1');
      expect((await elsewhere.request({ action: 'ping', auth_token: child.token })).data).toEqual({
        response: 'pong',
      });
      const io = await stack.connect('v4');
      expect((await io.subscribe(child.token, child.accountId, 'call.CHANNEL_HOLD.*')).status).toBe(
        'success',
      );
    });
  });
});

describe("Kazoo 4.x's per-connection rate limit", () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await Stack.start({ env: { WS_RATE_BURST: '5', WS_RATE_PER_S: '1' } });
  });
  afterAll(() => stack.close());

  it("refuses requests past the bucket with Kazoo's text, without closing the connection", async () => {
    const { token } = stack.account();
    const client = await stack.connectWs();
    const replies = await Promise.all(
      Array.from({ length: 7 }, (_, i) =>
        client.request({ action: 'ping', auth_token: token, request_id: `p${i}` }),
      ),
    );
    const refused = replies.filter((r) => r.status === 'error');
    expect(replies.filter((r) => r.status === 'success')).toHaveLength(5);
    expect(refused).toHaveLength(2);
    expect(refused[0].data?.errors).toEqual([
      expect.stringMatching(/^rate limiting threshold hit for [0-9a-f-]{36}!$/),
    ]);
    expect(client.isOpen).toBe(true);
  });
});

describe('plain-WebSocket heartbeats', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await Stack.start({ env: { WS_PING_INTERVAL_S: '1' } });
  });
  afterAll(() => stack.close());

  itWithNodeQueues(
    'drops a peer that stops answering pings and releases what it held, and keeps one that answers',
    async () => {
      const { accountId, token } = stack.account();
      const dead = await stack.connectWs('/', { autoPong: false });
      const alive = await stack.connectWs('/');
      expect((await dead.subscribe(token, accountId, 'call.PARK_ABANDONED.*')).status).toBe(
        'success',
      );
      expect((await alive.subscribe(token, accountId, 'call.PARK_RETRIEVED.*')).status).toBe(
        'success',
      );

      const { code } = await dead.whenClosed(6000);
      expect(code).toBe(1006);
      const keys = () => stack.gateway.binder.boundKeys().map((key) => key.routingKey);
      await waitUntil('the dead peer to release its binding', () =>
        keys().includes('call.PARK_ABANDONED.*') ? undefined : true,
      );
      expect(keys()).toContain('call.PARK_RETRIEVED.*');
      expect(alive.isOpen).toBe(true);
    },
  );
});
