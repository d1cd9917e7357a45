import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
import { launchChromium } from '../support/browser';
import { conferenceEvent } from '../support/conference-events';
import { documentEvent } from '../support/document-events';
import { faxStatus } from '../support/fax-events';
import { callEvent } from '../support/kazoo-events';
import { Stack } from '../support/stack';
import { waitUntil } from '../support/wait';

// The console page at GET / in a real browser: Debian's Chromium, driven by playwright-core.
jest.setTimeout(90000);

const OUTPUT_DIR = join(__dirname, '..', '..', 'test-output');
const CALLEVT = 'callevt';
const DEFAULT_BINDINGS = ['call.*.*', 'conference.event.*', 'fax.status.*', 'object.*.*'];

type Protocol = 'socketio4' | 'kazoo-ws';

describe('the console page', () => {
  let stack: Stack;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let requests: string[];
  let pageErrors: string[];
  let own: { accountId: string; token: string };
  let other: { accountId: string; token: string };

  const rows = (): Locator => page.locator('#events > li');
  const eventRows = (): Locator => page.locator('#events > li[data-kind="event"]');
  const eventRow = (name: string, text: string): Locator =>
    page.locator(`#events > li[data-kind="event"][data-name="${name}"]`, { hasText: text });
  const rowsOfKind = (kind: 'info' | 'error', text: string | RegExp): Locator =>
    page.locator(`#events > li[data-kind="${kind}"]`, { hasText: text });
  const count = async (locator: Locator, expected: number): Promise<void> => {
    await waitUntil(`${expected} × ${locator.toString()}`, async () =>
      (await locator.count()) === expected ? true : undefined,
    );
  };

  const openConsole = async (): Promise<void> => {
    const query = new URLSearchParams({ account_id: own.accountId, auth_token: own.token });
    await page.goto(`${stack.gateway.url}/?${query.toString()}`);
    await page.locator('#state[data-state="disconnected"]').waitFor();
  };

  const connectWith = async (protocol: Protocol): Promise<void> => {
    await page.selectOption('#protocol', protocol);
    await page.click('#connect');
    await page.locator('#state[data-state="connected"]').waitFor();
    expect(await page.locator('#state').innerText()).toContain('connected');
  };

  /** Publishes the other account's CHANNEL_CREATE, then ours; returns our call-id. */
  const publishOwnAfterOther = async (): Promise<string> => {
    const theirs = callEvent('CHANNEL_CREATE', other.accountId);
    const ours = callEvent('CHANNEL_CREATE', own.accountId);
    await stack.publisher.publish(CALLEVT, theirs.routingKey, theirs.body);
    await stack.publisher.publish(CALLEVT, ours.routingKey, ours.body);
    return ours.body['Call-ID'] as string;
  };

  beforeAll(async () => {
    stack = await Stack.start();
    own = stack.account();
    other = stack.account();
    browser = await launchChromium();
  });

  beforeEach(async () => {
    context = await browser.newContext({ viewport: { width: 1360, height: 860 } });
    page = await context.newPage();
    page.setDefaultTimeout(15000);
    requests = [];
    pageErrors = [];
    page.on('request', (request) => requests.push(request.url()));
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
  });

  /** Everything the page loaded came from the gateway itself, and nothing failed. */
  const expectSelfContained = (): void => {
    const origin = new URL(stack.gateway.url).origin;
    expect(requests.length).toBeGreaterThan(0);
    expect(requests.filter((url) => new URL(url).origin !== origin)).toEqual([]);
    expect(pageErrors).toEqual([]);
  };

  it('streams only the own account over socket.io v4, with expand, filter and pause', async () => {
    await openConsole();
    expect(await page.inputValue('#account-id')).toBe(own.accountId);
    expect(await page.inputValue('#auth-token')).toBe(own.token);
    expect((await page.inputValue('#bindings')).split('\n')).toEqual(DEFAULT_BINDINGS);
    // The token leaves the address bar once it is in the form.
    expect(page.url()).not.toContain('auth_token');

    // One binding the gateway refuses: its error shows in the stream, the others still work.
    await page.fill('#bindings', [...DEFAULT_BINDINGS, 'call.NOT_AN_EVENT.*'].join('\n'));
    await connectWith('socketio4');
    await count(rowsOfKind('info', /subscribed /), DEFAULT_BINDINGS.length);
    // Reported once (the `error` event and the error ack are one failure), naming the binding.
    const refused = rowsOfKind('error', 'call.NOT_AN_EVENT.*: ');
    await refused.waitFor();
    expect(await refused.locator('.row__name').innerText()).toBe('error');
    await count(page.locator('#events > li[data-kind="error"]'), 1);
    expect(await page.locator('#account-id').isDisabled()).toBe(true);

    const callId = await publishOwnAfterOther();
    const row = eventRow('CHANNEL_CREATE', callId);
    await row.waitFor();
    await count(eventRows(), 1);
    expect(await row.locator('.row__name').innerText()).toBe('CHANNEL_CREATE');
    expect(await row.locator('.row__account').getAttribute('title')).toBe(own.accountId);
    expect(await row.locator('.row__summary').innerText()).toContain(`call-id ${callId}`);

    // Expand: the pretty-printed raw Kazoo 3.x payload.
    await row.locator('.row__head').click();
    const json = row.locator('pre.json');
    await json.waitFor();
    expect(await json.innerText()).toContain(`"Call-ID": "${callId}"`);
    expect(await json.innerText()).toContain(`"Account-ID": "${own.accountId}"`);
    await row.locator('.row__head').click();
    await json.waitFor({ state: 'hidden' });

    // Filter: a term that hides it, then one (from the JSON) that shows it again.
    await page.fill('#filter', 'CHANNEL_DESTROY');
    await row.waitFor({ state: 'hidden' });
    expect(await page.locator('#counter').innerText()).toMatch(/^0 of \d+ rows match$/);
    await page.fill('#filter', 'user_wpxnx7am9w');
    await row.waitFor({ state: 'visible' });
    await page.fill('#filter', '');

    // Pause buffers (and counts), resume flushes, newest first.
    await page.click('#pause');
    expect(await page.locator('#pause').innerText()).toBe('Resume (0)');
    const answer = callEvent('CHANNEL_ANSWER', own.accountId, callId);
    await stack.publisher.publish(CALLEVT, answer.routingKey, answer.body);
    await page.locator('#pause', { hasText: 'Resume (1)' }).waitFor();
    expect(await eventRows().count()).toBe(1);
    await page.click('#pause');
    await count(eventRows(), 2);
    expect(await eventRows().first().locator('.row__name').innerText()).toBe('CHANNEL_ANSWER');
    expect(await page.locator('#pause').innerText()).toBe('Pause');
    expect(await page.locator('#counter').innerText()).toBe('2 events');

    // The token is never echoed in the page.
    expect(await page.locator('body').innerText()).not.toContain(own.token);

    await page.click('#disconnect');
    await page.locator('#state[data-state="disconnected"]').waitFor();
    await page.click('#clear');
    await count(rows(), 0);
    expectSelfContained();
  });

  it('streams only the own account over the Kazoo 4.x WebSocket protocol', async () => {
    await openConsole();
    await connectWith('kazoo-ws');
    await rowsOfKind('info', `subscribed ${DEFAULT_BINDINGS.join(', ')}`).waitFor();

    const callId = await publishOwnAfterOther();
    const row = eventRow('CHANNEL_CREATE', callId);
    await row.waitFor();
    await count(eventRows(), 1);
    expect(await row.locator('.row__name').innerText()).toBe('CHANNEL_CREATE');
    expect(await row.locator('.row__binding').innerText()).toBe('call.*.*');
    expect(await row.locator('.row__summary').innerText()).toContain(`call-id ${callId}`);

    // A few more events of every family, for a lively screenshot.
    const conference = conferenceEvent(own.accountId);
    await stack.publisher.publish('conference', conference.routingKey, conference.body);
    const fax = faxStatus(own.accountId, '201911-6cd3e0ee7d0c8c2e3e8a5ba42b4cd1b3');
    await stack.publisher.publish(fax.exchange, fax.routingKey, fax.body);
    const user = documentEvent('doc_created', 'user', own.accountId);
    await stack.publisher.publish('configuration', user.routingKey, user.body);
    for (const name of ['CHANNEL_ANSWER', 'CHANNEL_DESTROY'] as const) {
      const event = callEvent(name, own.accountId, callId);
      await stack.publisher.publish(CALLEVT, event.routingKey, event.body);
    }
    await count(eventRows(), 6);
    for (const family of ['call', 'conference', 'fax', 'object']) {
      expect(await page.locator(`#events > li.fam-${family}`).count()).toBeGreaterThan(0);
    }

    // Expand: the Kazoo 4.x frame, with its routing key and normalized data.
    await row.locator('.row__head').click();
    const json = row.locator('pre.json');
    await json.waitFor();
    expect(await json.innerText()).toContain(`"call_id": "${callId}"`);
    expect(await json.innerText()).toContain(
      `"routing_key": "call.${own.accountId}.CHANNEL_CREATE.`,
    );
    expect(await row.locator('.row__meta').innerText()).toContain('routing key');
    expect(await page.locator('body').innerText()).not.toContain(own.token);

    mkdirSync(OUTPUT_DIR, { recursive: true });
    await page.screenshot({ path: join(OUTPUT_DIR, 'console.png') });

    await page.click('#disconnect');
    await page.locator('#state[data-state="disconnected"]').waitFor();
    expectSelfContained();
  });
});
