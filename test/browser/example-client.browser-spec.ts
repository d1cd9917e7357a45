import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../support/browser';
import { conferenceEvent } from '../support/conference-events';
import { callEvent } from '../support/kazoo-events';
import { Stack } from '../support/stack';
import { waitUntil } from '../support/wait';

// Kazoo 3.x's documented example client (blackhole-3x-doc.md), unmodified but for the server
// address, ids, token and the script URL, in a real browser against the socket.io 0.9 endpoint.
jest.setTimeout(90000);

type Json = Record<string, unknown>;

describe("Kazoo 3.x's documented example page", () => {
  let stack: Stack;
  let browser: Browser;
  let pageServer: Server;
  let pageHtml = '';
  let page: Page;
  const logged: unknown[] = [];

  beforeAll(async () => {
    // The page's own origin, as a file on a desk or an intranet would be.
    pageServer = createServer((_request, response) => {
      response.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
      response.end(pageHtml);
    });
    await new Promise<void>((resolve) => pageServer.listen(0, '127.0.0.1', resolve));
    // The 0.9 client sends its cross-origin XHRs with credentials, which only a listed origin
    // is granted.
    stack = await Stack.start({ env: { CORS_ORIGINS: pageOrigin() } });
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => pageServer?.close(resolve));
    await stack?.close();
  });

  const pageOrigin = (): string => `http://127.0.0.1:${(pageServer.address() as AddressInfo).port}`;

  /** Serves the page from its own origin. */
  const servePage = (html: string): string => {
    pageHtml = html;
    return `${pageOrigin()}/kazoo_example_ws_client.html`;
  };

  it('logs the published CHANNEL_CREATE, CHANNEL_ANSWER, CHANNEL_DESTROY and participants_event payloads, and nothing of another account', async () => {
    const own = stack.account();
    const other = stack.account();
    const html = readFileSync(join(__dirname, '..', 'fixtures', 'example-client-3x.html'), 'utf8')
      .replaceAll('{{BLACKHOLE_URL}}', stack.gateway.url)
      .replaceAll('{{ACCOUNT_ID}}', own.accountId)
      .replaceAll('{{AUTH_TOKEN}}', own.token);
    const url = servePage(html);

    page = await browser.newPage();
    page.on('console', (message) => {
      void Promise.all(message.args().map((arg) => arg.jsonValue())).then((values: unknown[]) =>
        logged.push(...values),
      );
    });
    await page.goto(url);

    // The page subscribes as soon as it loads; the four bindings show up on the broker side.
    await waitUntil(
      'the page to subscribe',
      () => {
        const keys = stack.gateway.binder.boundKeys().map((key) => key.routingKey);
        return ['call.CHANNEL_CREATE.*', 'call.CHANNEL_ANSWER.*', 'call.CHANNEL_DESTROY.*'].every(
          (k) => keys.includes(k),
        ) && keys.includes(`conference.event.*.${own.accountId}.*.*`)
          ? true
          : undefined;
      },
      15000,
    );

    const foreign = [
      callEvent('CHANNEL_CREATE', other.accountId, 'other-call'),
      callEvent('CHANNEL_DESTROY', other.accountId, 'other-call'),
    ];
    for (const event of foreign)
      await stack.publisher.publish('callevt', event.routingKey, event.body);
    const calls = (['CHANNEL_CREATE', 'CHANNEL_ANSWER', 'CHANNEL_DESTROY'] as const).map((name) =>
      callEvent(name, own.accountId, 'browser-call'),
    );
    for (const event of calls)
      await stack.publisher.publish('callevt', event.routingKey, event.body);
    const conference = conferenceEvent(own.accountId, { callId: 'browser-conference-call' });
    await stack.publisher.publish('conference', conference.routingKey, conference.body);

    const expected = [...calls.map((event) => event.body), conference.body];
    await waitUntil(
      'the four payloads in the console',
      () =>
        expected.every((body) =>
          logged.some((value) => JSON.stringify(value) === JSON.stringify(body)),
        )
          ? true
          : undefined,
      15000,
    );
    const payloads = logged.filter(
      (value): value is Json => typeof value === 'object' && value !== null,
    );
    expect(payloads.filter((value) => value['Event-Name'] === 'CHANNEL_CREATE')).toEqual([
      calls[0].body,
    ]);
    expect(payloads.filter((value) => value['Event-Name'] === 'CHANNEL_ANSWER')).toEqual([
      calls[1].body,
    ]);
    expect(payloads.filter((value) => value['Event-Name'] === 'CHANNEL_DESTROY')).toEqual([
      calls[2].body,
    ]);
    expect(payloads.filter((value) => value['Event-Name'] === 'event')).toEqual([conference.body]);
    expect(JSON.stringify(logged)).not.toContain(other.accountId);
  });
});
