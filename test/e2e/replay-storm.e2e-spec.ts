import { randomBytes } from 'node:crypto';
import { deleteReplayLog } from '../support/amqp';
import { EventClient, type ReceivedEvent } from '../support/clients';
import { callEvent } from '../support/kazoo-events';
import { parsePrometheusText, sampleValue } from '../support/prometheus-text';
import { Stack } from '../support/stack';
import { startTestGateway, type TestGateway } from '../support/start-app';
import { KazooWsClient, type KazooFrame } from '../support/ws-client';

type Json = Record<string, unknown>;

/** A log of this run only: suites in parallel must not share one. */
const STREAM = `blackhole.replay.storm-${randomBytes(4).toString('hex')}`;
const REPLAY_ENV = { REPLAY_WINDOW_S: '120', REPLAY_STREAM: STREAM };
const METRICS_TOKEN = 'replay-storm-metrics-token-0123';

const ACCOUNTS = 4;
const SOCKET_IO_PER_ACCOUNT = 50;
/** Events each account publishes before the clients' positions: they resume from different ones. */
const BEFORE = 5;
/** Events each account publishes while its clients are away. */
const GAP = 100;
/** Live events the bystander's account publishes while the storm resumes. */
const DURING = 50;

const callIdOf = (event: ReceivedEvent): string => String((event.payload as Json)['Call-ID']);
const positionOf = (event: ReceivedEvent): string | undefined =>
  (event.meta as { position?: string } | undefined)?.position;
const range = (prefix: string, from: number, to: number): string[] =>
  Array.from({ length: to - from }, (_, i) => `${prefix}${from + i}`);

/** Resolves `count` promises `batch` at a time: the node accepts connections at its own pace. */
async function inBatches<T>(count: number, batch: number, make: (i: number) => Promise<T>) {
  const results: T[] = [];
  for (let start = 0; start < count; start += batch) {
    const size = Math.min(batch, count - start);
    results.push(...(await Promise.all(Array.from({ length: size }, (_, i) => make(start + i)))));
  }
  return results;
}

/**
 * A reconnect storm: 200 socket.io clients and 4 Kazoo 4.x ones of 4 accounts lose their
 * connection, miss events, and all resume at once on a node that reads at most 2 replays at
 * once. Each gets exactly its own missed events, in order, then live ones; a bystander of
 * another account keeps getting its live events meanwhile; and the node read the log a few
 * times, not once per client.
 */
