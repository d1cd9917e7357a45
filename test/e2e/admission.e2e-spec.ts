import { WebSocket } from 'ws';
import { io as ioV4 } from 'socket.io-client';
import { EventClient } from '../support/clients';
import { callEvent } from '../support/kazoo-events';
import { LegacyClient } from '../support/legacy-client';
import { Stack } from '../support/stack';
import { waitUntil } from '../support/wait';

type Headers = Record<string, string>;

/** The HTTP status a plain WebSocket upgrade to `path` gets: 101, or the refusal's. */
function upgradeStatus(url: string, path: string, headers: Headers = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`${url.replace(/^http/, 'ws')}${path}`, { headers });
    socket.once('open', () => {
      socket.terminate();
      resolve(101);
    });
    socket.once('unexpected-response', (_request, response) => {
      resolve(response.statusCode ?? 0);
      socket.terminate();
    });
    socket.once('error', reject);
  });
}

/** The status and body a socket.io 0.9 handshake gets. */
async function legacyHandshake(url: string, headers: Headers = {}): Promise<[number, string]> {
  const response = await fetch(`${url}/socket.io/1/?t=${Date.now()}`, { headers });
  return [response.status, await response.text()];
}

/** The `connect_error` a socket.io 4 client gets, or `undefined` when it connects. */
function socketIoRefusal(
  url: string,
  transport: 'websocket' | 'polling',
  headers: Headers = {},
): Promise<Error | undefined> {
  return new Promise((resolve) => {
    const socket = ioV4(url, {
      transports: [transport],
      forceNew: true,
      reconnection: false,
      extraHeaders: headers,
    });
    socket.once('connect', () => {
      socket.close();
      resolve(undefined);
    });
    socket.once('connect_error', (error: Error) => {
      socket.close();
      resolve(error);
    });
  });
}

const legacyClients: LegacyClient[] = [];

/** A 0.9 client closed after the test, as `Stack` closes the others. */
async function connectLegacy(
  ...args: Parameters<typeof LegacyClient.connect>
): Promise<LegacyClient> {
  const client = await LegacyClient.connect(...args);
  legacyClients.push(client);
  return client;
}

afterEach(() => legacyClients.splice(0).forEach((client) => client.close()));

async function openConnections(stack: Stack): Promise<number> {
  return (await stack.gateway.health()).body.connections.total;
}

describe('connection admission', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await Stack.start({ env: { MAX_CONNECTIONS_PER_IP: '3' } });
  });
  afterEach(async () => {
    stack.closeClients();
    await waitUntil('every connection to be released', async () =>
      (await openConnections(stack)) === 0 ? true : undefined,
    );
  });
  afterAll(() => stack.close());

  it('counts every protocol against one per-address cap, refuses the next with 429, and admits one again after a close', async () => {
    const ws = await stack.connectWs();
    await stack.connect('v4');
    const legacy = await connectLegacy(stack.gateway.url, 'websocket');
    expect(await openConnections(stack)).toBe(3);

    expect(await upgradeStatus(stack.gateway.url, '/')).toBe(429);
    expect(await legacyHandshake(stack.gateway.url)).toEqual([
      429,
      'too many connections from this address',
    ]);
    const refused = await socketIoRefusal(stack.gateway.url, 'polling');
    expect(refused?.message).toBe('xhr poll error');
    expect(await socketIoRefusal(stack.gateway.url, 'websocket')).toBeInstanceOf(Error);
    // X-Forwarded-For from a peer nobody trusts is the client's own claim: ignored.
    expect(await upgradeStatus(stack.gateway.url, '/', { 'X-Forwarded-For': '198.51.100.1' })).toBe(
      429,
    );
    const { body } = await stack.gateway.health();
    expect(body.connections).toMatchObject({ total: 3, refused_per_ip: 5, refused_total: 0 });

    ws.close();
    await waitUntil('the closed connection to be released', async () =>
      (await openConnections(stack)) === 2 ? true : undefined,
    );
    expect(await upgradeStatus(stack.gateway.url, '/')).toBe(101);
    legacy.close();
  });

  it('releases every connection it counted, whichever protocol and however it ends', async () => {
    for (let round = 0; round < 10; round++) {
      const io = await EventClient.connect('v4', stack.gateway.url, { transports: ['polling'] });
      const polling = await connectLegacy(stack.gateway.url, 'xhr-polling');
      const websocket = await connectLegacy(stack.gateway.url, 'websocket');
      io.close();
      websocket.close();
      // A 0.9 polling client that leaves says so; one that just stops polling times out later.
      polling.answerHeartbeats = false;
      polling.close();
      await fetch(`${stack.gateway.url}/socket.io/1/xhr-polling/${polling.sid}?disconnect=1`);
      await waitUntil('the round to be released', async () =>
        (await openConnections(stack)) === 0 ? true : undefined,
      );
      expect(await upgradeStatus(stack.gateway.url, '/socket.io/1/websocket/nosuchsid')).toBe(400);
      expect(await upgradeStatus(stack.gateway.url, '/')).toBe(101);
    }
    await waitUntil('all to be released', async () =>
      (await openConnections(stack)) === 0 ? true : undefined,
    );
  });
});

