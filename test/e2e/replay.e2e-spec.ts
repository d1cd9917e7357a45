import { randomBytes } from 'node:crypto';
import { EventClient, type ReceivedEvent } from '../support/clients';
import { SettableClock } from '../support/clock';
import { LOG_IDLE_MS } from '../../src/amqp/replay-log';
import { amqpUrlVia, brokerAddress, deleteReplayLog } from '../support/amqp';
import { newAccountId } from '../support/fake-crossbar';
import { callEvent } from '../support/kazoo-events';
import { Stack } from '../support/stack';
import { startTestGateway, type TestGateway } from '../support/start-app';
import { TcpGate } from '../support/tcp-gate';
import { parsePrometheusText, sampleValue } from '../support/prometheus-text';
import { KazooWsClient, type KazooFrame } from '../support/ws-client';

type Json = Record<string, unknown>;

/** A log of this run only: suites in parallel must not share one. */
const STREAM = `blackhole.replay.test-${randomBytes(4).toString('hex')}`;
const REPLAY_ENV = { REPLAY_WINDOW_S: '120', REPLAY_STREAM: STREAM };

const callIdOf = (event: ReceivedEvent): unknown => (event.payload as Json)['Call-ID'];
const positionOf = (event: ReceivedEvent): string | undefined =>
  (event.meta as { position?: string } | undefined)?.position;

/**
 * Resume across nodes: two gateways on the same broker read one replay log (a RabbitMQ
 * stream). A client that loses its connection resumes on the other node with the last
 * position it saw and gets exactly the events it missed, in order, then live ones.
 */
