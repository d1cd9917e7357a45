import { connect as tcpConnect, type Socket } from 'node:net';
import { KazooPublisher } from '../support/amqp';
import { EventClient, PollingClient } from '../support/clients';
import { FakeCrossbar } from '../support/fake-crossbar';
import { GatewayBuild, GatewayProcess } from '../support/gateway-process';
import { callEvent } from '../support/kazoo-events';
import { LegacyClient } from '../support/legacy-client';
import { waitUntil } from '../support/wait';
import { KazooWsClient } from '../support/ws-client';

jest.setTimeout(120_000);

const GRACE_S = 5;
const BINDING = 'call.CHANNEL_CREATE.*';
/** A line of a stack trace, as Node prints them. */
const STACK_LINE = /^\s+at .+[(:]\d+/m;

/**
 * A peer that opens a Kazoo 4.x WebSocket and then neither reads nor answers anything: the
 * kind of client a graceful stop must not wait for.
 */
function stubbornPeer(url: string): Promise<Socket> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = tcpConnect(Number(port), hostname, () => {
      socket.write(
        'GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
      );
      socket.once('data', () => {
        // Upgraded; from now on it reads nothing, so the server's close frame is never answered.
        socket.pause();
        resolve(socket);
      });
    });
    socket.on('error', () => undefined);
    socket.once('error', reject);
  });
}

/**
 * A socket.io 0.9 long-polling session, handshaken and connected (`1::`), with no poll waiting
 * on the server: answers the URL of its next poll.
 */
async function legacyPollBetweenPolls(url: string): Promise<() => string> {
  const handshake = await (await fetch(`${url}/socket.io/1/?t=${Date.now()}`)).text();
  const next = () => `${url}/socket.io/1/xhr-polling/${handshake.split(':')[0]}?t=${Date.now()}`;
  expect(await (await fetch(next())).text()).toBe('1::');
  return next;
}

function saidGoodbyeToOne(gateway: GatewayProcess): Promise<true> {
  return waitUntil('the node to say goodbye', () =>
    /closing 1 client connections/.test(gateway.output) ? true : undefined,
  );
}

