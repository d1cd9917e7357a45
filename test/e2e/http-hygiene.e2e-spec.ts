import { hostname } from 'node:os';
import { WebSocket } from 'ws';
import { CONTENT_SECURITY_POLICY } from '../../src/http/security-headers';
import { secretTag } from '../../src/core/secret-tag';
import { LegacyClient } from '../support/legacy-client';
import { Stack } from '../support/stack';
import { waitUntil } from '../support/wait';

const PAGE = 'https://app.example.com';
const STRANGER = 'https://evil.example.org';

/** Outcome of a WebSocket upgrade: 101 when it opened, else the HTTP status of the refusal. */
function upgrade(url: string, origin?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url.replace(/^http/, 'ws'), origin ? { origin } : {});
    socket.once('open', () => {
      socket.close();
      resolve(101);
    });
    socket.once('unexpected-response', (request, response) => {
      request.destroy();
      resolve(response.statusCode ?? 0);
    });
    socket.once('error', reject);
  });
}

/** Fetches with an `Origin` header (undici lets a test set it, as a browser would). */
function fetchFrom(url: string, origin?: string, init: RequestInit = {}): Promise<Response> {
  return fetch(url, { ...init, headers: origin ? { Origin: origin } : {} });
}

const engineHandshake = (stack: Stack): string =>
  `${stack.gateway.url}/socket.io/?EIO=4&transport=polling`;
const legacyHandshake = (stack: Stack): string => `${stack.gateway.url}/socket.io/1/?t=1`;

/** A 0.9 session id from a handshake without Origin, as a program would make it. */
async function legacySid(stack: Stack): Promise<string> {
  const body = await (await fetch(legacyHandshake(stack))).text();
  return body.split(':')[0];
}

function expectNoCredentials(response: Response): void {
  expect(response.headers.get('access-control-allow-credentials')).toBeNull();
}

