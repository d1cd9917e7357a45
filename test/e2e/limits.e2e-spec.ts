import { callEvent } from '../support/kazoo-events';
import { Stack } from '../support/stack';

/** Limits that keep one connection from costing the node without bound. */
describe('limits', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await Stack.start({
      env: { MAX_BINDINGS_PER_CONNECTION: '3', CROSSBAR_LOOKUPS_BURST: '5' },
    });
  });

  afterEach(() => stack.closeClients());

  afterAll(async () => {
    await stack.close();
  });

  it('refuses bindings past MAX_BINDINGS_PER_CONNECTION with limit_exceeded, and the connection keeps working', async () => {
    const a = stack.account();
    const client = await stack.connectWs();
    const bindings = ['call.CHANNEL_CREATE.*', 'call.CHANNEL_ANSWER.*', 'call.CHANNEL_DESTROY.*'];
    expect((await client.subscribe(a.token, a.accountId, bindings)).status).toBe('success');
    const refused = await client.subscribe(undefined, a.accountId, 'call.CHANNEL_HOLD.*');
    expect(refused).toMatchObject({
      status: 'error',
      data: { code: 'limit_exceeded', errors: ['binding limit reached: a connection may hold 3'] },
    });
    const io = await stack.connect('v4');
    const ioRefused = await io.subscribe(a.token, a.accountId, [
      ...bindings,
      'call.CHANNEL_HOLD.*',
    ]);
    expect(ioRefused.data).toMatchObject({ code: 'limit_exceeded' });
    expect(stack.gateway.binder.boundKeys().map((k) => k.routingKey)).not.toContain(
      'call.CHANNEL_HOLD.*',
    );

    const b = stack.account();
    const other = await stack.connectWs();
    await other.subscribe(b.token, b.accountId, 'call.CHANNEL_CREATE.*');

    const event = callEvent('CHANNEL_CREATE', a.accountId, 'still-served');
    await stack.publisher.publish('callevt', event.routingKey, event.body);
    const frame = await client.waitForEvent();
    expect(frame.data?.call_id).toBe('still-served');
    // The other account's client sees its own later marker and nothing of A's.
    const marker = callEvent('CHANNEL_CREATE', b.accountId, 'marker-b');
    await stack.publisher.publish('callevt', marker.routingKey, marker.body);
    await other.waitForEvent((f) => f.data?.call_id === 'marker-b');
    expect(other.events.map((f) => f.data?.call_id)).toEqual(['marker-b']);
  });

  it('answers a flood of unknown tokens with rate_limited, not with Crossbar requests', async () => {
    const a = stack.account();
    const flooder = await stack.connect('v4');
    const before = stack.crossbar.hitsOf('/v2/token_auth');
    const codes: (string | undefined)[] = [];
    for (let i = 0; i < 40; i++) {
      const ack = await flooder.subscribe(`unknown-token-${i}`, a.accountId, 'call.*.*');
      codes.push(ack.data.code);
    }
    expect(codes.slice(0, 5)).toEqual(Array(5).fill('token_invalid'));
    expect(codes.slice(5).every((code) => code === 'rate_limited')).toBe(true);
    expect(stack.crossbar.hitsOf('/v2/token_auth') - before).toBeLessThanOrEqual(6);
    // Another connection is not held back by the flooder.
    const polite = await stack.connect('v2');
    expect((await polite.subscribe(a.token, a.accountId, 'call.*.*')).status).toBe('success');
  });
});
