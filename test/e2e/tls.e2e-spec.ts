import { execFile } from 'node:child_process';
import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { reloadCertificate } from '../../src/bootstrap';
import { loadEnvironment } from '../../src/config/environment';
import { httpRequest } from '../support/http-request';
import { callEvent } from '../support/kazoo-events';
import { LegacyClient, type LegacyTransport } from '../support/legacy-client';
import { Stack } from '../support/stack';
import { TestCertificates, type SelfSignedCertificate } from '../support/tls';
import { KazooWsClient } from '../support/ws-client';

type Json = Record<string, unknown>;

/** The `node -e` script of the Dockerfile's HEALTHCHECK. */
function healthcheckScript(): string {
  const dockerfile = readFileSync(join(__dirname, '..', '..', 'Dockerfile'), 'utf8');
  const command = /HEALTHCHECK [^\n]*\\\n\s*CMD (\[.*\])/.exec(dockerfile)?.[1];
  if (command === undefined) throw new Error('no HEALTHCHECK CMD in the Dockerfile');
  const [node, flag, script] = JSON.parse(command) as string[];
  expect([node, flag]).toEqual(['node', '-e']);
  return script;
}

/** Runs the HEALTHCHECK probe as Docker would, with `env`; resolves with its exit code. */
function runHealthcheck(env: Record<string, string>): Promise<number> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['-e', healthcheckScript()], { env, timeout: 10000 }, (error) =>
      resolve(error === null ? 0 : typeof error.code === 'number' ? error.code : -1),
    );
  });
}
type Account = { accountId: string; token: string };

/** One protocol's client, seen only as far as these tests need: subscribe, then watch calls. */
interface CallListener {
  subscribe(who: Account): Promise<void>;
  waitForCall(callId: string): Promise<void>;
  callIds(): unknown[];
}

const BINDING = 'call.CHANNEL_CREATE.*';