describe('connection admission behind a trusted proxy', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await Stack.start({
      env: { MAX_CONNECTIONS_PER_IP: '1', MAX_CONNECTIONS: '3', TRUSTED_PROXIES: '127.0.0.1' },
    });
  });
  afterEach(() => stack.closeClients());
  afterAll(() => stack.close());

  it('tells clients apart by X-Forwarded-For, and refuses past MAX_CONNECTIONS with 503', async () => {
    const from = (address: string): Headers => ({ 'X-Forwarded-For': `spoofed, ${address}` });
    await stack.connectWs('/', { headers: from('198.51.100.1') });
    await stack.connect('v4', { headers: from('198.51.100.2') });
    expect(await upgradeStatus(stack.gateway.url, '/', from('198.51.100.1'))).toBe(429);
    expect((await legacyHandshake(stack.gateway.url, from('198.51.100.2')))[0]).toBe(429);
    const legacy = await connectLegacy(stack.gateway.url, 'xhr-polling', {
      headers: from('198.51.100.3'),
    });

    expect(await upgradeStatus(stack.gateway.url, '/', from('198.51.100.4'))).toBe(503);
    expect(await legacyHandshake(stack.gateway.url, from('198.51.100.4'))).toEqual([
      503,
      'too many connections',
    ]);
    expect(
      await socketIoRefusal(stack.gateway.url, 'polling', from('198.51.100.4')),
    ).toBeInstanceOf(Error);
    expect((await stack.gateway.health()).body.connections).toMatchObject({
      total: 3,
      refused_per_ip: 2,
      refused_total: 3,
    });
    legacy.close();
  });
});

describe('authentication deadline', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await Stack.start({ env: { AUTH_DEADLINE_S: '1' } });
  });
  afterEach(() => stack.closeClients());
  afterAll(() => stack.close());

  it('closes connections that have not subscribed, with a code on each protocol, and keeps those that did', async () => {
    const a = stack.account();
    const subscribedWs = await stack.connectWs();
    const subscribedIo = await stack.connect('v4');
    const subscribedLegacy = await connectLegacy(stack.gateway.url, 'websocket');
    expect((await subscribedWs.subscribe(a.token, a.accountId, 'call.*.*')).status).toBe('success');
    expect((await subscribedIo.subscribe(a.token, a.accountId, 'call.*.*')).status).toBe('success');
    await subscribedLegacy.emit(
      'subscribe',
      { auth_token: a.token, account_id: a.accountId, binding: 'call.*.*' },
      true,
    );

    const idleWs = await stack.connectWs();
    const idleIo = await stack.connect('v4');
    const idleLegacy = await connectLegacy(stack.gateway.url, 'websocket');
    // A refused subscribe does not stop the clock.
    expect((await idleWs.subscribe('not-a-token', a.accountId, 'call.*.*')).status).toBe('error');

    expect(await idleWs.whenClosed(5000)).toEqual({
      code: 4001,
      reason: 'authentication deadline',
    });
    const ioError = await idleIo.waitFor('error', () => true, 5000);
    expect(ioError.payload).toEqual({ code: 'auth_deadline', message: 'authentication deadline' });
    await waitUntil('the socket.io client to be disconnected', () =>
      idleIo.isDisconnected ? true : undefined,
    );
    expect(idleIo.disconnectReason).toBe('io server disconnect');
    await idleLegacy.waitForPacket((packet) => packet === '0::', 5000);
    expect(idleLegacy.events).toContainEqual({
      name: 'error',
      args: { code: 'auth_deadline', message: 'authentication deadline' },
    });

    // Past their own deadlines, the subscribed ones are open and served.
    const event = callEvent('CHANNEL_CREATE', a.accountId, 'after-deadline');
    await stack.publisher.publish('callevt', event.routingKey, event.body);
    expect((await subscribedWs.waitForEvent()).data?.call_id).toBe('after-deadline');
    await subscribedIo.waitFor('CHANNEL_CREATE');
    await subscribedLegacy.waitForPacket((packet) => packet.includes('after-deadline'));
    expect(subscribedWs.isOpen).toBe(true);
    expect(subscribedIo.isDisconnected).toBe(false);
    expect(subscribedLegacy.closed).toBe(false);
    subscribedLegacy.close();
  });
});

