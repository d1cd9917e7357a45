import { createHash } from 'node:crypto';
import { brokerBindings } from '../support/amqp';
import { conferenceEvent } from '../support/conference-events';
import { callEvent } from '../support/kazoo-events';
import {
  LegacyClient,
  type LegacyConnectOptions,
  type LegacyTransport,
} from '../support/legacy-client';
import { Stack } from '../support/stack';
import { waitUntil } from '../support/wait';
import { itWithNodeQueues } from '../support/replay-log-mode';

type Json = Record<string, unknown>;
const callIdOf = (args: unknown): unknown => (args as Json)['Call-ID'];

// Short heartbeats, timeouts and pings so the liveness checks finish in seconds.
const PING_MS = 1000;
const ENV = {
  LEGACY_HEARTBEAT_S: '1',
  LEGACY_TIMEOUT_S: '3',
  LEGACY_CLOSE_TIMEOUT_S: '3',
  LEGACY_POLL_S: '1',
  WS_PING_INTERVAL_S: String(PING_MS / 1000),
};

describe.each<LegacyTransport>(['websocket', 'xhr-polling'])(
  'socket.io 0.9 endpoint over %s',
  (transport) => {
    let stack: Stack;
    let mine: { accountId: string; token: string };
    let theirs: { accountId: string; token: string };
    const clients: LegacyClient[] = [];

    const connect = async (options?: LegacyConnectOptions): Promise<LegacyClient> => {
      const client = await LegacyClient.connect(stack.gateway.url, transport, options);
      clients.push(client);
      return client;
    };
    const subscribe = (
      client: LegacyClient,
      who: { accountId: string; token: string },
      binding: string,
    ) =>
      client.emit('subscribe', { account_id: who.accountId, auth_token: who.token, binding }, true);

    beforeAll(async () => {
      stack = await Stack.start({ env: ENV });
      mine = stack.account();
      theirs = stack.account();
    });
    afterEach(() => clients.splice(0).forEach((client) => client.close()));
    afterAll(() => stack.close());

    it('handshakes as Kazoo 3.x did and answers with CORS for any page (CORS_ORIGINS=*)', async () => {
      const response = await fetch(`${stack.gateway.url}/socket.io/1/?t=1`, {
        headers: { Origin: 'http://crm.example' },
      });
      // Tokens, not cookies, authenticate: a wildcard, never credentials.
      expect(response.headers.get('access-control-allow-origin')).toBe('*');
      expect(response.headers.get('access-control-allow-credentials')).toBeNull();
      expect(await response.text()).toMatch(/^[\w-]+:3:3:websocket,xhr-polling$/);
      const jsonp = await (await fetch(`${stack.gateway.url}/socket.io/1/?t=1&jsonp=2`)).text();
      expect(jsonp).toMatch(/^io\.j\[2\]\("[\w-]+:3:3:websocket,xhr-polling"\);$/);
    });

    it("receives call and conference events of its account under Kazoo 3.x's names, and never another account's", async () => {
      const client = await connect();
      const other = await connect();
      for (const binding of [
        'call.CHANNEL_CREATE.*',
        'call.CHANNEL_ANSWER.*',
        'call.CHANNEL_DESTROY.*',
        'conference.event.*',
      ]) {
        const [ack] = (await subscribe(client, mine, binding)) ?? [];
        expect(ack).toMatchObject({ status: 'success' });
      }
      await subscribe(other, theirs, 'call.CHANNEL_CREATE.*');

      for (let i = 0; i < 30; i++) {
        const foreign = callEvent('CHANNEL_CREATE', theirs.accountId, `theirs-${i}`);
        await stack.publisher.publish('callevt', foreign.routingKey, foreign.body);
        const foreignConference = conferenceEvent(theirs.accountId, { callId: `theirs-conf-${i}` });
        await stack.publisher.publish(
          'conference',
          foreignConference.routingKey,
          foreignConference.body,
        );
      }
      const published = (['CHANNEL_CREATE', 'CHANNEL_ANSWER', 'CHANNEL_DESTROY'] as const).map(
        (name) => callEvent(name, mine.accountId, 'legacy-call'),
      );
      for (const event of published)
        await stack.publisher.publish('callevt', event.routingKey, event.body);
      const conference = conferenceEvent(mine.accountId, { callId: 'legacy-conf-call' });
      await stack.publisher.publish('conference', conference.routingKey, conference.body);

      for (const event of published) {
        expect((await client.waitFor(event.body['Event-Name'] as string)).args).toEqual(event.body);
      }
      expect((await client.waitFor('participants_event')).args).toEqual(conference.body);
      await waitUntil('the other client to get its 30 calls', () =>
        other.named('CHANNEL_CREATE').length === 30 ? true : undefined,
      );
      expect(client.named('CHANNEL_CREATE').map(callIdOf)).toEqual(['legacy-call']);
      expect(client.named('participants_event')).toHaveLength(1);
      expect(other.events.every((e) => e.name === 'CHANNEL_CREATE')).toBe(true);
    });

    it('keeps a session that answers heartbeats alive past the timeout, and stops delivery on unsubscribe', async () => {
      const client = await connect();
      await subscribe(client, mine, 'call.CHANNEL_HOLD.*');
      await subscribe(client, mine, 'call.CHANNEL_UNHOLD.*');
      await client.waitForPacket(() => client.heartbeats >= 4, 8000);
      expect(client.closed).toBe(false);

      const [ack] =
        (await client.emit(
          'unsubscribe',
          { account_id: mine.accountId, auth_token: mine.token, binding: 'call.CHANNEL_HOLD.*' },
          true,
        )) ?? [];
      expect(ack).toEqual({
        status: 'success',
        data: { unsubscribed: ['call.CHANNEL_HOLD.*'], subscribed: ['call.CHANNEL_UNHOLD.*'] },
      });
      const held = callEvent('CHANNEL_CREATE', mine.accountId, 'held');
      await stack.publisher.publish('callevt', 'call.CHANNEL_HOLD.held', {
        ...held.body,
        'Event-Name': 'CHANNEL_HOLD',
      });
      await stack.publisher.publish('callevt', 'call.CHANNEL_UNHOLD.held', {
        ...held.body,
        'Event-Name': 'CHANNEL_UNHOLD',
      });
      await client.waitFor('CHANNEL_UNHOLD');
      expect(client.named('CHANNEL_HOLD')).toEqual([]);
    });

    it('answers a bad token with auth_failure, without the token, and unknown events with an error', async () => {
      const client = await connect();
      const badToken = 'not-a-kazoo-token-42';
      await client.emit('subscribe', {
        account_id: mine.accountId,
        auth_token: badToken,
        binding: 'call.*.*',
      });
      const failure = await client.waitFor('auth_failure');
      expect(failure.args).toEqual({
        message: 'failed to authenticate token',
        code: 'token_invalid',
      });
      expect(client.received.join('\n')).not.toContain(badToken);

      await client.emit('explode', {});
      expect((await client.waitFor('error')).args).toEqual({
        message: 'unsupported event "explode"',
        code: 'bad_request',
      });
      await client.sendPacket('5:::not json');
      await client.waitFor('error', (args) => (args as Json).message === 'invalid JSON');
      // Valid JSON that is no event object, and payloads of the wrong types: coded errors.
      for (const packet of ['5:::null', '5:::[1]', '5:::"subscribe"', '5:::42']) {
        await client.sendPacket(packet);
      }
      await client.emit('subscribe', { account_id: mine.accountId, auth_token: null });
      await client.emit('subscribe', [null]);
      await waitUntil('an answer to every bad packet', () =>
        client.named('error').length >= 8 ? true : undefined,
      );
      const messages = client.named('error').map((args) => (args as Json).message);
      expect(messages.filter((m) => m === 'expected a JSON object')).toHaveLength(4);
      expect(messages).toContain(
        'invalid subscribe request: auth_token: auth_token must be a string',
      );
      expect(messages).toContain('subscribe expects a JSON object');
      expect(messages).not.toContain('internal error');
      expect(client.closed).toBe(false);
      // And the session still works.
      const [ack] =
        (await client.emit(
          'subscribe',
          { account_id: mine.accountId, auth_token: mine.token, binding: 'call.PARK_RETRIEVED.*' },
          true,
        )) ?? [];
      expect(ack).toMatchObject({ status: 'success' });
    });

    it('acknowledges, with a coded error, an unusable event whose sender asked for an ack', async () => {
      const client = await connect();
      const refused = [
        ['7', 'not json', 'invalid JSON'],
        ['8', 'null', 'expected a JSON object'],
        ['9', JSON.stringify({ name: false, args: [{}] }), 'unsupported event false'],
      ];
      for (const [id, data, message] of refused) {
        await client.sendPacket(`5:${id}+::${data}`);
        const ack = await client.waitForPacket((packet) => packet.startsWith(`6:::${id}+`));
        expect(JSON.parse(ack.slice(`6:::${id}+`.length))).toEqual([
          { status: 'error', data: { errors: [message], code: 'bad_request', temporary: false } },
        ]);
      }
      expect(client.closed).toBe(false);
    });

    const parked = () =>
      stack.gateway.binder.boundKeys().some((key) => key.routingKey === 'call.PARK_PARKED.*');
    const brokerReleased = () =>
      waitUntil('the broker binding to go', async () =>
        (await brokerBindings(stack.gateway.queuePrefix)).some(
          (b) => b.routingKey === 'call.PARK_PARKED.*',
        )
          ? undefined
          : true,
      );

    if (transport === 'xhr-polling') {
      itWithNodeQueues(
        'closes a polling session that stops heartbeating and releases its bindings',
        async () => {
          const client = await connect();
          client.answerHeartbeats = false;
          await subscribe(client, mine, 'call.PARK_PARKED.*');
          expect(parked()).toBe(true);
          await waitUntil('the session to be closed', () => (parked() ? undefined : true), 10000);
          await brokerReleased();
          await waitUntil(
            'the client to see the end',
            () => (client.closed ? true : undefined),
            5000,
          );
        },
      );
    } else {
      itWithNodeQueues(
        'terminates a WebSocket peer that stops answering pings and releases its bindings',
        async () => {
          // ws answers pings by itself; without autoPong the peer is as silent as a dead one.
          const client = await connect({ autoPong: false, answerHeartbeats: false });
          const [ack] = (await subscribe(client, mine, 'call.PARK_PARKED.*')) ?? [];
          expect(ack).toMatchObject({ status: 'success' });
          expect(parked()).toBe(true);
          // The first check pings, the next finds no pong: two intervals, plus slack for a busy machine.
          await waitUntil(
            'the peer to be cut off',
            () => (client.closed ? true : undefined),
            10_000,
          );
          await waitUntil('its subscription to go', () => (parked() ? undefined : true));
          await brokerReleased();
        },
      );
    }
  },
);

