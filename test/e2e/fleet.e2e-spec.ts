import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { connect, type ChannelModel } from 'amqplib';
import { AMQP_URL, KazooPublisher } from '../support/amqp';
import { EventClient } from '../support/clients';
import { io } from 'socket.io-client';
import { FailoverProxy } from '../support/failover-proxy';
import { FakeCrossbar } from '../support/fake-crossbar';
import { GatewayBuild, GatewayProcess } from '../support/gateway-process';
import { callEvent } from '../support/kazoo-events';
import { waitUntil } from '../support/wait';
import { KazooWsClient } from '../support/ws-client';

jest.setTimeout(120_000);

const LISTING_WINDOW_MS = 600;

type Json = Record<string, unknown>;

/** A node of the fleet: one gateway process with the listing window the suite waits on. */
async function startNode(build: GatewayBuild, crossbarUrl: string): Promise<GatewayProcess> {
  return GatewayProcess.start(build, {
    CROSSBAR_URL: crossbarUrl,
    FLEET_LISTING_TIMEOUT_MS: String(LISTING_WINDOW_MS),
  });
}

/** GET in Crossbar's way: the token in `X-Auth-Token`, a JSON envelope back. */
function get(
  node: GatewayProcess,
  path: string,
  token?: string,
): Promise<{ status: number; body: Json }> {
  return fetch(`${node.url}${path}`, {
    headers: token === undefined ? {} : { 'X-Auth-Token': token },
  }).then(async (response) => ({ status: response.status, body: (await response.json()) as Json }));
}

const sessionIdsOf = (body: Json): string[] =>
  (body.data as Json[]).map((socket) => socket.websocket_session_id as string).sort();

