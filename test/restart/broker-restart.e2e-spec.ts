import { KazooPublisher } from '../support/amqp';
import { BrokerNode } from '../support/broker-node';
import { EventClient } from '../support/clients';
import { FakeCrossbar } from '../support/fake-crossbar';
import { callEvent } from '../support/kazoo-events';
import { startTestGateway, type TestGateway } from '../support/start-app';
import { waitUntil } from '../support/wait';

// Restarts RabbitMQ: a node of its own, so suites on the shared broker are not disturbed.
jest.setTimeout(120000);

describe('RabbitMQ restart', () => {
  let node: BrokerNode;
  let crossbar: FakeCrossbar;
  let gateway: TestGateway;
  let client: EventClient;
  let otherClient: EventClient;

  beforeAll(async () => {
    [node, crossbar] = await Promise.all([BrokerNode.start(), FakeCrossbar.start()]);
    gateway = await startTestGateway({
      CROSSBAR_URL: crossbar.url,
      AMQP_URL: node.url(),
      AMQP_RECONNECT_S: '1',
    });
    await gateway.consuming();
  });

  afterAll(async () => {
    client?.close();
    otherClient?.close();
    await gateway?.close();
    await crossbar?.stop();
    await node?.stop();
  });

  it('re-binds by itself: a socket that stayed connected receives new events within 10 s without re-subscribing', async () => {
    const account = crossbar.addAccount();
    const other = crossbar.addAccount();
    client = await EventClient.connect('v4', gateway.url);
    otherClient = await EventClient.connect('v2', gateway.url);
    for (const [socket, accountId] of [
      [client, account],
      [otherClient, other],
    ] as const) {
      const ack = await socket.request('subscribe', {
        auth_token: crossbar.issueToken(accountId),
        account_id: accountId,
        binding: 'call.CHANNEL_CREATE.*',
      });
      expect(ack.status).toBe('success');
    }

    await node.ctl('stop_app');
    await node.ctl('start_app');
    await node.ctl('await_startup');
    const restartedAt = Date.now();

    // Publish repeatedly until the gateway has re-bound; the first delivery marks recovery.
    const publisher = await KazooPublisher.connect(node.url());
    try {
      let attempt = 0;
      await waitUntil(
        'an event after the restart',
        async () => {
          const event = callEvent('CHANNEL_CREATE', account, `after-restart-${attempt++}`);
          await publisher.publish('callevt', event.routingKey, event.body);
          return client.named('CHANNEL_CREATE').length > 0 ? true : undefined;
        },
        10000,
        250,
      );
      const recoveryMs = Date.now() - restartedAt;
      expect(recoveryMs).toBeLessThan(10000);
      process.stdout.write(`recovered ${recoveryMs} ms after the broker was back\n`);

      // Tenant isolation still holds after the replay: the other account saw nothing of it.
      const marker = callEvent('CHANNEL_CREATE', other, 'other-marker');
      await publisher.publish('callevt', marker.routingKey, marker.body);
      await otherClient.waitFor('CHANNEL_CREATE');
      expect(otherClient.named('CHANNEL_CREATE')).toEqual([marker.body]);
      expect(client.isDisconnected).toBe(false);
      expect((await gateway.health()).status).toBe(200);
    } finally {
      await publisher.close();
    }
  });
});
