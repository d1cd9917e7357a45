import { KazooPublisher, amqpUrlVia, brokerAddress, brokerBindings } from '../support/amqp';
import { EventClient } from '../support/clients';
import { FakeCrossbar } from '../support/fake-crossbar';
import { callEvent } from '../support/kazoo-events';
import { startTestGateway, type TestGateway } from '../support/start-app';
import { TcpGate } from '../support/tcp-gate';
import { waitUntil } from '../support/wait';

describe('a gateway started while RabbitMQ is unreachable', () => {
  let crossbar: FakeCrossbar;
  let gate: TcpGate;
  let gateway: TestGateway;
  let publisher: KazooPublisher;
  let client: EventClient | undefined;

  beforeAll(async () => {
    crossbar = await FakeCrossbar.start();
    gate = await TcpGate.start(brokerAddress());
    publisher = await KazooPublisher.connect();
    gateway = await startTestGateway({
      CROSSBAR_URL: crossbar.url,
      AMQP_URL: amqpUrlVia(gate.port),
    });
  });

  afterAll(async () => {
    client?.close();
    await gateway.close();
    await gate.stop();
    await publisher.close();
    await crossbar.stop();
  });

  it('serves HTTP with a 503 health, accepts subscriptions, and starts consuming once the broker appears', async () => {
    const down = await gateway.health();
    expect(down.status).toBe(503);
    expect(down.body.status).toBe('unavailable');
    expect(down.body.amqp.consuming).toBe(false);

    const account = crossbar.addAccount();
    const other = crossbar.addAccount();
    client = await EventClient.connect('v4', gateway.url);
    const ack = await client.request('subscribe', {
      auth_token: crossbar.issueToken(account),
      account_id: account,
      binding: 'call.CHANNEL_CREATE.*',
    });
    expect(ack.status).toBe('success');

    gate.openGate();
    await waitUntil(
      'health to turn 200',
      async () => ((await gateway.health()).status === 200 ? true : undefined),
      15000,
    );
    // The binding recorded while the broker was away is on the broker now.
    await waitUntil('the binding to be replayed', async () =>
      (await brokerBindings(gateway.queuePrefix)).some(
        (b) => b.routingKey === 'call.CHANNEL_CREATE.*',
      )
        ? true
        : undefined,
    );

    const foreign = callEvent('CHANNEL_CREATE', other, 'late-foreign');
    const own = callEvent('CHANNEL_CREATE', account, 'late-own');
    await publisher.publish('callevt', foreign.routingKey, foreign.body);
    await publisher.publish('callevt', own.routingKey, own.body);
    await client.waitFor(
      'CHANNEL_CREATE',
      (p) => (p as Record<string, unknown>)['Call-ID'] === 'late-own',
    );
    expect(client.named('CHANNEL_CREATE')).toEqual([own.body]);
  });

  it('turns health 503 when the connection drops and recovers with its bindings', async () => {
    gate.closeGate();
    await waitUntil(
      'health to turn 503',
      async () => ((await gateway.health()).status === 503 ? true : undefined),
      15000,
    );
    gate.openGate();
    await waitUntil(
      'health to turn 200 again',
      async () => ((await gateway.health()).status === 200 ? true : undefined),
      15000,
    );
    await waitUntil('the binding to be replayed again', async () =>
      (await brokerBindings(gateway.queuePrefix)).some(
        (b) => b.routingKey === 'call.CHANNEL_CREATE.*',
      )
        ? true
        : undefined,
    );
    const account = (
      client!.named('CHANNEL_CREATE')[0] as { 'Custom-Channel-Vars': { 'Account-ID': string } }
    )['Custom-Channel-Vars']['Account-ID'];
    const again = callEvent('CHANNEL_CREATE', account, 'after-drop');
    await publisher.publish('callevt', again.routingKey, again.body);
    await client!.waitFor(
      'CHANNEL_CREATE',
      (p) => (p as Record<string, unknown>)['Call-ID'] === 'after-drop',
    );
  });
});