/** Native TLS: every protocol on the one port, over https and wss only. */
describe('native TLS (TLS_CERT_FILE, TLS_KEY_FILE)', () => {
  let certificates: TestCertificates;
  let certificate: SelfSignedCertificate;
  let stack: Stack;
  const legacyClients: LegacyClient[] = [];

  beforeAll(async () => {
    certificates = TestCertificates.create();
    certificate = certificates.selfSigned();
    stack = await Stack.start({
      // A short long-poll, so a closed 0.9 polling client's last request ends quickly.
      env: {
        TLS_CERT_FILE: certificate.certFile,
        TLS_KEY_FILE: certificate.keyFile,
        LEGACY_POLL_S: '1',
      },
    });
  });

  afterEach(() => {
    stack.closeClients();
    legacyClients.splice(0).forEach((client) => client.close());
  });

  afterAll(async () => {
    await stack.close();
    certificates.remove();
  });

  const socketIo =
    (version: 'v4' | 'v2', transports: readonly ('websocket' | 'polling')[]) =>
    async (): Promise<CallListener> => {
      const client = await stack.connect(version, { transports });
      return {
        async subscribe(who) {
          expect((await client.subscribe(who.token, who.accountId, BINDING)).status).toBe(
            'success',
          );
        },
        async waitForCall(callId) {
          await client.waitFor('CHANNEL_CREATE', (p) => (p as Json)['Call-ID'] === callId);
        },
        callIds: () => client.named('CHANNEL_CREATE').map((p) => (p as Json)['Call-ID']),
      };
    };

  const kazooWebSocket = async (): Promise<CallListener> => {
    const client = await stack.connectWs();
    return {
      async subscribe(who) {
        expect((await client.subscribe(who.token, who.accountId, BINDING)).status).toBe('success');
      },
      async waitForCall(callId) {
        await client.waitForEvent((f) => f.data?.call_id === callId);
      },
      callIds: () => client.events.map((f) => f.data?.call_id),
    };
  };

  const legacy = (transport: LegacyTransport) => async (): Promise<CallListener> => {
    const client = await LegacyClient.connect(stack.gateway.url, transport, {
      ca: stack.gateway.ca,
    });
    legacyClients.push(client);
    return {
      async subscribe(who) {
        const [ack] =
          (await client.emit(
            'subscribe',
            { account_id: who.accountId, auth_token: who.token, binding: BINDING },
            true,
          )) ?? [];
        expect(ack).toMatchObject({ status: 'success' });
      },
      async waitForCall(callId) {
        await client.waitFor('CHANNEL_CREATE', (args) => (args as Json)['Call-ID'] === callId);
      },
      callIds: () => client.named('CHANNEL_CREATE').map((args) => (args as Json)['Call-ID']),
    };
  };

  it('serves on https:// and its certificate is the configured one', async () => {
    expect(stack.gateway.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const health = await httpRequest(`${stack.gateway.url}/health`, { ca: certificate.cert });
    expect(health.status).toBe(200);
    expect(JSON.parse(health.body)).toMatchObject({ status: 'ok' });
    // A client that trusts only another certificate refuses the one served.
    const stranger = certificates.selfSigned('stranger');
    await expect(
      httpRequest(`${stack.gateway.url}/health`, { ca: stranger.cert }),
    ).rejects.toMatchObject({ code: 'DEPTH_ZERO_SELF_SIGNED_CERT' });
  });

  it('serves nothing in clear text on the TLS port: plain http, ws and the 0.9 handshake all fail', async () => {
    const plain = stack.gateway.url.replace(/^https:/, 'http:');
    // No answer at all, not even a 400: the TLS handshake fails and the connection is closed.
    await expect(httpRequest(`${plain}/health`)).rejects.toMatchObject({ code: 'ECONNRESET' });
    await expect(httpRequest(`${plain}/socket.io/1/?t=1`)).rejects.toMatchObject({
      code: 'ECONNRESET',
    });
    await expect(KazooWsClient.connect(plain, '/', { timeoutMs: 3000 })).rejects.toThrow();
    // And the server shrugs those off.
    expect((await stack.gateway.health()).status).toBe(200);
  });

  it("the Dockerfile's HEALTHCHECK probe follows the scheme TLS_CERT_FILE sets", async () => {
    const port = new URL(stack.gateway.url).port;
    expect(
      await runHealthcheck({
        PORT: port,
        TLS_CERT_FILE: certificate.certFile,
        TLS_KEY_FILE: certificate.keyFile,
      }),
    ).toBe(0);
    // Without it, the probe speaks plain http to a port that answers only TLS, and fails.
    expect(await runHealthcheck({ PORT: port })).toBe(1);
  });

  it.each<[string, () => Promise<CallListener>]>([
    ['socket.io 4 over wss', socketIo('v4', ['websocket'])],
    ['socket.io 4 over https long-polling', socketIo('v4', ['polling'])],
    ['socket.io 2 over wss', socketIo('v2', ['websocket'])],
    ["Kazoo 4.x's WebSocket over wss", kazooWebSocket],
    ['socket.io 0.9 over wss', legacy('websocket')],
    ['socket.io 0.9 over https xhr-polling', legacy('xhr-polling')],
  ])(
    '%s: a subscriber gets its account’s event from RabbitMQ, and another account’s client never does',
    async (protocol, connect) => {
      const mine = stack.account();
      const theirs = stack.account();
      const client = await connect();
      const other = await connect();
      await client.subscribe(mine);
      await other.subscribe(theirs);

      const slug = protocol.replace(/\W+/g, '-');
      const event = callEvent('CHANNEL_CREATE', mine.accountId, `tls-${slug}`);
      await stack.publisher.publish('callevt', event.routingKey, event.body);
      await client.waitForCall(`tls-${slug}`);

      // The other account's own later event proves the first one had its chance to arrive.
      const marker = callEvent('CHANNEL_CREATE', theirs.accountId, `marker-${slug}`);
      await stack.publisher.publish('callevt', marker.routingKey, marker.body);
      await other.waitForCall(`marker-${slug}`);
      expect(other.callIds()).toEqual([`marker-${slug}`]);
      expect(client.callIds()).toEqual([`tls-${slug}`]);
    },
  );
});

/** A renewed certificate is served without a restart (SIGHUP in `main.ts` calls this). */
describe('reloading the TLS certificate', () => {
  let certificates: TestCertificates;
  let stack: Stack;
  let live: { TLS_CERT_FILE: string; TLS_KEY_FILE: string };

  /** On a connection of its own: a kept-alive one would still carry the certificate it began with. */
  const healthWith = (ca: string) =>
    httpRequest(`${stack.gateway.url}/health`, { ca, headers: { Connection: 'close' } });

  beforeAll(async () => {
    certificates = TestCertificates.create();
    const first = certificates.selfSigned('first');
    live = {
      TLS_CERT_FILE: join(certificates.dir, 'live.cert.pem'),
      TLS_KEY_FILE: join(certificates.dir, 'live.key.pem'),
    };
    copyFileSync(first.certFile, live.TLS_CERT_FILE);
    copyFileSync(first.keyFile, live.TLS_KEY_FILE);
    stack = await Stack.start({ env: live });
  });

  afterAll(async () => {
    await stack.close();
    certificates.remove();
  });

  it('serves new connections with the renewed files, and keeps the old ones when the new are unusable', async () => {
    const first = readFileSync(live.TLS_CERT_FILE, 'utf8');
    expect((await healthWith(first)).status).toBe(200);

    const second = certificates.selfSigned('second');
    copyFileSync(second.certFile, live.TLS_CERT_FILE);
    copyFileSync(second.keyFile, live.TLS_KEY_FILE);
    expect(reloadCertificate(stack.gateway.app, loadEnvironment(live))).toBe(true);
    expect((await healthWith(second.cert)).status).toBe(200);
    await expect(healthWith(first)).rejects.toThrow(/self[- ]signed|certificate/i);

    // A key that is not the certificate's: the node keeps serving the second certificate.
    const third = certificates.selfSigned('third');
    copyFileSync(third.keyFile, live.TLS_KEY_FILE);
    expect(reloadCertificate(stack.gateway.app, { ...loadEnvironment({}), ...live })).toBe(false);
    expect((await healthWith(second.cert)).status).toBe(200);
  });
});