describe('replay: a reconnect storm', () => {
  let stack: Stack;
  let stormNode: TestGateway;
  const clients: { close(): void }[] = [];

  beforeAll(async () => {
    stack = await Stack.start({ env: REPLAY_ENV });
    stormNode = await startTestGateway({
      CROSSBAR_URL: stack.crossbar.url,
      ...REPLAY_ENV,
      REPLAY_CONCURRENCY: '2',
      METRICS_TOKEN,
    });
    await stormNode.consuming();
  });

  afterAll(async () => {
    clients.splice(0).forEach((client) => client.close());
    await stormNode.close();
    await stack.close();
    await deleteReplayLog(STREAM);
  });

  const publishCall = (accountId: string, callId: string): Promise<void> => {
    const event = callEvent('CHANNEL_CREATE', accountId, callId);
    return stack.publisher.publish('callevt', event.routingKey, event.body);
  };

  const scrape = async (): Promise<ReturnType<typeof parsePrometheusText>['samples']> => {
    const response = await fetch(`${stormNode.url}/metrics`, {
      headers: { Authorization: `Bearer ${METRICS_TOKEN}` },
    });
    expect(response.status).toBe(200);
    return parsePrometheusText(await response.text()).samples;
  };

  it('every client gets exactly its missed events, the bystander its live ones, from a few reads', async () => {
    const accounts = Array.from({ length: ACCOUNTS }, () => stack.account());
    const bystanderAccount = stack.account();
    const ids = (a: number, prefix: string, from: number, to: number): string[] =>
      range(`${a}-${prefix}-`, from, to);

    // Before: every client connected to the first node, on its account.
    const sioBefore = await inBatches(ACCOUNTS * SOCKET_IO_PER_ACCOUNT, 50, async (i) => {
      const client = await stack.connect('v4');
      const { token, accountId } = accounts[i % ACCOUNTS];
      expect((await client.subscribe(token, accountId, 'call.*.*')).status).toBe('success');
      return client;
    });
    const wsBefore = await Promise.all(
      accounts.map(async ({ token, accountId }) => {
        const client = await stack.connectWs();
        const reply = await client.subscribe(token, accountId, 'call.CHANNEL_CREATE.*');
        expect(reply.status).toBe('success');
        return client;
      }),
    );
    const bystander = await EventClient.connect('v4', stormNode.url);
    clients.push(bystander);
    expect(
      (await bystander.subscribe(bystanderAccount.token, bystanderAccount.accountId, 'call.*.*'))
        .status,
    ).toBe('success');

    for (let i = 0; i < BEFORE; i++) {
      for (let a = 0; a < ACCOUNTS; a++)
        await publishCall(accounts[a].accountId, `${a}-before-${i}`);
    }
    // Client i's position: its account's event `i % BEFORE`, as if it went away right after.
    const sioResumes = await Promise.all(
      sioBefore.map(async (client, i) => {
        const a = i % ACCOUNTS;
        const k = Math.floor(i / ACCOUNTS) % BEFORE;
        const seen = await client.waitFor('CHANNEL_CREATE', (p) => {
          return (p as Json)['Call-ID'] === `${a}-before-${k}`;
        });
        await client.waitFor('CHANNEL_CREATE', (p) => {
          return (p as Json)['Call-ID'] === `${a}-before-${BEFORE - 1}`;
        });
        return { a, k, position: positionOf(seen)! };
      }),
    );
    const wsResumes = await Promise.all(
      wsBefore.map(async (client, a) => {
        const seen = await client.waitForEvent((f) => f.data?.call_id === `${a}-before-0`);
        return { a, position: seen.position as string };
      }),
    );
    expect(sioResumes.every((r) => typeof r.position === 'string')).toBe(true);
    expect(wsResumes.every((r) => typeof r.position === 'string')).toBe(true);
    stack.closeClients();

    // While they are away, interleaved across the accounts.
    for (let i = 0; i < GAP; i++) {
      for (let a = 0; a < ACCOUNTS; a++) await publishCall(accounts[a].accountId, `${a}-gap-${i}`);
    }
    // The bystander's marker comes after every gap event in the log: the storm node has them.
    await publishCall(bystanderAccount.accountId, 'sync');
    await bystander.waitFor('CHANNEL_CREATE', (p) => (p as Json)['Call-ID'] === 'sync', 15000);
    const before = await scrape();

    // The storm: everyone connects to the storm node, then all resume at once.
    const sioBack = await inBatches(sioResumes.length, 50, async () => {
      const client = await EventClient.connect('v4', stormNode.url);
      clients.push(client);
      return client;
    });
    const wsBack = await Promise.all(
      wsResumes.map(async () => {
        const client = await KazooWsClient.connect(stormNode.url, '/', {});
        clients.push(client);
        return client;
      }),
    );
    const during = (async () => {
      for (let i = 0; i < DURING; i++) await publishCall(bystanderAccount.accountId, `during-${i}`);
    })();
    const acks = await Promise.all([
      ...sioBack.map((client, i) => {
        const { token, accountId } = accounts[sioResumes[i].a];
        return client.request(
          'resume',
          {
            auth_token: token,
            account_id: accountId,
            bindings: ['call.*.*'],
            position: sioResumes[i].position,
          },
          60000,
        );
      }),
      ...wsBack.map(async (client, i) => {
        const { token, accountId } = accounts[wsResumes[i].a];
        const reply = await client.request(
          {
            action: 'resume',
            auth_token: token,
            data: {
              account_id: accountId,
              bindings: ['call.CHANNEL_CREATE.*'],
              position: wsResumes[i].position,
            },
          },
          60000,
        );
        return { status: reply.status, data: reply.data };
      }),
    ]);
    await during;
    expect(acks.filter((ack) => ack.status !== 'success' || ack.data?.recovered !== true)).toEqual(
      [],
    );

    // Live again: every account's marker, then the bystander's; each client waits for its own.
    for (let a = 0; a < ACCOUNTS; a++) await publishCall(accounts[a].accountId, `${a}-live`);
    for (let a = 0; a < ACCOUNTS; a++) await publishCall(accounts[a].accountId, `${a}-end`);
    await publishCall(bystanderAccount.accountId, 'bystander-end');
    await Promise.all([
      ...sioBack.map((client, i) => {
        const id = `${sioResumes[i].a}-end`;
        return client.waitFor('CHANNEL_CREATE', (p) => (p as Json)['Call-ID'] === id, 30000);
      }),
      ...wsBack.map((client, i) => {
        const id = `${wsResumes[i].a}-end`;
        return client.waitForEvent((f: KazooFrame) => f.data?.call_id === id, 30000);
      }),
      bystander.waitFor('CHANNEL_CREATE', (p) => (p as Json)['Call-ID'] === 'bystander-end'),
    ]);

    // Exactly its own account's missed events after its position, in order, then live ones:
    // nothing of another account, nothing twice, nothing lost at the seam.
    const wrong: string[] = [];
    sioBack.forEach((client, i) => {
      const { a, k, position } = sioResumes[i];
      const expected = [
        ...ids(a, 'before', k + 1, BEFORE),
        ...ids(a, 'gap', 0, GAP),
        `${a}-live`,
        `${a}-end`,
      ];
      const received = client.events.filter((e) => e.name === 'CHANNEL_CREATE');
      const positions = received.map(positionOf);
      const inOrder =
        positions.every((p) => typeof p === 'string' && p > position) &&
        positions.every((p, j) => j === 0 || p! > positions[j - 1]!);
      if (received.map(callIdOf).join() !== expected.join() || !inOrder) {
        wrong.push(`socket.io client ${i}: ${received.map(callIdOf).join()} vs ${expected.join()}`);
      }
    });
    wsBack.forEach((client, a) => {
      const expected = [
        ...ids(a, 'before', 1, BEFORE),
        ...ids(a, 'gap', 0, GAP),
        `${a}-live`,
        `${a}-end`,
      ];
      if (client.events.map((f) => f.data?.call_id).join() !== expected.join()) {
        wrong.push(`Kazoo 4.x client ${a}: ${client.events.map((f) => f.data?.call_id).join()}`);
      }
    });
    expect(wrong).toEqual([]);

    // Live delivery went on during the storm: the bystander has every live event, in order,
    // and none of the storm's accounts.
    expect(bystander.events.filter((e) => e.name === 'CHANNEL_CREATE').map(callIdOf)).toEqual([
      'sync',
      ...range('during-', 0, DURING),
      'bystander-end',
    ]);

    // The storm's cost: a few reads of the log, not one per client.
    const after = await scrape();
    const delta = (name: string, labels?: Record<string, string>): number =>
      sampleValue(after, name, labels) - sampleValue(before, name, labels);
    const resumes = sioBack.length + wsBack.length;
    const reads = delta('blackhole_replay_reads_total');
    const entriesRead = delta('blackhole_replay_read_entries_total');
    const missedPerClient = ACCOUNTS * (BEFORE + GAP);
    expect(delta('blackhole_replays_total', { outcome: 'recovered' })).toBe(resumes);
    expect(reads).toBeGreaterThanOrEqual(1);
    expect(reads).toBeLessThanOrEqual(resumes / 4);
    expect(entriesRead).toBeLessThanOrEqual((resumes / 4) * (missedPerClient + DURING + 10));
    // The node read the whole gap live: every replayed entry came from its memory, none from
    // the broker.
    expect(delta('blackhole_replay_memory_entries_total')).toBe(entriesRead);
    process.stdout.write(
      `storm: ${resumes} resumes, ${reads} reads of the log, ${entriesRead} entries read ` +
        `(one read per client would be about ${resumes * missedPerClient})\n`,
    );
  }, 180000);
});
