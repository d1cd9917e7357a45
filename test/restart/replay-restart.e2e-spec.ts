import { KazooPublisher } from '../support/amqp';
import { BrokerNode } from '../support/broker-node';
import { EventClient, type ReceivedEvent } from '../support/clients';
import { FakeCrossbar } from '../support/fake-crossbar';
import { callEvent } from '../support/kazoo-events';
import { startTestGateway, type TestGateway } from '../support/start-app';
import { waitUntil } from '../support/wait';

// Restarts RabbitMQ: a node of its own, so suites on the shared broker are not disturbed.
jest.setTimeout(120000);

type Json = Record<string, unknown>;
const callIdOf = (event: ReceivedEvent): unknown => (event.payload as Json)['Call-ID'];

describe('replay log across a RabbitMQ restart', () => {
  let node: BrokerNode;
  let crossbar: FakeCrossbar;
  let gateway: TestGateway;
  const clients: EventClient[] = [];

  beforeAll(async () => {
    [node, crossbar] = await Promise.all([BrokerNode.start(), FakeCrossbar.start()]);
    gateway = await startTestGateway({
      CROSSBAR_URL: crossbar.url,
      AMQP_URL: node.url(),
      AMQP_RECONNECT_S: '1',
      REPLAY_WINDOW_S: '120',
    });
    await gateway.consuming();
  });

  afterAll(async () => {
    clients.forEach((client) => client.close());
    await gateway?.close();
    await crossbar?.stop();
    await node?.stop();
  });

  it('keeps the window: a client resumes after the restart and gets what it missed before it', async () => {
    const account = crossbar.addAccount();
    const other = crossbar.addAccount();
    const token = crossbar.issueToken(account);
    const publisher = await KazooPublisher.connect(node.url());
    const publish = async (accountId: string, callId: string): Promise<void> => {
      const event = callEvent('CHANNEL_CREATE', accountId, callId);
      await publisher.publish('callevt', event.routingKey, event.body);
    };
    const first = await EventClient.connect('v4', gateway.url);
    clients.push(first);
    await first.request('subscribe', {
      auth_token: token,
      account_id: account,
      binding: 'call.*.*',
    });
    await publish(account, 'seen');
    const seen = await first.waitFor('CHANNEL_CREATE', (p) => (p as Json)['Call-ID'] === 'seen');
    const position = (seen.meta as { position: string }).position;
    first.close();
    await publish(account, 'missed-1');
    await publish(other, 'not-mine');
    await publish(account, 'missed-2');
    await publisher.close();

    await node.ctl('stop_app');
    await node.ctl('start_app');
    await node.ctl('await_startup');
    await waitUntil(
      'the gateway to consume again',
      async () => ((await gateway.health()).status === 200 ? true : undefined),
      30000,
      250,
    );

    const back = await EventClient.connect('v4', gateway.url);
    clients.push(back);
    const ack = await back.request(
      'resume',
      { auth_token: token, account_id: account, bindings: ['call.*.*'], position },
      20000,
    );
    expect(ack.data.recovered).toBe(true);
    const again = await KazooPublisher.connect(node.url());
    try {
      const marker = callEvent('CHANNEL_CREATE', account, 'live-after-restart');
      await again.publish('callevt', marker.routingKey, marker.body);
    } finally {
      await again.close();
    }
    await back.waitFor('CHANNEL_CREATE', (p) => (p as Json)['Call-ID'] === 'live-after-restart');
    expect(back.events.filter((e) => e.name === 'CHANNEL_CREATE').map(callIdOf)).toEqual([
      'missed-1',
      'missed-2',
      'live-after-restart',
    ]);
  });
});
