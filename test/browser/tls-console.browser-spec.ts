import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
import { launchChromium } from '../support/browser';
import { callEvent } from '../support/kazoo-events';
import { Stack } from '../support/stack';
import { TestCertificates } from '../support/tls';
import { waitUntil } from '../support/wait';

// The console page served over native TLS: every protocol it offers must follow the page to
// https and wss, or the browser blocks it as mixed content.
jest.setTimeout(90000);

describe('the console page over native TLS', () => {
  let certificates: TestCertificates;
  let stack: Stack;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let requests: string[];
  let websockets: string[];
  let pageErrors: string[];

  const eventRows = (): Locator => page.locator('#events > li[data-kind="event"]');

  beforeAll(async () => {
    certificates = TestCertificates.create();
    const { certFile, keyFile } = certificates.selfSigned();
    stack = await Stack.start({ env: { TLS_CERT_FILE: certFile, TLS_KEY_FILE: keyFile } });
    browser = await launchChromium();
  });

  beforeEach(async () => {
    // The certificate is the test's own; Chromium has no way to trust it but to be told.
    context = await browser.newContext({ ignoreHTTPSErrors: true });
    page = await context.newPage();
    page.setDefaultTimeout(15000);
    requests = [];
    websockets = [];
    pageErrors = [];
    page.on('request', (request) => requests.push(request.url()));
    page.on('websocket', (socket) => websockets.push(socket.url()));
    page.on('pageerror', (error) => pageErrors.push(error.message));
    page.on('console', (message) => {
      if (message.type() === 'error') pageErrors.push(message.text());
    });
  });

  afterEach(async () => {
    await context?.close();
  });

  afterAll(async () => {
    await browser?.close();
    await stack?.close();
    certificates?.remove();
  });

  it.each([
    ['socketio4', 'socket.io 4'],
    ['kazoo-ws', "Kazoo 4.x's WebSocket"],
    ['socketio09', 'socket.io 0.9'],
  ])('streams only the own account over %s (%s), on wss', async (protocol) => {
    const own = stack.account();
    const other = stack.account();
    const query = new URLSearchParams({ account_id: own.accountId, auth_token: own.token });
    await page.goto(`${stack.gateway.url}/?${query.toString()}`);
    await page.locator('#state[data-state="disconnected"]').waitFor();
    await page.fill('#bindings', 'call.CHANNEL_CREATE.*');
    await page.selectOption('#protocol', protocol);
    await page.click('#connect');
    await page.locator('#state[data-state="connected"]').waitFor();
    await page.locator('#events > li[data-kind="info"]', { hasText: /subscribe/ }).waitFor();

    // socket.io 0.9's subscribe has no ack: publish until the subscription shows, each time the
    // other account's event first, so once ours shows theirs had every chance to.
    const theirCallIds: string[] = [];
    await waitUntil('an event row of the own account', async () => {
      const theirs = callEvent('CHANNEL_CREATE', other.accountId);
      const ours = callEvent('CHANNEL_CREATE', own.accountId);
      theirCallIds.push(theirs.body['Call-ID'] as string);
      await stack.publisher.publish('callevt', theirs.routingKey, theirs.body);
      await stack.publisher.publish('callevt', ours.routingKey, ours.body);
      return (await eventRows().count()) > 0 ? true : undefined;
    });
    const shown = await page.locator('#events').innerText();
    for (const callId of theirCallIds) expect(shown).not.toContain(callId);

    const origin = new URL(stack.gateway.url).origin;
    expect(requests.length).toBeGreaterThan(0);
    expect(requests.filter((url) => new URL(url).origin !== origin)).toEqual([]);
    expect(websockets.length).toBeGreaterThan(0);
    expect(websockets.filter((url) => !url.startsWith(`wss://${new URL(origin).host}/`))).toEqual(
      [],
    );
    expect(pageErrors).toEqual([]);
  });
});
