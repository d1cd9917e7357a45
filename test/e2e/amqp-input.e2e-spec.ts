import { gzipSync } from 'node:zlib';
import { KazooPublisher } from '../support/amqp';
import { EventClient } from '../support/clients';
import { FakeCrossbar } from '../support/fake-crossbar';
import { callEvent } from '../support/kazoo-events';
import { startTestGateway, type TestGateway } from '../support/start-app';

const CALLEVT = 'callevt';

interface Counters {
  received: number;
  delivered: number;
  dropped_without_account: number;
  malformed: number;
}

describe('what Kazoo publishes, good and bad', () => {
  let crossbar: FakeCrossbar;
  let gateway: TestGateway;
  let publisher: KazooPublisher;
  let client: EventClient;
  let bystander: EventClient;
  let account: string;
  let other: string;

  const counters = async (): Promise<Counters> =>
    ((await gateway.health()).body as unknown as { events: Counters }).events;

  beforeAll(async () => {
    crossbar = await FakeCrossbar.start();
    account = crossbar.addAccount();
    other = crossbar.addAccount();
    gateway = await startTestGateway({ CROSSBAR_URL: crossbar.url });
    publisher = await KazooPublisher.connect();
    await gateway.consuming();
    client = await EventClient.connect('v4', gateway.url);
    bystander = await EventClient.connect('v4', gateway.url);
    for (const [socket, accountId] of [
      [client, account],
      [bystander, other],
    ] as const) {
      await socket.request('subscribe', {
        auth_token: crossbar.issueToken(accountId),
        account_id: accountId,
        binding: 'call.*.*',
      });
    }
  });

  afterAll(async () => {
    client.close();
    bystander.close();
    await publisher.close();
    await gateway.close();
    await crossbar.stop();
  });

  it('drops unreadable messages without requeueing them, and keeps delivering', async () => {
    const before = await counters();
    await publisher.publishRaw(
      CALLEVT,
      'call.CHANNEL_CREATE.bad1',
      Buffer.from('{"Event-Name": "CHANN'),
    );
    await publisher.publishRaw(CALLEVT, 'call.CHANNEL_CREATE.bad2', Buffer.from('[1, 2, 3]'));
    await publisher.publishRaw(CALLEVT, 'call.CHANNEL_CREATE.bad3', Buffer.from('not gzip'), {
      contentEncoding: 'gzip',
    });
    const good = callEvent('CHANNEL_CREATE', account, 'after-garbage');
    await publisher.publish(CALLEVT, good.routingKey, good.body);
    expect((await client.waitFor('CHANNEL_CREATE')).payload).toEqual(good.body);

    const after = await counters();
    expect(after.malformed - before.malformed).toBe(3);
    // A requeued message would come back and be counted again; one more round trip shows it did not.
    const next = callEvent('CHANNEL_ANSWER', account, 'second-round');
    await publisher.publish(CALLEVT, next.routingKey, next.body);
    await client.waitFor('CHANNEL_ANSWER');
    expect((await counters()).malformed - before.malformed).toBe(3);
    expect((await gateway.health()).status).toBe(200);
  });

  it('reads gzipped messages', async () => {
    const event = callEvent('CHANNEL_DESTROY', account, 'gzipped');
    await publisher.publishRaw(CALLEVT, event.routingKey, gzipSync(JSON.stringify(event.body)), {
      contentEncoding: 'gzip',
    });
    expect((await client.waitFor('CHANNEL_DESTROY')).payload).toEqual(event.body);
  });

  it('drops and counts events whose account cannot be determined, never broadcasting them', async () => {
    const before = await counters();
    const orphan = callEvent('CHANNEL_CREATE', account, 'orphan');
    delete (orphan.body['Custom-Channel-Vars'] as Record<string, unknown>)['Account-ID'];
    orphan.body['Event-Name'] = 'CHANNEL_HOLD';
    await publisher.publish(CALLEVT, 'call.CHANNEL_HOLD.orphan', orphan.body);
    // Each client waits for a marker of its own account, published after the orphan.
    for (const [socket, accountId] of [
      [client, account],
      [bystander, other],
    ] as const) {
      const marker = callEvent('CHANNEL_ANSWER', accountId, `orphan-marker-${accountId}`);
      await publisher.publish(CALLEVT, marker.routingKey, marker.body);
      await socket.waitFor(
        'CHANNEL_ANSWER',
        (p) => (p as Record<string, unknown>)['Call-ID'] === `orphan-marker-${accountId}`,
      );
    }

    expect((await counters()).dropped_without_account - before.dropped_without_account).toBe(1);
    expect(client.named('CHANNEL_HOLD')).toEqual([]);
    expect(bystander.named('CHANNEL_HOLD')).toEqual([]);
  });

  it('uses the top-level Account-ID when the channel vars have none, still per account', async () => {
    const event = callEvent('CHANNEL_ANSWER', account, 'top-level');
    delete (event.body['Custom-Channel-Vars'] as Record<string, unknown>)['Account-ID'];
    event.body['Account-ID'] = account;
    await publisher.publish(CALLEVT, event.routingKey, event.body);
    await client.waitFor(
      'CHANNEL_ANSWER',
      (p) => (p as Record<string, unknown>)['Call-ID'] === 'top-level',
    );
    const marker = callEvent('CHANNEL_ANSWER', other, 'top-level-marker');
    await publisher.publish(CALLEVT, marker.routingKey, marker.body);
    await bystander.waitFor(
      'CHANNEL_ANSWER',
      (p) => (p as Record<string, unknown>)['Call-ID'] === 'top-level-marker',
    );
    expect(
      bystander.named('CHANNEL_ANSWER').map((p) => (p as Record<string, unknown>)['Call-ID']),
    ).not.toContain('top-level');
  });
});
