import { secretTag } from '../../src/core/secret-tag';
import { EventClient } from '../support/clients';
import { FakeCrossbar } from '../support/fake-crossbar';
import { GatewayBuild, GatewayProcess } from '../support/gateway-process';
import { LegacyClient } from '../support/legacy-client';
import { waitUntil } from '../support/wait';
import { KazooWsClient } from '../support/ws-client';

jest.setTimeout(120_000);

const BINDING = 'call.CHANNEL_CREATE.*';

interface LogLine {
  readonly level: string;
  readonly time: string;
  readonly msg: string;
  readonly node: string;
  readonly context?: string;
  readonly connection?: string;
  readonly request_id?: string;
  readonly req?: { method?: string; url?: string };
}

function nonEmptyLines(output: string): string[] {
  return output.split('\n').filter((line) => line.trim() !== '');
}

function parsesAsJsonObject(line: string): boolean {
  try {
    const value: unknown = JSON.parse(line);
    return typeof value === 'object' && value !== null;
  } catch {
    return false;
  }
}

describe('logs of a gateway process', () => {
  let build: GatewayBuild;
  let crossbar: FakeCrossbar;
  const closers: { close(): void }[] = [];

  beforeAll(async () => {
    build = await GatewayBuild.make('logs');
    crossbar = await FakeCrossbar.start();
  });
  afterEach(() => closers.splice(0).forEach((client) => client.close()));
  afterAll(async () => {
    await crossbar?.stop();
    await build?.remove();
  });

  it('LOG_FORMAT=json: one JSON object a line, with the node, request ids and connection ids, and no credential', async () => {
    const gateway = await GatewayProcess.start(build, {
      CROSSBAR_URL: crossbar.url,
      LOG_FORMAT: 'json',
      LOG_LEVEL: 'debug',
    });
    try {
      const account = crossbar.addAccount();
      const token = crossbar.issueToken(account);

      // HTTP, with and without an id of the client's, and with the token a console page carries.
      const named = await fetch(`${gateway.url}/health`, {
        headers: { 'X-Request-Id': 'e2e-health-1' },
      });
      expect(named.headers.get('x-request-id')).toBe('e2e-health-1');
      const unnamed = await fetch(`${gateway.url}/health`);
      const generatedId = unnamed.headers.get('x-request-id') ?? '';
      expect(generatedId).toMatch(/^[\w-]{1,64}$/);
      await fetch(`${gateway.url}/?auth_token=${token}`, {
        headers: { 'X-Request-Id': 'e2e-console' },
      });
      const listing = await fetch(`${gateway.url}/v2/accounts/${account}/websockets`, {
        headers: { 'X-Auth-Token': token, 'X-Request-Id': 'e2e-listing' },
      });
      expect(listing.status).toBe(200);
      const { node: publicId } = (await (await fetch(`${gateway.url}/v2/websockets`)).json()) as {
        node: string;
      };

      // A client of each protocol, subscribing with the token.
      const io = await EventClient.connect('v4', gateway.url);
      closers.push(io);
      expect((await io.subscribe(token, account, BINDING)).status).toBe('success');
      // socket.io 2.x over polling: its socket id is the Engine.IO session id, a credential.
      const ioV2 = await EventClient.connect('v2', gateway.url, { transports: ['polling'] });
      closers.push(ioV2);
      expect((await ioV2.subscribe(token, account, BINDING)).status).toBe('success');
      const engineSid = ioV2.id ?? '';
      expect(engineSid.length).toBeGreaterThan(10);
      const legacy = await LegacyClient.connect(gateway.url, 'xhr-polling');
      closers.push(legacy);
      await legacy.emit(
        'subscribe',
        { account_id: account, auth_token: token, binding: BINDING },
        true,
      );
      const ws = await KazooWsClient.connect(gateway.url, '/');
      closers.push(ws);
      expect((await ws.subscribe(token, account, BINDING)).status).toBe('success');
      const refused = await ws.request({
        action: 'subscribe',
        request_id: 'ws-refused-1',
        auth_token: token,
        data: { account_id: account, binding: 'no.such.family' },
      });
      expect(refused.status).toBe('error');

      // A 0.9 client says goodbye, or its session outlives it by LEGACY_CLOSE_TIMEOUT_S.
      await legacy.sendPacket('0::');
      closers.splice(0).forEach((client) => client.close());
      await waitUntil('the sessions to end', async () =>
        (
          await fetch(`${gateway.url}/health`).then(
            (r) => r.json() as Promise<{ sessions: number }>,
          )
        ).sessions === 0
          ? true
          : undefined,
      );
      await waitUntil('the 0.9 session to be logged as ended', () =>
        nonEmptyLines(gateway.output)
          .filter(parsesAsJsonObject)
          .map((line) => JSON.parse(line) as LogLine)
          .some((line) => line.connection === secretTag(legacy.sid) && line.msg === 'disconnected')
          ? true
          : undefined,
      );
      gateway.signal('SIGTERM');
      expect(await gateway.exited).toEqual({ code: 0, signal: null });

      const output = gateway.output;
      const raw = nonEmptyLines(output);
      expect(raw.length).toBeGreaterThan(20);
      const unparsed = raw.filter((line) => !parsesAsJsonObject(line));
      expect(unparsed).toEqual([]);
      const lines = raw.map((line) => JSON.parse(line) as LogLine);
      const node = lines[0]?.node;
      // The id the node answers with publicly, never its host name.
      expect(node).toBe(publicId);
      for (const line of lines) {
        expect([typeof line.level, typeof line.time, typeof line.msg]).toEqual([
          'string',
          'string',
          'string',
        ]);
        expect(Number.isNaN(Date.parse(line.time))).toBe(false);
        expect(line.node).toBe(node);
        expect(line).not.toHaveProperty('hostname');
      }

      // Requests: the id sent, or the one answered, on the lines made while handling them.
      const ofRequest = (id: string) => lines.filter((line) => line.request_id === id);
      expect(ofRequest('e2e-health-1')).toContainEqual(
        expect.objectContaining({ level: 'debug', req: { method: 'GET', url: '/health' } }),
      );
      expect(ofRequest(generatedId)).toHaveLength(1);
      expect(ofRequest('e2e-console')).toContainEqual(
        expect.objectContaining({ req: { method: 'GET', url: '/?auth_token=[redacted]' } }),
      );
      expect(ofRequest('e2e-listing').length).toBeGreaterThan(0);

      // Connections: each protocol's, by a field; the 0.9 session only by its tag.
      const ofConnection = lines.filter((line) => line.connection !== undefined);
      for (const opened of [
        'connected (socket.io, EIO 4)',
        'connected (socket.io, EIO 3)',
        'connected (socket.io 0.9)',
        'connected (Kazoo WebSocket)',
      ]) {
        expect(ofConnection.map((line) => line.msg)).toContain(opened);
      }
      expect(ofConnection.map((line) => line.connection)).toContain(secretTag(legacy.sid));
      expect(ofConnection.map((line) => line.connection)).toContain(secretTag(engineSid));
      const refusal = lines.find((line) => line.request_id === 'ws-refused-1');
      expect(refusal?.msg).toMatch(/^request refused: /);
      expect(refusal?.connection).toMatch(/^[\w-]+$/);

      // Never a credential.
      expect(legacy.sid.length).toBeGreaterThan(10);
      expect(output).not.toContain(legacy.sid);
      expect(output).not.toContain(engineSid);
      expect(output).not.toContain(token);
    } finally {
      await gateway.stop();
    }
  });

  it('LOG_FORMAT=text: lines for people, not JSON', async () => {
    const gateway = await GatewayProcess.start(build, {
      CROSSBAR_URL: crossbar.url,
      LOG_FORMAT: 'text',
      LOG_LEVEL: 'debug',
    });
    try {
      const ws = await KazooWsClient.connect(gateway.url, '/');
      closers.push(ws);
      await waitUntil('the connection to be logged', () =>
        gateway.output.includes('connected (Kazoo WebSocket)') ? true : undefined,
      );
      gateway.signal('SIGTERM');
      expect(await gateway.exited).toEqual({ code: 0, signal: null });
      const raw = nonEmptyLines(gateway.output);
      expect(raw.length).toBeGreaterThan(5);
      expect(raw.filter(parsesAsJsonObject)).toEqual([]);
      expect(gateway.output).toMatch(/listening on http:\/\/127\.0\.0\.1:\d+/);
      expect(gateway.output).toMatch(/session [\w-]+: connected \(Kazoo WebSocket\)/);
    } finally {
      await gateway.stop();
    }
  });
});