describe('request rate limit on every protocol', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await Stack.start({ env: { REQUEST_RATE_BURST: '3', REQUEST_RATE_PER_S: '2' } });
  });
  afterEach(() => stack.closeClients());
  afterAll(() => stack.close());

  it('answers socket.io requests past the bucket with rate_limited, and serves later ones', async () => {
    const a = stack.account();
    const client = await stack.connect('v2');
    const acks = await Promise.all(
      Array.from({ length: 5 }, () => client.subscribe(a.token, a.accountId, 'call.*.*')),
    );
    expect(acks.map((ack) => ack.status)).toEqual([
      'success',
      'success',
      'success',
      'error',
      'error',
    ]);
    expect(acks[3].data).toMatchObject({ code: 'rate_limited', temporary: true });
    await client.waitFor(
      'error',
      (payload) => (payload as { code?: string }).code === 'rate_limited',
    );
    await waitUntil('a request to be served again', async () =>
      (await client.subscribe(a.token, a.accountId, 'call.*.*')).status === 'success'
        ? true
        : undefined,
    );
    expect(client.isDisconnected).toBe(false);
  });

  it('charges every packet of a 0.9 polling POST, and serves later requests', async () => {
    const a = stack.account();
    const client = await connectLegacy(stack.gateway.url, 'xhr-polling');
    const packets = Array.from(
      { length: 6 },
      (_, i) =>
        `5:${i + 1}+::${JSON.stringify({
          name: 'subscribe',
          args: [{ auth_token: a.token, account_id: a.accountId, binding: 'call.*.*' }],
        })}`,
    );
    const body = packets.map((packet) => `\ufffd${packet.length}\ufffd${packet}`).join('');
    const posted = await fetch(`${stack.gateway.url}/socket.io/1/xhr-polling/${client.sid}`, {
      method: 'POST',
      body,
    });
    expect(posted.status).toBe(200);
    const acks = await Promise.all(
      packets.map((_, i) => client.waitForPacket((packet) => packet.startsWith(`6:::${i + 1}+`))),
    );
    const statuses = acks.map(
      (ack) => (JSON.parse(ack.slice(ack.indexOf('+') + 1)) as { status: string }[])[0].status,
    );
    expect(statuses).toEqual(['success', 'success', 'success', 'error', 'error', 'error']);
    expect(acks[5]).toContain('"code":"rate_limited"');
    expect(client.events).toContainEqual({
      name: 'error',
      args: { code: 'rate_limited', message: 'too many requests; retry later' },
    });
    await waitUntil('a request to be served again', async () => {
      const [ack] = (await client.emit(
        'subscribe',
        { auth_token: a.token, account_id: a.accountId, binding: 'call.*.*' },
        true,
      )) as { status: string }[];
      return ack.status === 'success' ? true : undefined;
    });
    client.close();
  });

  it("answers plain WebSocket requests past the bucket with code rate_limited and Kazoo's text", async () => {
    const { token } = stack.account();
    const client = await stack.connectWs();
    const replies = await Promise.all(
      Array.from({ length: 4 }, (_, i) =>
        client.request({ action: 'ping', auth_token: token, request_id: `p${i}` }),
      ),
    );
    expect(replies[3]).toMatchObject({
      status: 'error',
      data: {
        code: 'rate_limited',
        temporary: true,
        errors: [expect.stringMatching(/^rate limiting threshold hit for [0-9a-f-]{36}!$/)],
      },
    });
  });
});

