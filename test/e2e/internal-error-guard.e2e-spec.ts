import { EventProtocol } from '../../src/gateways/event-protocol/event-protocol';
import { WsSession } from '../../src/gateways/ws/ws.session';
import { callEvent } from '../support/kazoo-events';
import { LegacyClient } from '../support/legacy-client';
import { Stack } from '../support/stack';
import { waitUntil } from '../support/wait';

/**
 * A handler bug nobody foresaw (a test double here) closes only the connection it hit, with a
 * code, and is counted; the node and its other connections carry on.
 */
describe('last-resort guard', () => {
  let stack: Stack;
  const restores: (() => void)[] = [];

  beforeAll(async () => {
    stack = await Stack.start();
  });

  afterEach(() => {
    restores.splice(0).forEach((restore) => restore());
    stack.closeClients();
  });

  afterAll(async () => {
    await stack.close();
  });

  /** Requests carrying this account id hit the planted bug. */
  const EXPLODING = 'explode-here';

  /** Makes `EventProtocol.handle` reject for requests naming `EXPLODING`, as a bug would. */
  function plantProtocolBug(): void {
    const protocol = stack.gateway.app.get(EventProtocol);
    const original = protocol.handle.bind(protocol);
    const spy = jest.spyOn(protocol, 'handle').mockImplementation((session, action, body) => {
      if ((body as { account_id?: unknown } | undefined)?.account_id === EXPLODING) {
        return Promise.reject(new Error('planted handler bug'));
      }
      return original(session, action, body);
    });
    restores.push(() => spy.mockRestore());
  }

  async function internalErrorDisconnects(): Promise<number> {
    return (await stack.gateway.health()).body.events.internal_error_disconnects;
  }

  /** A subscribed client of another account, proved still served by its own event. */
  async function expectBystanderServed(
    bystander: { waitFor(callId: string): Promise<unknown> },
    accountId: string,
    callId: string,
  ): Promise<void> {
    const event = callEvent('CHANNEL_CREATE', accountId, callId);
    await stack.publisher.publish('callevt', event.routingKey, event.body);
    await bystander.waitFor(callId);
  }

  it('Kazoo 4.x: closes the failing connection with 1011 and only it', async () => {
    // The error reply itself throws, so the failure escapes the frame handler.
    const original = WsSession.prototype.write;
    const spy = jest.spyOn(WsSession.prototype, 'write').mockImplementation(function (
      this: WsSession,
      frame: object,
    ) {
      if ((frame as { request_id?: unknown }).request_id === 'explode') {
        throw new Error('planted write bug');
      }
      original.call(this, frame);
    });
    restores.push(() => spy.mockRestore());
    const b = stack.account();
    const bystander = await stack.connectWs();
    await bystander.subscribe(b.token, b.accountId, 'call.CHANNEL_CREATE.*');
    const before = await internalErrorDisconnects();

    const victim = await stack.connectWs();
    victim.sendRaw(JSON.stringify({ action: 'ping', request_id: 'explode' }));
    expect(await victim.whenClosed()).toEqual({ code: 1011, reason: 'internal error' });

    expect(bystander.isOpen).toBe(true);
    await expectBystanderServed(
      { waitFor: (id) => bystander.waitForEvent((f) => f.data?.call_id === id) },
      b.accountId,
      'ws-bystander',
    );
    expect(await internalErrorDisconnects()).toBe(before + 1);
  });

  it('socket.io: sends error {code: internal} and disconnects only the failing socket', async () => {
    plantProtocolBug();
    const b = stack.account();
    const bystander = await stack.connect('v4');
    await bystander.subscribe(b.token, b.accountId, 'call.CHANNEL_CREATE.*');
    const before = await internalErrorDisconnects();

    const victim = await stack.connect('v4');
    victim.send('subscribe', { account_id: EXPLODING });
    const error = await victim.waitFor('error');
    expect(error.payload).toEqual({ code: 'internal', message: 'internal error' });
    await waitUntil('the server to disconnect the victim', () =>
      victim.isDisconnected ? true : undefined,
    );
    expect(victim.disconnectReason).toBe('io server disconnect');

    expect(bystander.isDisconnected).toBe(false);
    await expectBystanderServed(
      {
        waitFor: (id) => bystander.waitFor('CHANNEL_CREATE', (p) => JSON.stringify(p).includes(id)),
      },
      b.accountId,
      'io-bystander',
    );
    expect(await internalErrorDisconnects()).toBe(before + 1);
  });

  it('socket.io 0.9: sends 0:: and closes only the failing session (1011 on websocket)', async () => {
    plantProtocolBug();
    const b = stack.account();
    const bystander = await LegacyClient.connect(stack.gateway.url, 'websocket');
    restores.push(() => bystander.close());
    await bystander.emit(
      'subscribe',
      { auth_token: b.token, account_id: b.accountId, binding: 'call.CHANNEL_CREATE.*' },
      true,
    );
    const before = await internalErrorDisconnects();

    const victim = await LegacyClient.connect(stack.gateway.url, 'websocket');
    restores.push(() => victim.close());
    await victim.sendPacket(
      `5:::${JSON.stringify({ name: 'subscribe', args: [{ account_id: EXPLODING }] })}`,
    );
    await victim.waitForPacket((packet) => packet === '0::');
    await waitUntil('the victim to be closed', () => victim.closeInfo);
    expect(victim.closeInfo).toEqual({ code: 1011, reason: 'internal error' });

    expect(bystander.closed).toBe(false);
    await expectBystanderServed(
      {
        waitFor: (id) =>
          bystander.waitForPacket((packet) => packet.startsWith('5:::') && packet.includes(id)),
      },
      b.accountId,
      'legacy-bystander',
    );
    expect(await internalErrorDisconnects()).toBe(before + 1);
  });
});
