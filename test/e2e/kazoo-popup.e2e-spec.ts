import { randomBytes } from 'node:crypto';
import type { HealthBody } from '../../src/http/health.controller';
import { callEvent } from '../support/kazoo-events';
import { KAZOO_POPUP_BINDINGS, LegacyClient } from '../support/legacy-client';
import { Stack } from '../support/stack';
import { waitUntil } from '../support/wait';

type Json = Record<string, unknown>;
const callIdOf = (args: unknown): unknown => (args as Json)['Call-ID'];

// Seconds-scale liveness settings, so "well past the timeout" takes a few seconds.
const HEARTBEAT_MS = 1000;
const TIMEOUT_MS = 2000;
/** Kazoo-Popup gives up after this long without a `2::` from the server. */
const KAZOO_POPUP_SILENCE_MS = 15_000;
const ENV = {
  LEGACY_HEARTBEAT_S: String(HEARTBEAT_MS / 1000),
  LEGACY_TIMEOUT_S: String(TIMEOUT_MS / 1000),
  LEGACY_CLOSE_TIMEOUT_S: '2',
  WS_PING_INTERVAL_S: '1',
};

/** Arrival times of the server's `2::` heartbeats. */
const heartbeatTimes = (client: LegacyClient): number[] =>
  client.receivedAt.filter((_, i) => client.received[i] === '2::');

/**
 * Kazoo-Popup (2600hz/kazoo-popup) as it behaves on the wire: a socket.io 0.9 WebSocket that
 * subscribes the moment it opens, never heartbeats, and gives up when the server's heartbeats
 * stop. Kazoo 3.x kept such a session for as long as the socket was open.
 */
describe('Kazoo-Popup on the socket.io 0.9 endpoint', () => {
  let stack: Stack;
  const clients: LegacyClient[] = [];

  const popup = async (
    who: { accountId: string; token: string },
    options?: { autoPong?: boolean },
  ): Promise<LegacyClient> => {
    const client = await LegacyClient.kazooPopup(stack.gateway.url, who, options);
    clients.push(client);
    return client;
  };
  const subscriptionCount = async (): Promise<number> => {
    const response = await fetch(`${stack.gateway.url}/health`);
    return ((await response.json()) as HealthBody).subscriptions;
  };
  const publishCall = async (
    name: 'CHANNEL_CREATE' | 'CHANNEL_DESTROY',
    accountId: string,
  ): Promise<{ callId: string; body: Json }> => {
    const callId = `popup-${randomBytes(6).toString('hex')}`;
    const event = callEvent(name, accountId, callId);
    await stack.publisher.publish('callevt', event.routingKey, event.body);
    return { callId, body: event.body };
  };

  beforeAll(async () => {
    stack = await Stack.start({ env: ENV });
  });
  afterEach(() => clients.splice(0).forEach((client) => client.close()));
  afterAll(() => stack.close());

  it('keeps a popup that never heartbeats well past LEGACY_TIMEOUT_S, heartbeating it and delivering its calls, and nobody else', async () => {
    const mine = stack.account();
    const theirs = stack.account();
    const client = await popup(mine);
    const neighbour = await popup(theirs);

    // Its subscribes went out before it could have read `1::`, and every one of them took.
    expect(client.sentBeforeConnect).toHaveLength(KAZOO_POPUP_BINDINGS.length);
    await client.waitForPacket((packet) => packet === '1::');
    expect(client.received[0]).toBe('1::');
    await waitUntil('both popups to hold their three subscriptions', async () =>
      (await subscriptionCount()) === 2 * KAZOO_POPUP_BINDINGS.length ? true : undefined,
    );

    // Twice the silence timeout, measured by the server's own heartbeats, not by a sleep.
    const outlived = client.openedAt + 2 * TIMEOUT_MS;
    await waitUntil(
      'a heartbeat at twice LEGACY_TIMEOUT_S',
      () => (heartbeatTimes(client).some((at) => at > outlived) ? true : undefined),
      4 * TIMEOUT_MS,
    );
    expect(client.closed).toBe(false);
    expect(neighbour.closed).toBe(false);
    expect(client.sentBeforeConnect).toHaveLength(KAZOO_POPUP_BINDINGS.length);
    expect(client.received).not.toContain('0::');

    const call = await publishCall('CHANNEL_CREATE', mine.accountId);
    const created = await client.waitFor(
      'CHANNEL_CREATE',
      (args) => callIdOf(args) === call.callId,
    );
    // Kazoo 3.x's frame: the raw Header-Case message as the bare `args` object.
    expect(created.args).toEqual(call.body);
    expect((created.args as Json)['Custom-Channel-Vars']).toMatchObject({
      'Account-ID': mine.accountId,
      'Authorizing-ID': 'd509114b66efabf32dfd78dc464b46dd',
    });
    expect(
      client.received.some((packet) => packet.startsWith('5:::{"name":"CHANNEL_CREATE","args":{')),
    ).toBe(true);

    // Kazoo-Popup shows "Cannot establish connection" after 15 s without `2::`: heartbeats
    // kept coming, never that far apart.
    const beats = [client.openedAt, ...heartbeatTimes(client)];
    const gaps = beats.slice(1).map((at, i) => at - beats[i]);
    expect(gaps.length).toBeGreaterThanOrEqual(4);
    expect(Math.max(...gaps)).toBeLessThan(KAZOO_POPUP_SILENCE_MS);

    // Tenant isolation, proven by each popup's own later call rather than by waiting.
    const theirCall = await publishCall('CHANNEL_CREATE', theirs.accountId);
    await neighbour.waitFor('CHANNEL_CREATE', (args) => callIdOf(args) === theirCall.callId);
    expect(neighbour.events).toEqual([{ name: 'CHANNEL_CREATE', args: theirCall.body }]);
    const hangup = await publishCall('CHANNEL_DESTROY', mine.accountId);
    await client.waitFor('CHANNEL_DESTROY', (args) => callIdOf(args) === hangup.callId);
    expect(client.events.map((event) => [event.name, callIdOf(event.args)])).toEqual([
      ['CHANNEL_CREATE', call.callId],
      ['CHANNEL_DESTROY', hangup.callId],
    ]);
    expect(client.closed).toBe(false);
  });

  it('cuts off a popup whose machine went away (no pong) and releases its subscriptions', async () => {
    await waitUntil('earlier popups to be gone', async () =>
      (await subscriptionCount()) === 0 ? true : undefined,
    );
    // ws answers pings by itself; without autoPong the peer is as quiet as a closed laptop lid.
    const client = await popup(stack.account(), { autoPong: false });
    await waitUntil('its three subscriptions', async () =>
      (await subscriptionCount()) === KAZOO_POPUP_BINDINGS.length ? true : undefined,
    );
    // First check pings, the next finds no pong; the rest is slack for a busy machine.
    await waitUntil('the popup to be cut off', () => (client.closed ? true : undefined), 10_000);
    await waitUntil('its subscriptions to be released', async () =>
      (await subscriptionCount()) === 0 ? true : undefined,
    );
  });
});