describe('per-address Crossbar lookup budget', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await Stack.start({
      env: {
        CROSSBAR_LOOKUPS_BURST: '5',
        CROSSBAR_IP_LOOKUPS_BURST: '8',
        CROSSBAR_IP_LOOKUPS_PER_MIN: '1',
      },
    });
  });
  afterEach(() => stack.closeClients());
  afterAll(() => stack.close());

  it('lets many connections from one address cost Crossbar at most the address burst, and other accounts keep being served', async () => {
    const a = stack.account();
    const b = stack.account();
    const before = stack.crossbar.hitsOf('/v2/token_auth');
    const watcherA = await stack.connectWs();
    const watcherB = await stack.connect('v4');
    expect((await watcherA.subscribe(a.token, a.accountId, 'call.*.*')).status).toBe('success');
    expect((await watcherB.subscribe(b.token, b.accountId, 'call.*.*')).status).toBe('success');

    const codes: (string | undefined)[] = [];
    let n = 0;
    const unknown = (): string => `unknown-token-${n++}`;
    for (let i = 0; i < 4; i++) {
      const io = await stack.connect(i % 2 === 0 ? 'v4' : 'v2');
      const ws = await stack.connectWs();
      for (let j = 0; j < 5; j++) {
        codes.push((await io.subscribe(unknown(), a.accountId, 'call.*.*')).data.code);
        codes.push((await ws.subscribe(unknown(), a.accountId, 'call.*.*')).data?.code as string);
      }
    }
    const legacy = await connectLegacy(stack.gateway.url, 'websocket');
    for (let j = 0; j < 5; j++) {
      const [ack] = (await legacy.emit(
        'subscribe',
        { auth_token: unknown(), account_id: a.accountId, binding: 'call.*.*' },
        true,
      )) as { data: { code?: string } }[];
      codes.push(ack.data.code);
    }
    legacy.close();
    // The watchers' own tokens took two lookups of the address's eight.
    expect(codes.filter((code) => code === 'token_invalid')).toHaveLength(6);
    expect(codes.filter((code) => code === 'rate_limited')).toHaveLength(codes.length - 6);
    expect(stack.crossbar.hitsOf('/v2/token_auth') - before).toBeLessThanOrEqual(8);

    // Throughout, each subscribed client gets its own account's events and nothing else.
    const forA = callEvent('CHANNEL_CREATE', a.accountId, 'for-a');
    const forB = callEvent('CHANNEL_CREATE', b.accountId, 'for-b');
    await stack.publisher.publish('callevt', forA.routingKey, forA.body);
    await stack.publisher.publish('callevt', forB.routingKey, forB.body);
    await watcherA.waitForEvent((frame) => frame.data?.call_id === 'for-a');
    await watcherB.waitFor(
      'CHANNEL_CREATE',
      (payload) => (payload as { 'Call-ID'?: string })['Call-ID'] === 'for-b',
    );
    const markerA = callEvent('CHANNEL_CREATE', a.accountId, 'marker-a');
    await stack.publisher.publish('callevt', markerA.routingKey, markerA.body);
    await watcherA.waitForEvent((frame) => frame.data?.call_id === 'marker-a');
    expect(watcherA.events.map((frame) => frame.data?.call_id)).toEqual(['for-a', 'marker-a']);
    expect(
      watcherB
        .named('CHANNEL_CREATE')
        .map((payload) => (payload as { 'Call-ID'?: string })['Call-ID']),
    ).toEqual(['for-b']);
  });
});
