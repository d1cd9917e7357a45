import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { Logger } from '@nestjs/common';
import { loadEnvironment } from '../config/environment';
import { NodeIdentity } from '../config/node-identity';
import { createLogger, createRootLogger } from './gateway-logger';
import { httpLogging, redactUrl } from './http-logging';
import { connectionLog } from './log-record';
import { requestIds } from './request-id';

type Middleware = (request: IncomingMessage, response: ServerResponse, next: () => void) => void;

const TOKEN = 'eyJhbGciOiJSUzI1NiJ9.secret-token';

describe('redactUrl', () => {
  it.each([
    [`/?auth_token=${TOKEN}`, '/?auth_token=[redacted]'],
    [`/console?x=1&auth_token=${TOKEN}&y=2`, '/console?x=1&auth_token=[redacted]&y=2'],
    [`/?AUTH%5FTOKEN=${TOKEN}`, '/?AUTH%5FTOKEN=[redacted]'],
    [`/x?api_key=${TOKEN}&password=p`, '/x?api_key=[redacted]&password=[redacted]'],
    ['/socket.io/1/xhr-polling/s3cr3tSid?t=1', '/socket.io/1/xhr-polling/[redacted]?t=1'],
    ['/socket.io/1/websocket/s3cr3tSid', '/socket.io/1/websocket/[redacted]'],
    [
      '/socket.io/?EIO=4&transport=polling&sid=abc',
      '/socket.io/?EIO=4&transport=polling&sid=[redacted]',
    ],
    ['/health', '/health'],
    ['/socket.io/1/?t=1', '/socket.io/1/?t=1'],
    ['/v2/websockets?x', '/v2/websockets?x'],
  ])('%s → %s', (url, expected) => {
    expect(redactUrl(url)).toBe(expected);
  });
});

describe('HTTP logging (JSON)', () => {
  const lines: Record<string, unknown>[] = [];
  let server: Server;
  let url: string;
  const node = new NodeIdentity();

  beforeAll(async () => {
    const environment = loadEnvironment({ LOG_LEVEL: 'debug', LOG_FORMAT: 'json' });
    const capture = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) {
          lines.push(JSON.parse(line) as Record<string, unknown>);
        }
        done();
      },
    });
    const root = createRootLogger(environment, node, capture);
    Logger.overrideLogger(createLogger(environment, root));
    const handlerLog = new Logger('Handler');
    const chain: Middleware[] = [requestIds, ...httpLogging(root)];
    server = createServer((request, response) => {
      const run = (index: number): void => {
        const middleware = chain[index];
        if (middleware) return middleware(request, response, () => run(index + 1));
        // What a controller logs while it answers: a plain line and one about a connection.
        handlerLog.log('handling');
        handlerLog.warn(connectionLog('conn-1', 'about a connection'));
        response.statusCode = request.url === '/fail' ? 500 : 200;
        response.end('ok');
      };
      run(0);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    Logger.overrideLogger(false);
    await new Promise((resolve) => server.close(resolve));
  });

  const linesOf = (requestId: string) => lines.filter((line) => line.request_id === requestId);
  const settle = () => new Promise((resolve) => setImmediate(resolve));

  it('puts the id the client sent on every line of the request and echoes it', async () => {
    const response = await fetch(`${url}/health`, { headers: { 'X-Request-Id': 'client-id-1' } });
    expect(response.headers.get('x-request-id')).toBe('client-id-1');
    await settle();
    const mine = linesOf('client-id-1');
    expect(mine.map((line) => line.msg)).toEqual([
      'handling',
      'about a connection',
      'request completed',
    ]);
    expect(mine[0]).toMatchObject({ level: 'info', context: 'Handler', node: node.publicId });
    expect(mine[1]).toMatchObject({ level: 'warn', connection: 'conn-1' });
    // The access line: at debug, so health checks do not fill the logs at info.
    expect(mine[2]).toMatchObject({
      level: 'debug',
      req: { method: 'GET', url: '/health' },
      res: { statusCode: 200 },
    });
    for (const line of mine) expect(typeof line.time).toBe('string');
  });

  it('makes an id of its own for a request without a safe one', async () => {
    const response = await fetch(`${url}/health`, { headers: { 'X-Request-Id': 'not safe!' } });
    const id = response.headers.get('x-request-id') ?? '';
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    await settle();
    expect(linesOf(id)).toHaveLength(3);
    expect(lines.some((line) => JSON.stringify(line).includes('not safe!'))).toBe(false);
  });

  it('logs a 5xx at warn', async () => {
    const response = await fetch(`${url}/fail`, { headers: { 'X-Request-Id': 'failing' } });
    expect(response.status).toBe(500);
    await settle();
    expect(linesOf('failing').at(-1)).toMatchObject({ level: 'warn', res: { statusCode: 500 } });
  });

  it('never logs a token, from a header or from the address', async () => {
    await fetch(`${url}/?auth_token=${TOKEN}`, {
      headers: {
        'X-Request-Id': 'with-token',
        'X-Auth-Token': TOKEN,
        Authorization: `Bearer ${TOKEN}`,
        Cookie: `session=${TOKEN}`,
      },
    });
    await settle();
    expect(linesOf('with-token').at(-1)).toMatchObject({
      req: { url: '/?auth_token=[redacted]' },
    });
    const everything = lines.map((line) => JSON.stringify(line)).join('\n');
    expect(everything).not.toContain('secret-token');
    expect(everything).not.toMatch(/authorization|x-auth-token|cookie/i);
  });

  it('names the node by its public id only, never the host', () => {
    for (const line of lines) {
      expect(line.node).toBe(node.publicId);
      expect(line).not.toHaveProperty('hostname');
    }
    expect(JSON.stringify(lines)).not.toContain(node.id);
  });
});