describe('replay: nothing missed across a reconnect', () => {
  let stack: Stack;
  let second: TestGateway;
  /** The second node's clock: moved past the window in one test. */
  const clock = new SettableClock(new Date().toISOString());

  beforeAll(async () => {
    stack = await Stack.start({ env: REPLAY_ENV });
    second = await startTestGateway(
      { CROSSBAR_URL: stack.crossbar.url, ...REPLAY_ENV },
      undefined,
      clock,
    );
    await second.consuming();
  });

  afterEach(() => {
    stack.closeClients();
    clock.set(new Date().toISOString());
  });

  afterAll(async () => {
    await second.close();
    await stack.close();
    await deleteReplayLog(STREAM);
  });

  const publishCall = (accountId: string, callId: string): Promise<void> => {
    const event = callEvent('CHANNEL_CREATE', accountId, callId);
    return stack.publisher.publish('callevt', event.routingKey, event.body);
  };

  /** Publishes a call of `accountId` and answers the position at which `client` receives it. */
  const positionOfCall = async (
    client: EventClient,
    accountId: string,
    callId: string,
  ): Promise<string | undefined> => {
    await publishCall(accountId, callId);
    return positionOf(
      await client.waitFor('CHANNEL_CREATE', (p) => (p as Json)['Call-ID'] === callId),
    );
  };

  /** A socket.io client on the second node (Stack's clients all go to the first). */
  const connectSecond = async (): Promise<EventClient> => {
    const client = await EventClient.connect('v4', second.url);
    clientsOfSecond.push(client);
    return client;
  };
  const clientsOfSecond: { close(): void }[] = [];
  afterEach(() => clientsOfSecond.splice(0).forEach((client) => client.close()));

  it('socket.io: replays exactly the missed events of its account, in order, then live ones', async () => {
    const mine = stack.account();
    const other = stack.account();
    const first = await stack.connect('v4');
    expect((await first.subscribe(mine.token, mine.accountId, 'call.*.*')).status).toBe('success');
    const bystander = await connectSecond();
    expect((await bystander.subscribe(other.token, other.accountId, 'call.*.*')).status).toBe(
      'success',
    );

    const position = await positionOfCall(first, mine.accountId, 'before-gap');
    expect(position).toEqual(expect.any(String));
    first.close();

    // 500 events while it is away: every other one its account's.
    const missed: string[] = [];
    for (let i = 0; i < 500; i++) {
      const callId = `gap-${String(i).padStart(3, '0')}`;
      if (i % 2 === 0) {
        missed.push(callId);
        await publishCall(mine.accountId, callId);
      } else {
        await publishCall(other.accountId, `other-${callId}`);
      }
    }
    // The bystander has its account's last one: the log has them all.
    await bystander.waitFor(
      'CHANNEL_CREATE',
      (p) => (p as Json)['Call-ID'] === 'other-gap-499',
      15000,
    );

    const back = await connectSecond();
    const ack = await back.request(
      'resume',
      { auth_token: mine.token, account_id: mine.accountId, bindings: ['call.*.*'], position },
      20000,
    );
    expect(ack).toEqual({ status: 'success', data: { subscribed: ['call.*.*'], recovered: true } });

    await publishCall(mine.accountId, 'live-after');
    await back.waitFor('CHANNEL_CREATE', (p) => (p as Json)['Call-ID'] === 'live-after');
    const received = back.events.filter((e) => e.name === 'CHANNEL_CREATE');
    expect(received.map(callIdOf)).toEqual([...missed, 'live-after']);
    // Positions sort in log order and every event has one.
    const positions = received.map(positionOf);
    expect(positions.every((p) => typeof p === 'string' && p > position!)).toBe(true);
    expect([...positions].sort()).toEqual(positions);

    // Negative proof: the bystander's own later marker arrives, and it never saw mine.
    await publishCall(other.accountId, 'other-marker');
    await bystander.waitFor('CHANNEL_CREATE', (p) => (p as Json)['Call-ID'] === 'other-marker');
    expect(bystander.events.some((e) => String(callIdOf(e)).startsWith('gap-'))).toBe(false);
    expect(back.events.some((e) => String(callIdOf(e)).startsWith('other-'))).toBe(false);
  }, 60000);

  it('socket.io: events published while the resume runs are neither lost nor doubled at the seam', async () => {
    const mine = stack.account();
    const first = await stack.connect('v4');
    await first.subscribe(mine.token, mine.accountId, 'call.*.*');
    const position = await positionOfCall(first, mine.accountId, 'seam-before');
    first.close();
    const expected: string[] = [];
    for (let i = 0; i < 100; i++) {
      expected.push(`seam-${i}`);
      await publishCall(mine.accountId, `seam-${i}`);
    }
    const back = await connectSecond();
    // Publishing goes on while the replay reads.
    const during = (async () => {
      for (let i = 100; i < 300; i++) await publishCall(mine.accountId, `seam-${i}`);
    })();
    for (let i = 100; i < 300; i++) expected.push(`seam-${i}`);
    const ack = await back.request(
      'resume',
      { auth_token: mine.token, account_id: mine.accountId, bindings: ['call.*.*'], position },
      20000,
    );
    await during;
    expect(ack.data.recovered).toBe(true);
    await back.waitFor('CHANNEL_CREATE', (p) => (p as Json)['Call-ID'] === 'seam-299', 15000);
    expect(back.events.filter((e) => e.name === 'CHANNEL_CREATE').map(callIdOf)).toEqual(expected);
  }, 60000);

  it('a broker slow to send the rest of a replay (a reconnect storm) neither ends it early nor lets the auth deadline close it', async () => {
    // A node whose broker traffic can be held back, as a broker busy with a storm would be.
    const gate = await TcpGate.start(brokerAddress());
    gate.openGate();
    const slow = await startTestGateway({
      CROSSBAR_URL: stack.crossbar.url,
      AMQP_URL: amqpUrlVia(gate.port),
      // A resume that waits on the log has subscribed: the deadline must not close it.
      AUTH_DEADLINE_S: '1',
      // Replays read the stream, not the node's memory of what it read live.
      REPLAY_MEMORY_ENTRIES: '0',
      ...REPLAY_ENV,
    });
    try {
      await slow.consuming();
      const mine = stack.account();
      const first = await EventClient.connect('v4', slow.url);
      clientsOfSecond.push(first);
      await first.subscribe(mine.token, mine.accountId, 'call.*.*');
      const position = await positionOfCall(first, mine.accountId, 'slow-before');
      const missed = Array.from({ length: 2000 }, (_, i) => `slow-${String(i).padStart(4, '0')}`);
      for (const callId of missed) await publishCall(mine.accountId, callId);
      // The node has read them all live: the log holds them, and the replay must get them all.
      await first.waitFor('CHANNEL_CREATE', (p) => (p as Json)['Call-ID'] === 'slow-1999', 20000);
      first.close();

      const back = await EventClient.connect('v4', slow.url);
      clientsOfSecond.push(back);
      const ack = back.request(
        'resume',
        { auth_token: mine.token, account_id: mine.accountId, bindings: ['call.*.*'], position },
        40000,
      );
      await back.waitFor('CHANNEL_CREATE', (p) => (p as Json)['Call-ID'] === 'slow-0000', 20000);
      // The node's credit (acks) stops reaching the broker for two seconds: eight times the
      // pause after which a read used to take the log for finished, twice the deadline.
      gate.freeze();
      await new Promise((resolve) => setTimeout(resolve, 8 * LOG_IDLE_MS));
      gate.thaw();
      expect(await ack).toEqual({
        status: 'success',
        data: { subscribed: ['call.*.*'], recovered: true },
      });
      await publishCall(mine.accountId, 'slow-live');
      await back.waitFor('CHANNEL_CREATE', (p) => (p as Json)['Call-ID'] === 'slow-live');
      expect(back.events.filter((e) => e.name === 'CHANNEL_CREATE').map(callIdOf)).toEqual([
        ...missed,
        'slow-live',
      ]);
    } finally {
      await slow.close();
      await gate.stop();
    }
  }, 120000);

  /** Bytes of the smallest call event the next test publishes (every account id is as long). */
  const smallestCallBytes = (): number =>
    Buffer.byteLength(JSON.stringify(callEvent('CHANNEL_CREATE', newAccountId(), 'memory-0').body));

  it.each([
    ['REPLAY_MEMORY_ENTRIES', (): string => '100'],
    // Entries of at least `smallestCallBytes` each: at most 100 fit.
    ['REPLAY_MEMORY_BYTES', (): string => String(100 * smallestCallBytes())],
  ])(
    'a position older than what the node holds in memory (%s: 100 calls): the stream up to it, then memory',
    async (setting, bound) => {
      const small = await startTestGateway({
        CROSSBAR_URL: stack.crossbar.url,
        ...REPLAY_ENV,
        [setting]: bound(),
      });
      try {
        await small.consuming();
        const mine = stack.account();
        const other = stack.account();
        const first = await EventClient.connect('v4', small.url);
        const bystander = await EventClient.connect('v4', small.url);
        clientsOfSecond.push(first, bystander);
        await first.subscribe(mine.token, mine.accountId, 'call.*.*');
        await bystander.subscribe(other.token, other.accountId, 'call.*.*');
        const position = await positionOfCall(first, mine.accountId, 'memory-before');
        first.close();
        // 400 entries: the first 300 or so are gone from the node's memory of 100.
        const missed: string[] = [];
        for (let i = 0; i < 400; i++) {
          if (i % 2 === 0) {
            missed.push(`memory-${i}`);
            await publishCall(mine.accountId, `memory-${i}`);
          } else await publishCall(other.accountId, `other-memory-${i}`);
        }
        await bystander.waitFor(
          'CHANNEL_CREATE',
          (p) => (p as Json)['Call-ID'] === 'other-memory-399',
        );

        const metrics = async (): Promise<Record<string, number>> => {
          const samples = parsePrometheusText(
            await (await fetch(`${small.url}/metrics`)).text(),
          ).samples;
          return {
            read: sampleValue(samples, 'blackhole_replay_read_entries_total'),
            memory: sampleValue(samples, 'blackhole_replay_memory_entries_total'),
            heldEntries: sampleValue(samples, 'blackhole_replay_memory_held_entries'),
            heldBytes: sampleValue(samples, 'blackhole_replay_memory_held_bytes'),
          };
        };
        const before = await metrics();
        // What the node holds now is within its bound.
        expect(before.heldEntries).toBeGreaterThan(0);
        expect(before.heldEntries).toBeLessThanOrEqual(100);
        expect(before.heldBytes).toBeGreaterThanOrEqual(before.heldEntries * smallestCallBytes());
        if (setting === 'REPLAY_MEMORY_BYTES') {
          expect(before.heldBytes).toBeLessThanOrEqual(Number(bound()));
        }
        const back = await EventClient.connect('v4', small.url);
        clientsOfSecond.push(back);
        const ack = await back.request(
          'resume',
          { auth_token: mine.token, account_id: mine.accountId, bindings: ['call.*.*'], position },
          20000,
        );
        expect(ack).toEqual({
          status: 'success',
          data: { subscribed: ['call.*.*'], recovered: true },
        });
        await publishCall(mine.accountId, 'memory-live');
        await back.waitFor('CHANNEL_CREATE', (p) => (p as Json)['Call-ID'] === 'memory-live');
        expect(back.events.filter((e) => e.name === 'CHANNEL_CREATE').map(callIdOf)).toEqual([
          ...missed,
          'memory-live',
        ]);
        // Part from the broker, the newest part from memory, each entry once.
        const after = await metrics();
        const read = after.read - before.read;
        const memory = after.memory - before.memory;
        expect(read).toBeGreaterThanOrEqual(400);
        expect(memory).toBeGreaterThan(0);
        expect(memory).toBeLessThanOrEqual(100);
        expect(bystander.events.some((e) => String(callIdOf(e)).startsWith('memory-'))).toBe(false);
        expect(back.events.some((e) => String(callIdOf(e)).startsWith('other-'))).toBe(false);
      } finally {
        await small.close();
      }
    },
    60000,
  );

  it('Kazoo 4.x: resume replays with `position` on every frame, then continues live', async () => {
    const mine = stack.account();
    const other = stack.account();
    const first = await stack.connectWs();
    expect(
      (await first.subscribe(mine.token, mine.accountId, 'call.CHANNEL_CREATE.*')).status,
    ).toBe('success');
    await publishCall(mine.accountId, 'ws-before');
    const seen = await first.waitForEvent((f) => f.data?.call_id === 'ws-before');
    expect(seen.position).toEqual(expect.any(String));
    first.close();

    for (let i = 0; i < 20; i++) {
      await publishCall(mine.accountId, `ws-gap-${i}`);
      await publishCall(other.accountId, `ws-other-${i}`);
    }

    const back = await KazooWsClient.connect(second.url, '/', {});
    clientsOfSecond.push(back);
    const reply = await back.request(
      {
        action: 'resume',
        auth_token: mine.token,
        data: {
          account_id: mine.accountId,
          bindings: ['call.CHANNEL_CREATE.*'],
          position: seen.position,
        },
      },
      20000,
    );
    expect(reply.status).toBe('success');
    expect(reply.data).toEqual({ subscribed: ['call.CHANNEL_CREATE.*'], recovered: true });
    await publishCall(mine.accountId, 'ws-live');
    await back.waitForEvent((f) => f.data?.call_id === 'ws-live');
    const ids = back.events.map((f: KazooFrame) => f.data?.call_id);
    expect(ids).toEqual([...Array.from({ length: 20 }, (_, i) => `ws-gap-${i}`), 'ws-live']);
    expect(back.events.every((f) => typeof f.position === 'string')).toBe(true);
  }, 60000);

  it('a position older than the window: recovered false, and the bindings are live', async () => {
    const mine = stack.account(undefined, 3600);
    const first = await stack.connect('v4');
    await first.subscribe(mine.token, mine.accountId, 'call.*.*');
    const position = await positionOfCall(first, mine.accountId, 'old');
    first.close();
    // A watcher on the second node: once it has the event, that node has read past `position`.
    const watcher = await connectSecond();
    await watcher.subscribe(mine.token, mine.accountId, 'call.*.*');
    await publishCall(mine.accountId, 'missed-long-ago');
    await watcher.waitFor('CHANNEL_CREATE', (p) => (p as Json)['Call-ID'] === 'missed-long-ago');
    // The second node's clock is past the window: everything after `position` is older.
    clock.set(new Date(Date.now() + 200_000).toISOString());

    const back = await connectSecond();
    const ack = await back.request('resume', {
      auth_token: mine.token,
      account_id: mine.accountId,
      bindings: ['call.*.*'],
      position,
    });
    expect(ack.data.recovered).toBe(false);
    expect(ack.data.subscribed).toEqual(['call.*.*']);
    await publishCall(mine.accountId, 'live-again');
    await back.waitFor('CHANNEL_CREATE', (p) => (p as Json)['Call-ID'] === 'live-again');
    expect(back.events.some((e) => callIdOf(e) === 'missed-long-ago')).toBe(false);
  }, 30000);

  it('a position of another log (or none of ours): recovered false; a non-string: bad_request', async () => {
    const mine = stack.account();
    const client = await connectSecond();
    const foreign = await client.request('resume', {
      auth_token: mine.token,
      account_id: mine.accountId,
      bindings: ['call.*.*'],
      position: 'ffffffffffffffff-0000000000000001',
    });
    expect(foreign).toEqual({
      status: 'success',
      data: { subscribed: ['call.*.*'], recovered: false },
    });
    const wrong = await client.request('resume', {
      auth_token: mine.token,
      account_id: mine.accountId,
      bindings: ['call.*.*'],
      position: 42,
    });
    expect(wrong.status).toBe('error');
    expect(wrong.data.code).toBe('bad_request');
  });
});