describe('socket.io 0.9 assets and routing', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await Stack.start();
  });
  afterAll(() => stack.close());

  it('serves the socket.io 0.9.6 browser client locally', async () => {
    const response = await fetch(`${stack.gateway.url}/vendor/socket.io-0.9.6.min.js`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/javascript/);
    const body = Buffer.from(await response.arrayBuffer());
    expect(body.toString('utf8')).toContain('build:0.9.6');
    // The file exactly as the npm package socket.io-client@0.9.6 ships it (scripts/vendor-socket.io-0.9.6.sh).
    expect(createHash('sha256').update(body).digest('hex')).toBe(
      '491c2fb399fe361c7b7a3b3a38db971536b9ed6b1826230181b7f77389ce6542',
    );
  });

  it('refuses unknown sessions and transports the way 0.9 clients understand', async () => {
    expect(await (await fetch(`${stack.gateway.url}/socket.io/1/xhr-polling/nope`)).text()).toBe(
      '7:::1+0',
    );
    expect(await (await fetch(`${stack.gateway.url}/socket.io/1/flashsocket/nope`)).text()).toBe(
      '7:::0+0',
    );
  });

  it('still serves socket.io 4 under /socket.io/', async () => {
    const response = await fetch(`${stack.gateway.url}/socket.io/?EIO=4&transport=polling`);
    expect(response.status).toBe(200);
    expect(await response.text()).toMatch(/^0\{"sid":/);
  });
});