describe('a fleet of two gateway processes on one RabbitMQ', () => {
  let crossbar: FakeCrossbar;
  let publisher: KazooPublisher;
  let broker: ChannelModel;
  let build: GatewayBuild;
  let first: GatewayProcess;
  let second: GatewayProcess;
  const clients: { close(): void }[] = [];

  let accountA: string;
  let tokenA: string;
  let accountB: string;
  let tokenB: string;
  let onFirst: EventClient;
  let onSecond: KazooWsClient;
  let otherAccount: EventClient;

  beforeAll(async () => {
    build = await GatewayBuild.make('fleet');
    crossbar = await FakeCrossbar.start();
    publisher = await KazooPublisher.connect();
    broker = await connect(AMQP_URL);
    [first, second] = await Promise.all([
      startNode(build, crossbar.url),
      startNode(build, crossbar.url),
    ]);

    accountA = crossbar.addAccount();
    tokenA = crossbar.issueToken(accountA);
    accountB = crossbar.addAccount();
    tokenB = crossbar.issueToken(accountB);

    onFirst = await EventClient.connect('v4', first.url);
    onSecond = await KazooWsClient.connect(second.url, '/');
    otherAccount = await EventClient.connect('v4', second.url);
    clients.push(onFirst, onSecond, otherAccount);
    expect((await onFirst.subscribe(tokenA, accountA, 'call.CHANNEL_CREATE.*')).status).toBe(
      'success',
    );
    expect((await onSecond.subscribe(tokenA, accountA, 'call.CHANNEL_CREATE.*')).status).toBe(
      'success',
    );
    expect((await otherAccount.subscribe(tokenB, accountB, 'call.CHANNEL_CREATE.*')).status).toBe(
      'success',
    );
  });

  afterAll(async () => {
    clients.forEach((client) => client.close());
    await Promise.all([first?.stop(), second?.stop()]);
    await publisher?.close();
    await broker?.close().catch(() => undefined);
    await crossbar?.stop();
    await build?.remove();
  });

  it("delivers an account's events to its clients on both nodes, and never to another account's", async () => {
    const call = callEvent('CHANNEL_CREATE', accountA, 'fleet-call-a');
    await publisher.publish('callevt', call.routingKey, call.body);
    await onFirst.waitFor('CHANNEL_CREATE', (p) => (p as Json)['Call-ID'] === 'fleet-call-a');
    await onSecond.waitForEvent((f) => f.data?.call_id === 'fleet-call-a');

    const marker = callEvent('CHANNEL_CREATE', accountB, 'fleet-marker-b');
    await publisher.publish('callevt', marker.routingKey, marker.body);
    await otherAccount.waitFor(
      'CHANNEL_CREATE',
      (p) => (p as Json)['Call-ID'] === 'fleet-marker-b',
    );
    expect(otherAccount.named('CHANNEL_CREATE')).toEqual([
      expect.objectContaining({ 'Call-ID': 'fleet-marker-b' }),
    ]);
  });

  it("lists the account's sockets of both nodes from either node, without tokens or host names", async () => {
    const fromFirst = await get(first, `/v2/accounts/${accountA}/websockets`, tokenA);
    const fromSecond = await get(second, `/v2/accounts/${accountA}/websockets`, tokenA);

    expect(fromFirst.status).toBe(200);
    expect(fromFirst.body).toMatchObject({ status: 'success', auth_token: '' });
    const sockets = fromFirst.body.data as Json[];
    expect(sockets).toHaveLength(2);
    expect(new Set(sockets.map((socket) => socket.destination)).size).toBe(2);
    expect(sockets.map((socket) => socket.protocol).sort()).toEqual(['kazoo-ws', 'socket.io']);
    for (const socket of sockets) {
      expect(socket).toMatchObject({
        bindings: ['call.CHANNEL_CREATE.*'],
        websocket_session_id: expect.stringMatching(/^[0-9a-f]{32}$/) as unknown,
        timestamp: expect.any(Number) as unknown,
        source: '127.0.0.1',
      });
    }
    expect(sessionIdsOf(fromSecond.body)).toEqual(sessionIdsOf(fromFirst.body));
    const text = JSON.stringify([fromFirst.body, fromSecond.body]);
    for (const secret of [tokenA, tokenB, hostname(), accountB]) expect(text).not.toContain(secret);

    const [socketId] = sessionIdsOf(fromFirst.body);
    const one = await get(second, `/v2/accounts/${accountA}/websockets/${socketId}`, tokenA);
    expect(one.status).toBe(200);
    expect(one.body.data).toMatchObject({ websocket_session_id: socketId });
  });

  it("keeps each account to its own sockets: 401 without a token, 403 on another's account, 404 for another's socket", async () => {
    const listing = await get(first, `/v2/accounts/${accountA}/websockets`, tokenA);
    const [socketOfA] = sessionIdsOf(listing.body);

    expect((await get(first, `/v2/accounts/${accountA}/websockets`)).status).toBe(401);
    expect((await get(first, `/v2/accounts/${accountA}/websockets`, 'not-a-token')).status).toBe(
      401,
    );
    const forbidden = await get(first, `/v2/accounts/${accountA}/websockets`, tokenB);
    expect(forbidden.status).toBe(403);
    expect(forbidden.body).toMatchObject({ status: 'error', error: '403' });
    expect(
      (await get(first, `/v2/accounts/${accountA}/websockets/${socketOfA}`, tokenB)).status,
    ).toBe(403);
    const foreign = await get(first, `/v2/accounts/${accountB}/websockets/${socketOfA}`, tokenB);
    expect(foreign.status).toBe(404);
    expect(foreign.body).toMatchObject({ status: 'error', error: '404' });
    const unknown = await get(
      first,
      `/v2/accounts/${accountA}/websockets/${'f'.repeat(32)}`,
      tokenA,
    );
    expect(unknown.status).toBe(404);

    const ownOfB = await get(second, `/v2/accounts/${accountB}/websockets`, tokenB);
    expect(ownOfB.body.data).toHaveLength(1);
    expect(sessionIdsOf(ownOfB.body)).not.toContain(socketOfA);
  });

  it("answers Kazoo's Crossbar: a websockets.get on sysconf gets one get_resp from each node", async () => {
    const channel = await broker.createChannel();
    const { queue } = await channel.assertQueue('', { exclusive: true, autoDelete: true });
    await channel.assertExchange('targeted', 'direct', { durable: false, autoDelete: false });
    await channel.bindQueue(queue, 'targeted', queue);
    const replies: Json[] = [];
    await channel.consume(
      queue,
      (message) => message && replies.push(JSON.parse(message.content.toString()) as Json),
      {
        noAck: true,
      },
    );
    const msgId = randomBytes(8).toString('hex');
    // As cb_websockets:websockets_req/2 with kapi_websockets:publish_get_req/1.
    const request = {
      'Event-Category': 'websockets',
      'Event-Name': 'get_req',
      'Msg-ID': msgId,
      'Server-ID': queue,
      'Account-ID': accountA,
      'Auth-Account-ID': accountA,
      'App-Name': 'crossbar',
      'App-Version': '4.3.0',
      Node: 'crossbar@kazoo',
    };
    channel.publish('sysconf', 'websockets.get', Buffer.from(JSON.stringify(request)), {
      contentType: 'application/json',
    });
    // Other gateways on the shared broker (other suites') answer too; ours are told by node id.
    const nodeIds = await Promise.all(
      [first, second].map(async (node) => (await get(node, '/v2/websockets')).body.node as string),
    );
    const ours = await waitUntil('a get_resp from both nodes', () => {
      const answers = replies.filter((reply) => nodeIds.includes(reply.Node as string));
      return new Set(answers.map((reply) => reply.Node)).size === 2 ? answers : undefined;
    });
    await channel.close();

    expect(ours).toHaveLength(2);
    for (const reply of ours) {
      expect(reply).toMatchObject({
        'Event-Category': 'websockets',
        'Event-Name': 'get_resp',
        'Msg-ID': msgId,
        'App-Name': 'blackhole',
      });
      expect(reply.Data).toEqual([
        expect.objectContaining({ bindings: ['call.CHANNEL_CREATE.*'] }),
      ]);
      expect(Object.keys((reply.Data as Json[])[0])).not.toContain('account_ids');
    }
    // No other node holds a socket of this account.
    for (const reply of replies.filter((r) => !nodeIds.includes(r.Node as string))) {
      expect(reply.Data).toEqual([]);
    }
  });

  it('moves the clients of a node that is stopped to the other, where they receive again once subscribed', async () => {
    // A client behind a balancer, as a CTI app is: it reconnects by itself and subscribes again
    // on every connect, and the balancer sends it to the node that is still there.
    const balancer = await FailoverProxy.start([first.url, second.url]);
    const received: string[] = [];
    const connects: string[] = [];
    const roaming = io(balancer.url, {
      transports: ['websocket'],
      forceNew: true,
      reconnectionDelay: 100,
      reconnectionDelayMax: 500,
    });
    clients.push({ close: () => roaming.close() });
    roaming.on('connect', () => {
      roaming.emit(
        'subscribe',
        { auth_token: tokenA, account_id: accountA, binding: 'call.CHANNEL_CREATE.*' },
        (ack: { status: string }) => connects.push(ack.status),
      );
    });
    roaming.on('CHANNEL_CREATE', (event: Json) => received.push(String(event['Call-ID'])));
    await waitUntil('the roaming client to subscribe', () =>
      connects.length === 1 ? true : undefined,
    );
    const listed = await get(first, `/v2/accounts/${accountA}/websockets`, tokenA);
    expect(listed.body.data).toHaveLength(3);

    await first.stop();
    await waitUntil('the client of the stopped node to see the disconnect', () =>
      onFirst.isDisconnected ? true : undefined,
    );
    // Back through the balancer, on the other node, and subscribed again by itself.
    await waitUntil('the roaming client to subscribe on the other node', () =>
      connects.length === 2 ? true : undefined,
    );

    const moved = await EventClient.connect('v4', second.url);
    clients.push(moved);
    expect((await moved.subscribe(tokenA, accountA, 'call.CHANNEL_CREATE.*')).status).toBe(
      'success',
    );
    const call = callEvent('CHANNEL_CREATE', accountA, 'fleet-after-failover');
    await publisher.publish('callevt', call.routingKey, call.body);
    await moved.waitFor('CHANNEL_CREATE', (p) => (p as Json)['Call-ID'] === 'fleet-after-failover');
    await onSecond.waitForEvent((f) => f.data?.call_id === 'fleet-after-failover');
    await waitUntil('the roaming client to receive on the other node', () =>
      received.includes('fleet-after-failover') ? true : undefined,
    );
    expect(connects).toEqual(['success', 'success']);

    const marker = callEvent('CHANNEL_CREATE', accountB, 'fleet-marker-b-2');
    await publisher.publish('callevt', marker.routingKey, marker.body);
    await otherAccount.waitFor(
      'CHANNEL_CREATE',
      (p) => (p as Json)['Call-ID'] === 'fleet-marker-b-2',
    );
    expect(otherAccount.named('CHANNEL_CREATE').map((p) => (p as Json)['Call-ID'])).toEqual([
      'fleet-marker-b',
      'fleet-marker-b-2',
    ]);

    const listing = await get(second, `/v2/accounts/${accountA}/websockets`, tokenA);
    expect(listing.body.data).toHaveLength(3);
    expect(new Set((listing.body.data as Json[]).map((socket) => socket.destination)).size).toBe(1);
    roaming.close();
    await balancer.stop();
  });
});