describe('replay: REPLAY_WINDOW_S=0', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await Stack.start({ env: { REPLAY_WINDOW_S: '0' } });
  });

  afterAll(() => stack.close());

  it('events carry no position, and resume only subscribes (recovered false)', async () => {
    const mine = stack.account();
    const other = stack.account();
    const client = await stack.connect('v4');
    const bystander = await stack.connect('v4');
    const ack = await client.request('resume', {
      auth_token: mine.token,
      account_id: mine.accountId,
      bindings: ['call.*.*'],
      position: 'whatever',
    });
    expect(ack).toEqual({
      status: 'success',
      data: { subscribed: ['call.*.*'], recovered: false },
    });
    await bystander.subscribe(other.token, other.accountId, 'call.*.*');
    const event = callEvent('CHANNEL_CREATE', mine.accountId, 'plain');
    await stack.publisher.publish('callevt', event.routingKey, event.body);
    const seen = await client.waitFor('CHANNEL_CREATE', (p) => (p as Json)['Call-ID'] === 'plain');
    expect(seen.meta).toBeUndefined();
    const marker = callEvent('CHANNEL_CREATE', other.accountId, 'other-marker');
    await stack.publisher.publish('callevt', marker.routingKey, marker.body);
    await bystander.waitFor('CHANNEL_CREATE', (p) => (p as Json)['Call-ID'] === 'other-marker');
    expect(bystander.events.some((e) => callIdOf(e) === 'plain')).toBe(false);
  });
});
