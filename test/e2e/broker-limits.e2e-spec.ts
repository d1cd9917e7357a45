import { conferenceEvent } from '../support/conference-events';
import { Stack } from '../support/stack';

const MAX_KEYS = 5;
const LIMIT_MESSAGE = `broker key limit reached for this account: an account may hold ${MAX_KEYS} on this node`;

/**
 * One account may not make the node hold broker bindings without bound: every conference id is
 * a key of its own, so a client inventing ids would otherwise bind as many as it likes.
 */
describe('broker keys per account', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await Stack.start({ env: { MAX_BROKER_KEYS_PER_ACCOUNT: String(MAX_KEYS) } });
  });

  afterEach(() => stack.closeClients());

  afterAll(async () => {
    await stack.close();
  });

  const boundKeysOf = (accountId: string): string[] =>
    stack.gateway.binder
      .boundKeys()
      .map((key) => key.routingKey)
      .filter((key) => key.split('.')[3] === accountId);

  const publish = (event: { routingKey: string; body: Record<string, unknown> }) =>
    stack.publisher.publish('conference', event.routingKey, event.body);

  it('refuses bindings past MAX_BROKER_KEYS_PER_ACCOUNT across connections; held ones keep delivering and other accounts are untouched', async () => {
    const a = stack.account();
    const b = stack.account();
    const flooder = await stack.connectWs();
    const conference = (i: number) => `conference.event.flood-${i}`;

    for (let i = 1; i <= MAX_KEYS; i++) {
      expect((await flooder.subscribe(a.token, a.accountId, conference(i))).status).toBe('success');
    }
    for (let i = MAX_KEYS + 1; i <= MAX_KEYS + 20; i++) {
      expect(await flooder.subscribe(a.token, a.accountId, conference(i))).toMatchObject({
        status: 'error',
        data: { code: 'limit_exceeded', errors: [LIMIT_MESSAGE] },
      });
    }
    // A request mixing a held binding with a new one is refused whole.
    const mixed = await flooder.subscribe(a.token, a.accountId, [
      `${conference(1)}.some-call`,
      conference(99),
    ]);
    expect(mixed.data).toMatchObject({ code: 'limit_exceeded' });

    // Another connection of the same account shares the account's budget, but may take keys the
    // account already holds.
    const second = await stack.connect('v4');
    expect((await second.subscribe(a.token, a.accountId, conference(100))).data).toMatchObject({
      code: 'limit_exceeded',
      errors: [LIMIT_MESSAGE],
    });
    expect((await second.subscribe(a.token, a.accountId, conference(2))).status).toBe('success');

    expect(boundKeysOf(a.accountId)).toHaveLength(MAX_KEYS);
    expect((await stack.gateway.health()).body.subscriptions).toBe(MAX_KEYS + 1);

    // Another account still subscribes.
    const other = await stack.connectWs();
    expect((await other.subscribe(b.token, b.accountId, 'conference.event.b-room')).status).toBe(
      'success',
    );

    // A's held bindings keep delivering; the refused ones bind nothing.
    await publish(conferenceEvent(a.accountId, { conferenceId: 'flood-1', callId: 'held-1' }));
    await publish(
      conferenceEvent(a.accountId, { conferenceId: `flood-${MAX_KEYS + 1}`, callId: 'refused' }),
    );
    await publish(conferenceEvent(b.accountId, { conferenceId: 'b-room', callId: 'b-marker' }));
    await publish(conferenceEvent(a.accountId, { conferenceId: 'flood-3', callId: 'a-marker' }));

    await flooder.waitForEvent((f) => f.data?.call_id === 'a-marker');
    expect(flooder.events.map((f) => f.data?.call_id)).toEqual(['held-1', 'a-marker']);
    // One queue, in order: once B's own marker is in, A's events before it were dispatched.
    await other.waitForEvent((f) => f.data?.call_id === 'b-marker');
    expect(other.events.map((f) => f.data?.call_id)).toEqual(['b-marker']);
  });
});