describe('stopping a gateway process (SIGTERM, SIGINT)', () => {
  let build: GatewayBuild;
  let crossbar: FakeCrossbar;
  let publisher: KazooPublisher;
  const closers: { close(): void }[] = [];
  const peers: Socket[] = [];

  beforeAll(async () => {
    build = await GatewayBuild.make('shutdown');
    crossbar = await FakeCrossbar.start();
    publisher = await KazooPublisher.connect();
  });

  afterEach(() => {
    closers.splice(0).forEach((client) => client.close());
    peers.splice(0).forEach((peer) => peer.destroy());
  });

  afterAll(async () => {
    await publisher?.close();
    await crossbar?.stop();
    await build?.remove();
  });

  function start(): Promise<GatewayProcess> {
    return GatewayProcess.start(build, {
      CROSSBAR_URL: crossbar.url,
      SHUTDOWN_GRACE_S: String(GRACE_S),
      LOG_LEVEL: 'info',
    });
  }

  it('tells every client on its own protocol, then exits 0 well within SHUTDOWN_GRACE_S, without a stack trace', async () => {
    const gateway = await start();
    const a = crossbar.addAccount();
    const tokenA = crossbar.issueToken(a);
    const b = crossbar.addAccount();
    const tokenB = crossbar.issueToken(b);

    const io = await EventClient.connect('v4', gateway.url);
    const ioPolling = await EventClient.connect('v4', gateway.url, { transports: ['polling'] });
    const ws = await KazooWsClient.connect(gateway.url, '/');
    const legacyWs = await LegacyClient.connect(gateway.url, 'websocket');
    const legacyPolling = await LegacyClient.connect(gateway.url, 'xhr-polling');
    const other = await KazooWsClient.connect(gateway.url, '/');
    closers.push(io, ioPolling, ws, legacyWs, legacyPolling, other);
    for (const client of [io, ioPolling]) {
      expect((await client.subscribe(tokenA, a, BINDING)).status).toBe('success');
    }
    expect((await ws.subscribe(tokenA, a, BINDING)).status).toBe('success');
    for (const client of [legacyWs, legacyPolling]) {
      await client.emit('subscribe', { account_id: a, auth_token: tokenA, binding: BINDING }, true);
    }
    expect((await other.subscribe(tokenB, b, BINDING)).status).toBe('success');
    peers.push(await stubbornPeer(gateway.url));

    // Every client is live before the stop, and B's sees only its own account.
    const call = callEvent('CHANNEL_CREATE', a, 'before-stop');
    await publisher.publish('callevt', call.routingKey, call.body);
    const marker = callEvent('CHANNEL_CREATE', b, 'marker-b');
    await publisher.publish('callevt', marker.routingKey, marker.body);
    await io.waitFor('CHANNEL_CREATE');
    await ioPolling.waitFor('CHANNEL_CREATE');
    await ws.waitForEvent();
    await legacyWs.waitFor('CHANNEL_CREATE');
    await legacyPolling.waitFor('CHANNEL_CREATE');
    await other.waitForEvent((frame) => frame.data?.call_id === 'marker-b');
    expect(other.events.map((frame) => frame.data?.call_id)).toEqual(['marker-b']);

    const stoppedAt = Date.now();
    gateway.signal('SIGTERM');

    expect(await ws.whenClosed(GRACE_S * 1000)).toEqual({ code: 1001, reason: 'going away' });
    // socket.io clients see their transport close, which (unlike a server disconnect) makes
    // them reconnect by themselves; socket.io 0.9 clients likewise get no `0::` ("booted").
    for (const client of [io, ioPolling]) {
      await waitUntil('the socket.io client to be disconnected', () => client.disconnectReason);
      expect(client.disconnectReason).toBe('transport close');
    }
    expect(
      await waitUntil('the 0.9 WebSocket to close', () => legacyWs.closeInfo, GRACE_S * 1000),
    ).toEqual({ code: 1001, reason: 'going away' });
    // The 0.9 long-poll is answered, and the next poll told to handshake again (advice: reconnect).
    await legacyPolling.waitForPacket((packet) => packet === '7:::1+0', GRACE_S * 1000);
    for (const client of [legacyWs, legacyPolling]) {
      expect(client.received).not.toContain('0::');
    }

    const exit = await gateway.exited;
    const tookMs = Date.now() - stoppedAt;
    expect(exit).toEqual({ code: 0, signal: null });
    expect(tookMs).toBeLessThan(GRACE_S * 1000);
    expect(gateway.output).toMatch(/SIGTERM: stopping \(within 5 s\)/);
    expect(gateway.output).toMatch(/closing 7 client connections/);
    expect(gateway.output).toMatch(/\bstopped\b/);
    expect(gateway.output).not.toMatch(STACK_LINE);
    expect(gateway.output).not.toMatch(/\bERROR\b/);
  });

  it('stops on SIGINT (Ctrl+C) the same way, whatever a peer that never answers does', async () => {
    const gateway = await start();
    const a = crossbar.addAccount();
    const ws = await KazooWsClient.connect(gateway.url, '/');
    closers.push(ws);
    expect((await ws.subscribe(crossbar.issueToken(a), a, BINDING)).status).toBe('success');
    peers.push(await stubbornPeer(gateway.url));

    gateway.signal('SIGINT');
    expect(await ws.whenClosed(GRACE_S * 1000)).toEqual({ code: 1001, reason: 'going away' });
    expect(await gateway.exited).toEqual({ code: 0, signal: null });
    expect(gateway.output).toMatch(/SIGINT: stopping/);
    expect(gateway.output).not.toMatch(STACK_LINE);
  });

  it('answers a socket.io long-poll that was between two polls with the close packet', async () => {
    const gateway = await start();
    const a = crossbar.addAccount();
    const polling = await PollingClient.connect(gateway.url);
    expect((await polling.subscribe(crossbar.issueToken(a), a, BINDING)).status).toBe('success');

    // No GET is waiting on the server when the stop begins.
    gateway.signal('SIGTERM');
    await saidGoodbyeToOne(gateway);
    // Its next poll is told the transport closes (socket.io-client: `transport close`, and it
    // reconnects), instead of finding its session already gone (`transport error`).
    expect(await polling.poll()).toContain('1');
    expect(await gateway.exited).toEqual({ code: 0, signal: null });
    expect(gateway.output).not.toMatch(/cutting them/);
  });

  it('tells a socket.io 0.9 long-poll that was between two polls to handshake again', async () => {
    const gateway = await start();
    const nextPoll = await legacyPollBetweenPolls(gateway.url);

    gateway.signal('SIGTERM');
    await saidGoodbyeToOne(gateway);
    // The node still answers its next poll, with `7:::1+0` (advice: reconnect), not a refusal.
    expect(await (await fetch(nextPoll())).text()).toBe('7:::1+0');
    expect(await gateway.exited).toEqual({ code: 0, signal: null });
    expect(gateway.output).not.toMatch(/cutting them/);
  });

  it('keeps running on SIGHUP, which reloads the TLS certificate when there is one', async () => {
    const gateway = await start();
    gateway.signal('SIGHUP');
    await waitUntil('the SIGHUP to be handled', () =>
      gateway.output.includes('SIGHUP: no TLS certificate to reload') ? true : undefined,
    );
    expect((await fetch(`${gateway.url}/health`)).status).toBe(200);
    await gateway.stop();
    expect(await gateway.exited).toEqual({ code: 0, signal: null });
  });
});