describe('CORS_ORIGINS unset (any page, no credentials)', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await Stack.start();
  });
  afterAll(() => stack.close());

  describe.each([
    ['socket.io polling handshake', engineHandshake],
    ['socket.io 0.9 handshake', legacyHandshake],
  ])('%s', (_name, address) => {
    it('answers any page with a wildcard, never a reflected origin or credentials', async () => {
      const response = await fetchFrom(address(stack), PAGE);
      expect(response.status).toBe(200);
      expect(response.headers.get('access-control-allow-origin')).toBe('*');
      expectNoCredentials(response);
      await response.text();
    });

    it('answers a program that sends no Origin', async () => {
      const response = await fetchFrom(address(stack));
      expect(response.status).toBe(200);
      expectNoCredentials(response);
      await response.text();
    });

    it('refuses an opaque origin (Origin: null)', async () => {
      const response = await fetchFrom(address(stack), 'null');
      expect(response.status).toBe(403);
      expect(response.headers.get('access-control-allow-origin')).toBeNull();
      expectNoCredentials(response);
      await response.text();
    });

    it('answers a preflight with a wildcard and no credentials', async () => {
      const response = await fetch(address(stack), {
        method: 'OPTIONS',
        headers: {
          Origin: PAGE,
          'Access-Control-Request-Method': 'POST',
          'Access-Control-Request-Headers': 'content-type',
        },
      });
      expect(response.status).toBe(204);
      expect(response.headers.get('access-control-allow-origin')).toBe('*');
      expectNoCredentials(response);
      await response.text();
    });
  });

  it('lets any page and any program upgrade, but not an opaque origin', async () => {
    const sid = await legacySid(stack);
    const legacy = `${stack.gateway.url}/socket.io/1/websocket/${sid}`;
    const engine = `${stack.gateway.url}/socket.io/?EIO=4&transport=websocket`;
    const kazoo = `${stack.gateway.url}/`;

    expect(await upgrade(kazoo, PAGE)).toBe(101);
    expect(await upgrade(kazoo)).toBe(101);
    expect(await upgrade(kazoo, 'null')).toBe(403);
    expect(await upgrade(engine, PAGE)).toBe(101);
    expect(await upgrade(engine)).toBe(101);
    expect(await upgrade(engine, 'null')).toBe(400); // engine.io refuses upgrades with a 400
    expect(await upgrade(legacy, 'null')).toBe(403);
    expect(await upgrade(legacy, PAGE)).toBe(101);
  });

  describe('HTTP answers', () => {
    const paths = [
      '/',
      '/console.js',
      '/console.css',
      '/vendor/socket.io-0.9.6.min.js',
      '/vendor/socket.io-4/socket.io.min.js',
      '/health',
      '/v2/websockets',
      '/no-such-page',
    ];

    it.each(paths)('%s carries the security headers and no X-Powered-By', async (path) => {
      const response = await fetch(`${stack.gateway.url}${path}`);
      await response.arrayBuffer();
      expect(response.headers.get('x-powered-by')).toBeNull();
      expect(response.headers.get('content-security-policy')).toBe(CONTENT_SECURITY_POLICY);
      expect(response.headers.get('x-content-type-options')).toBe('nosniff');
      expect(response.headers.get('x-frame-options')).toBe('DENY');
      expect(response.headers.get('referrer-policy')).toBe('no-referrer');
    });

    it('forbids framing and every host but its own in the page policy', () => {
      const directives = new Map(
        CONTENT_SECURITY_POLICY.split(';').map((d) => {
          const [name, ...values] = d.trim().split(/\s+/);
          return [name, values] as const;
        }),
      );
      expect(directives.get('frame-ancestors')).toEqual(["'none'"]);
      expect(directives.get('default-src')).toEqual(["'none'"]);
      for (const name of ['script-src', 'connect-src']) {
        expect(directives.get(name)).toEqual(["'self'"]);
      }
    });

    it('/v2/websockets names the node without its host name or pid, the same every time', async () => {
      const read = async (): Promise<string> =>
        ((await (await fetch(`${stack.gateway.url}/v2/websockets`)).json()) as { node: string })
          .node;
      const node = await read();
      expect(node).toMatch(/^[0-9a-f]{16}$/);
      expect(node).not.toContain(hostname());
      expect(node).not.toContain(String(process.pid));
      expect(await read()).toBe(node);
    });
  });
});

describe('CORS_ORIGINS with a list', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await Stack.start({ env: { CORS_ORIGINS: `${PAGE}, http://127.0.0.1:1` } });
  });
  afterAll(() => stack.close());

  describe.each([
    ['socket.io polling handshake', engineHandshake],
    ['socket.io 0.9 handshake', legacyHandshake],
  ])('%s', (_name, address) => {
    it('reflects a listed origin, varying on Origin, with credentials for it alone', async () => {
      const response = await fetchFrom(address(stack), PAGE);
      expect(response.status).toBe(200);
      expect(response.headers.get('access-control-allow-origin')).toBe(PAGE);
      expect(response.headers.get('vary')).toMatch(/origin/i);
      // socket.io 0.9 and 2.x clients send cross-origin XHRs withCredentials.
      expect(response.headers.get('access-control-allow-credentials')).toBe('true');
      await response.text();
    });

    it.each([STRANGER, 'null'])('refuses %s, with no CORS headers', async (origin) => {
      const response = await fetchFrom(address(stack), origin);
      expect(response.status).toBe(403);
      expect(response.headers.get('access-control-allow-origin')).toBeNull();
      expectNoCredentials(response);
      await response.text();
    });

    it('answers a program that sends no Origin, without CORS headers', async () => {
      const response = await fetchFrom(address(stack));
      expect(response.status).toBe(200);
      expect(response.headers.get('access-control-allow-origin')).toBeNull();
      expectNoCredentials(response);
      await response.text();
    });
  });

  it("upgrades listed pages, the gateway's own pages and programs; refuses the rest", async () => {
    const own = new URL(stack.gateway.url).origin;
    const engine = `${stack.gateway.url}/socket.io/?EIO=4&transport=websocket`;
    const kazoo = `${stack.gateway.url}/`;
    const legacy = async (): Promise<string> =>
      `${stack.gateway.url}/socket.io/1/websocket/${await legacySid(stack)}`;

    for (const url of [kazoo, engine, await legacy()]) {
      expect(await upgrade(url, STRANGER)).not.toBe(101);
      expect(await upgrade(url, 'null')).not.toBe(101);
    }
    expect(await upgrade(kazoo, STRANGER)).toBe(403);
    expect(await upgrade(await legacy(), STRANGER)).toBe(403);
    for (const origin of [PAGE, own, undefined]) {
      expect(await upgrade(kazoo, origin)).toBe(101);
      expect(await upgrade(engine, origin)).toBe(101);
      expect(await upgrade(await legacy(), origin)).toBe(101);
    }
  });
});

