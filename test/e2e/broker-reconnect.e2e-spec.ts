import { KazooPublisher } from '../support/amqp';
import { BrokerNode } from '../support/broker-node';
import { EventClient } from '../support/clients';
import { FakeCrossbar } from '../support/fake-crossbar';
import { callEvent } from '../support/kazoo-events';
import { startTestGateway, type TestGateway } from '../support/start-app';
import { TcpGate } from '../support/tcp-gate';
import { waitUntil } from '../support/wait';

// Cuts the gateway's broker connection: runs on a RabbitMQ node of its own.
jest.setTimeout(60000);

type Json = Record<string, unknown>;

describe('a broker connection that drops and comes back at once', () => {
  let node: BrokerNode;
  let crossbar: FakeCrossbar;
  let gate: TcpGate;
  let gateway: TestGateway;
  let publisher: KazooPublisher;
  const clients: EventClient[] = [];

  beforeAll(async () => {
    [node, crossbar] = await Promise.all([BrokerNode.start(), FakeCrossbar.start()]);
    gate = await TcpGate.start({ host: '127.0.0.1', port: node.port });
    gate.openGate();
    publisher = await KazooPublisher.connect(node.url());
    gateway = await startTestGateway({
      CROSSBAR_URL: crossbar.url,
      AMQP_URL: `amqp://guest:guest@127.0.0.1:${gate.port}`,
      // A long cap: a fixed interval would lose 10 s of events; the first retry comes after
      // 100 ms whatever the cap is.
      AMQP_RECONNECT_S: '10',
    });
    await gateway.consuming();
  });

  afterAll(async () => {
    clients.forEach((client) => client.close());
    await gateway?.close();
    await gate?.stop();
    await publisher?.close();
    await crossbar?.stop();
    await node?.stop();
  });

  async function tenant(): Promise<{ accountId: string; client: EventClient }> {
    const accountId = crossbar.addAccount();
    const client = await EventClient.connect('v4', gateway.url);
    clients.push(client);
    const ack = await client.subscribe(
      crossbar.issueToken(accountId),
      accountId,
      'call.CHANNEL_CREATE.*',
    );
    expect(ack.status).toBe('success');
    return { accountId, client };
  }

  it('reconnects at once rather than after the retry cap, and the same clients receive again', async () => {
    const a = await tenant();
    const b = await tenant();
    const publishedAt: number[] = [];
    const received = (): Set<number> =>
      new Set(
        a.client
          .named('CHANNEL_CREATE')
          .map((p) => Number(String((p as Json)['Call-ID']).replace('seq-', ''))),
      );

    let cutAt = -1;
    let cutSeq = -1;
    let publishing = true;
    // Kazoo keeps publishing through the outage: one event every 20 ms.
    const stream = (async () => {
      for (let seq = 0; publishing; seq++) {
        const event = callEvent('CHANNEL_CREATE', a.accountId, `seq-${seq}`);
        publishedAt[seq] = Date.now();
        await publisher.publish('callevt', event.routingKey, event.body);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    try {
      await waitUntil('events to flow', () => (received().size >= 10 ? true : undefined));
      cutSeq = publishedAt.length;
      cutAt = Date.now();
      gate.closeGate();
      gate.openGate();
      await waitUntil(
        'an event published after the cut',
        () => ([...received()].some((seq) => seq > cutSeq) ? true : undefined),
        10000,
        20,
      );
    } finally {
      publishing = false;
      await stream;
    }

    const after = [...received()].filter((seq) => seq >= cutSeq).sort((x, y) => x - y);
    const firstBack = after[0];
    const lostMs = publishedAt[firstBack] - cutAt;
    const lost = firstBack - cutSeq;
    process.stdout.write(
      `connection cut: events published during the first ${lostMs} ms were lost (${lost} events at 50/s)\n`,
    );
    // Far below the 10 s a fixed reconnect interval would cost, whatever the machine's load.
    expect(lostMs).toBeLessThan(5000);
    expect(a.client.isDisconnected).toBe(false);

    // Isolation holds after the replay: b gets its own marker, published last, and nothing else.
    const marker = callEvent('CHANNEL_CREATE', b.accountId, 'b-marker');
    await publisher.publish('callevt', marker.routingKey, marker.body);
    await b.client.waitFor('CHANNEL_CREATE', (p) => (p as Json)['Call-ID'] === 'b-marker');
    expect(b.client.named('CHANNEL_CREATE')).toEqual([marker.body]);
  });

  it('another node of the same process shutting down leaves this node connected', async () => {
    // A second application in this process (tests, or an embedder's): golevelup's module used
    // to close every connection of the process when any application shut down.
    const other = await startTestGateway({ CROSSBAR_URL: crossbar.url, AMQP_URL: node.url() });
    await other.consuming();
    await other.close();

    const a = await tenant();
    const b = await tenant();
    const mine = callEvent('CHANNEL_CREATE', a.accountId, 'after-other-closed');
    await publisher.publish('callevt', mine.routingKey, mine.body);
    await a.client.waitFor(
      'CHANNEL_CREATE',
      (p) => (p as Json)['Call-ID'] === 'after-other-closed',
    );
    expect((await gateway.health()).status).toBe(200);
    const marker = callEvent('CHANNEL_CREATE', b.accountId, 'b-after-other-closed');
    await publisher.publish('callevt', marker.routingKey, marker.body);
    await b.client.waitFor(
      'CHANNEL_CREATE',
      (p) => (p as Json)['Call-ID'] === 'b-after-other-closed',
    );
    expect(b.client.named('CHANNEL_CREATE')).toEqual([marker.body]);
  });
});
