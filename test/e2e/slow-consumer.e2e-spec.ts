import { randomBytes } from 'node:crypto';
import { callEvent } from '../support/kazoo-events';
import { PollingClient } from '../support/clients';
import { LegacyClient } from '../support/legacy-client';
import { Stack } from '../support/stack';
import { waitUntil } from '../support/wait';

/** Small, so that the kernel's socket buffers (several MB on loopback) dominate what is sent. */
const MAX_OUTBOUND_BYTES = 65536;
const BINDING = 'call.CHANNEL_CREATE.*';
/** Generous: the kernel absorbs megabytes before the gateway holds anything. */
const DROP_TIMEOUT_MS = 120_000;

interface Counters {
  slow_consumer_disconnects: number;
}

describe('slow consumers (MAX_OUTBOUND_BYTES)', () => {
  let stack: Stack;
  const keepAlives: NodeJS.Timeout[] = [];

  beforeAll(async () => {
    stack = await Stack.start({ env: { MAX_OUTBOUND_BYTES: String(MAX_OUTBOUND_BYTES) } });
  });

  const stopKeepAlives = (): void => keepAlives.splice(0).forEach(clearInterval);

  afterEach(() => {
    stopKeepAlives();
    stack.closeClients();
  });

  afterAll(async () => {
    await stack.close();
  });

  async function health(): Promise<{ drops: number; subscriptions: number }> {
    const { body } = await stack.gateway.health();
    const events = body.events as unknown as Counters;
    return { drops: events.slow_consumer_disconnects, subscriptions: body.subscriptions };
  }

  /** Keeps sending keep-alives from a client that reads nothing. */
  function keepAlive(send: () => void): void {
    const timer = setInterval(send, 200);
    timer.unref();
    keepAlives.push(timer);
  }

  /**
   * Publishes CHANNEL_CREATE events of `accountId` in batches until the gateway counts one more
   * slow consumer; resolves with the call ids published, in order.
   */
  async function publishUntilDropped(accountId: string, dropsBefore: number): Promise<string[]> {
    const callIds: string[] = [];
    const deadline = Date.now() + DROP_TIMEOUT_MS;
    while ((await health()).drops === dropsBefore) {
      if (Date.now() > deadline) {
        throw new Error(`no slow-consumer drop after ${callIds.length} events`);
      }
      const batch = Array.from({ length: 100 }, () => randomBytes(10).toString('hex'));
      callIds.push(...batch);
      await Promise.all(
        batch.map((callId) => {
          const event = callEvent('CHANNEL_CREATE', accountId, callId);
          return stack.publisher.publish('callevt', event.routingKey, event.body);
        }),
      );
    }
    return callIds;
  }

  async function publishMarker(accountId: string): Promise<string> {
    const callId = `marker${randomBytes(8).toString('hex')}`;
    const event = callEvent('CHANNEL_CREATE', accountId, callId);
    await stack.publisher.publish('callevt', event.routingKey, event.body);
    return callId;
  }

  it('Kazoo 4.x WebSocket: a client that only sends pongs is closed with 4008', async () => {
    const slowAccount = stack.account();
    const otherAccount = stack.account();
    const slow = await stack.connectWs();
    const sameAccount = await stack.connectWs();
    const bystander = await stack.connectWs();
    for (const [client, who] of [
      [slow, slowAccount],
      [sameAccount, slowAccount],
      [bystander, otherAccount],
    ] as const) {
      expect((await client.subscribe(who.token, who.accountId, BINDING)).status).toBe('success');
    }
    const before = await health();

    slow.pauseReading();
    keepAlive(() => slow.sendPong());
    const published = await publishUntilDropped(slowAccount.accountId, before.drops);
    stopKeepAlives();
    // Reading again at once (before the node gives up on the close handshake), it gets what
    // was queued, then the close frame.
    slow.resumeReading();

    expect((await health()).drops).toBe(before.drops + 1);
    await waitUntil('the slow client to be released', async () =>
      (await health()).subscriptions === before.subscriptions - 1 ? true : undefined,
    );
    expect(await slow.whenClosed(30_000)).toEqual({ code: 4008, reason: 'slow consumer' });

    const marker = await publishMarker(slowAccount.accountId);
    const otherMarker = await publishMarker(otherAccount.accountId);
    await sameAccount.waitForEvent((f) => f.data?.call_id === marker, 30_000);
    const received = sameAccount.events.map((f) => f.data?.call_id);
    expect(received).toEqual([...published, marker]);

    await bystander.waitForEvent((f) => f.data?.call_id === otherMarker, 30_000);
    expect(bystander.events.map((f) => f.data?.call_id)).toEqual([otherMarker]);
  }, 240_000);

  it('socket.io v4: a client that only sends pongs gets slow_consumer and is disconnected', async () => {
    const slowAccount = stack.account();
    const otherAccount = stack.account();
    const slow = await stack.connect('v4');
    const sameAccount = await stack.connect('v4');
    const bystander = await stack.connect('v4');
    for (const [client, who] of [
      [slow, slowAccount],
      [sameAccount, slowAccount],
      [bystander, otherAccount],
    ] as const) {
      expect((await client.subscribe(who.token, who.accountId, BINDING)).status).toBe('success');
    }
    const before = await health();

    slow.pauseReading();
    // Engine.IO 4's pong; the server's pings are never read.
    keepAlive(() => slow.sendEnginePacket('3'));
    const published = await publishUntilDropped(slowAccount.accountId, before.drops);
    stopKeepAlives();
    // Reading again at once, before the node gives up on a clean close.
    slow.resumeReading();

    expect((await health()).drops).toBe(before.drops + 1);
    await waitUntil('the slow client to be released', async () =>
      (await health()).subscriptions === before.subscriptions - 1 ? true : undefined,
    );
    await waitUntil(
      'the slow client to be disconnected',
      () => slow.isDisconnected || undefined,
      30_000,
    );
    expect(slow.disconnectReason).toBe('io server disconnect');
    expect(slow.named('error')).toEqual([{ code: 'slow_consumer', message: 'slow consumer' }]);

    const callIdOf = (payload: unknown): unknown => (payload as Record<string, unknown>)['Call-ID'];
    const marker = await publishMarker(slowAccount.accountId);
    const otherMarker = await publishMarker(otherAccount.accountId);
    await sameAccount.waitFor('CHANNEL_CREATE', (p) => callIdOf(p) === marker, 30_000);
    expect(sameAccount.named('CHANNEL_CREATE').map(callIdOf)).toEqual([...published, marker]);

    await bystander.waitFor('CHANNEL_CREATE', (p) => callIdOf(p) === otherMarker, 30_000);
    expect(bystander.named('CHANNEL_CREATE').map(callIdOf)).toEqual([otherMarker]);
  }, 240_000);

  it('socket.io 0.9 websocket: a client that only sends heartbeats gets 0:: and is closed with 4008', async () => {
    const slowAccount = stack.account();
    const otherAccount = stack.account();
    const connect = async (who: { accountId: string; token: string }): Promise<LegacyClient> => {
      const client = await LegacyClient.connect(stack.gateway.url, 'websocket');
      const [ack] = (await client.emit(
        'subscribe',
        { account_id: who.accountId, auth_token: who.token, binding: BINDING },
        true,
      )) as [{ status: string }];
      expect(ack.status).toBe('success');
      return client;
    };
    const slow = await connect(slowAccount);
    const sameAccount = await connect(slowAccount);
    const bystander = await connect(otherAccount);
    const clients = [slow, sameAccount, bystander];
    try {
      const before = await health();

      slow.pauseReading();
      keepAlive(() => void slow.sendPacket('2::'));
      const published = await publishUntilDropped(slowAccount.accountId, before.drops);
      stopKeepAlives();
      // Reading again at once, before the node gives up on a clean close.
      slow.resumeReading();

      expect((await health()).drops).toBe(before.drops + 1);
      await waitUntil('the slow client to be released', async () =>
        (await health()).subscriptions === before.subscriptions - 1 ? true : undefined,
      );
      await waitUntil('the slow client to be closed', () => slow.closeInfo, 30_000);
      expect(slow.closeInfo).toEqual({ code: 4008, reason: 'slow consumer' });
      expect(slow.received).toContain('0::');

      const callIdOf = (args: unknown): unknown => (args as Record<string, unknown>)['Call-ID'];
      const marker = await publishMarker(slowAccount.accountId);
      const otherMarker = await publishMarker(otherAccount.accountId);
      await sameAccount.waitFor('CHANNEL_CREATE', (a) => callIdOf(a) === marker, 30_000);
      expect(sameAccount.named('CHANNEL_CREATE').map(callIdOf)).toEqual([...published, marker]);

      await bystander.waitFor('CHANNEL_CREATE', (a) => callIdOf(a) === otherMarker, 30_000);
      expect(bystander.named('CHANNEL_CREATE').map(callIdOf)).toEqual([otherMarker]);
    } finally {
      clients.forEach((client) => client.close());
    }
  }, 240_000);

  /** Same-account and bystander clients are proven above; these prove the polling transports. */
  describe('on long-polling transports', () => {
    it('socket.io v4 polling: a client that stops polling but posts pongs is dropped', async () => {
      const who = stack.account();
      const slow = await PollingClient.connect(stack.gateway.url);
      expect((await slow.subscribe(who.token, who.accountId, BINDING)).status).toBe('success');
      const before = await health();

      keepAlive(() => void slow.post('3').catch(() => undefined));
      await publishUntilDropped(who.accountId, before.drops);
      stopKeepAlives();

      await waitUntil('the slow client to be released', async () =>
        (await health()).subscriptions === before.subscriptions - 1 ? true : undefined,
      );
      // engine.io forgets the session once the gateway has cut it.
      await waitUntil(
        'the session to be gone',
        async () => ((await slow.pollStatus()) === 400 ? true : undefined),
        30_000,
      );
    }, 240_000);

    it('socket.io 0.9 xhr-polling: a client that stops polling but posts heartbeats is dropped', async () => {
      const who = stack.account();
      const slow = await LegacyClient.connect(stack.gateway.url, 'xhr-polling');
      try {
        const [ack] = (await slow.emit(
          'subscribe',
          { account_id: who.accountId, auth_token: who.token, binding: BINDING },
          true,
        )) as [{ status: string }];
        expect(ack.status).toBe('success');
        const before = await health();

        slow.stopPolling();
        keepAlive(() => void slow.sendPacket('2::').catch(() => undefined));
        await publishUntilDropped(who.accountId, before.drops);
        stopKeepAlives();

        await waitUntil('the slow client to be released', async () =>
          (await health()).subscriptions === before.subscriptions - 1 ? true : undefined,
        );
        const poll = await fetch(
          `${stack.gateway.url}/socket.io/1/xhr-polling/${slow.sid}?t=${Date.now()}`,
        );
        expect(await poll.text()).toBe('7:::1+0');
      } finally {
        slow.close();
      }
    }, 240_000);
  });
});