describe('socket.io 0.9 session ids in the logs', () => {
  let stack: Stack;
  const logged: string[] = [];
  const spies: jest.SpyInstance[] = [];

  beforeAll(async () => {
    // Every line the gateway writes, at its most talkative, goes here instead of the terminal.
    for (const stream of [process.stdout, process.stderr]) {
      spies.push(
        jest.spyOn(stream, 'write').mockImplementation((chunk: string | Uint8Array): boolean => {
          logged.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
          return true;
        }),
      );
    }
    stack = await Stack.start({ env: { LOG_LEVEL: 'verbose', MAX_FRAME_BYTES: '1024' } });
  });
  afterAll(async () => {
    await stack?.close();
    spies.forEach((spy) => spy.mockRestore());
  });

  /** What a confused or hostile 0.9 client sends. */
  const badPackets = (accountId: string): string[] => [
    'garbage',
    '5:::{not json',
    '5:::null',
    '5:::{"name":"nope","args":[]}',
    '3:::a message',
    `5:::${JSON.stringify({
      name: 'subscribe',
      args: [{ account_id: accountId, auth_token: 'not-a-token', binding: 'call.*.*' }],
    })}`,
    '1::/namespace',
  ];

  it('names a session only by a tag while it is made, misbehaves and ends', async () => {
    const me = stack.account();
    const subscribe = {
      account_id: me.accountId,
      auth_token: me.token,
      binding: 'call.CHANNEL_CREATE.*',
    };

    const polling = await LegacyClient.connect(stack.gateway.url, 'xhr-polling');
    await polling.emit('subscribe', subscribe, true);
    for (const packet of badPackets(me.accountId)) await polling.sendPacket(packet);
    await polling.waitForPacket((p) => p.includes('unsupported packet type'));
    await polling.sendPacket('0::');
    polling.close();

    const websocket = await LegacyClient.connect(stack.gateway.url, 'websocket');
    await websocket.emit('subscribe', subscribe, true);
    for (const packet of badPackets(me.accountId)) await websocket.sendPacket(packet);
    await websocket.waitForPacket((p) => p.includes('unsupported packet type'));
    // Past MAX_FRAME_BYTES: the socket fails and the gateway logs why, about this session.
    await websocket.sendPacket(`5:::${'x'.repeat(2048)}`);
    const tag = secretTag(websocket.sid);
    await waitUntil('the failed socket to be logged', () =>
      logged.some((line) => line.includes(`session ${tag}`)) ? true : undefined,
    );
    await waitUntil('the sessions to end', async () =>
      (await stack.gateway.health()).body.sessions === 0 ? true : undefined,
    );

    const text = logged.join('');
    expect(text).toContain('refused by crossbar');
    for (const sid of [polling.sid, websocket.sid]) {
      expect(sid.length).toBeGreaterThan(10);
      expect(text).not.toContain(sid);
    }
  });
});
