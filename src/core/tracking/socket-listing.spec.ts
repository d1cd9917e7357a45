import type { BrokerKey, FamilyBinding } from '../families/event-family';
import type { EventMatch, Session, SessionOrigin } from '../session';
import { SubscriptionRegistry } from '../subscriptions/subscription.registry';
import {
  GREGORIAN_UNIX_OFFSET_S,
  SocketListing,
  kazooShaped,
  watchesAllAccounts,
} from './socket-listing';

const ACCOUNT_A = 'a'.repeat(32);
const ACCOUNT_B = 'b'.repeat(32);
const PARENT = 'c'.repeat(32);
const KEYS: readonly BrokerKey[] = [{ exchange: 'callevt', routingKey: 'call.CHANNEL_CREATE.*' }];

class FakeSession implements Session {
  constructor(
    readonly id: string,
    readonly origin?: SessionOrigin,
  ) {}
  send(_matches: readonly EventMatch[]): void {}
}

const binding = (text: string): FamilyBinding => ({ binding: text, pattern: text });

describe('SocketListing', () => {
  let registry: SubscriptionRegistry;
  let listing: SocketListing;
  const origin: SessionOrigin = {
    protocol: 'kazoo-ws',
    source: '10.0.0.7',
    connectedAt: 1_700_000_000_500,
  };

  beforeEach(() => {
    registry = new SubscriptionRegistry();
    listing = new SocketListing(registry, 'node-public-id');
  });

  function subscribe(
    session: Session,
    accountId: string,
    text: string,
    authAccountId: string,
    extras: { name?: unknown; metadata?: unknown } = {},
  ): void {
    registry.add(session, accountId, 'call', binding(text), KEYS, { authAccountId, ...extras });
  }

  it("describes a socket as Kazoo 4.3 does, with a random id, Gregorian seconds and the node's public id", () => {
    const session = new FakeSession('transport-secret-id', origin);
    subscribe(session, ACCOUNT_A, 'call.CHANNEL_CREATE.*', ACCOUNT_A, { name: 'desk' });
    subscribe(session, ACCOUNT_A, 'call.CHANNEL_ANSWER.*', ACCOUNT_A, { metadata: { m: 1 } });

    const [socket] = listing.list({ authAccountIds: [ACCOUNT_A] });

    expect(socket).toEqual({
      websocket_session_id: expect.stringMatching(/^[0-9a-f]{32}$/) as unknown,
      bindings: ['call.CHANNEL_CREATE.*', 'call.CHANNEL_ANSWER.*'],
      timestamp: 1_700_000_000 + GREGORIAN_UNIX_OFFSET_S,
      destination: 'node-public-id',
      source: '10.0.0.7',
      protocol: 'kazoo-ws',
      name: 'desk',
      metadata: { m: 1 },
      account_ids: [ACCOUNT_A],
      auth_account_ids: [ACCOUNT_A],
    });
    expect(JSON.stringify(socket)).not.toContain('transport-secret-id');
    expect(listing.list({ authAccountIds: [ACCOUNT_A] })[0].websocket_session_id).toBe(
      socket.websocket_session_id,
    );
  });

  it('matches on the auth account, as Kazoo does, or on the subscribed account when asked', () => {
    const own = new FakeSession('own', origin);
    const watchedByParent = new FakeSession('parent', origin);
    const other = new FakeSession('other', origin);
    subscribe(own, ACCOUNT_A, 'call.*.*', ACCOUNT_A);
    subscribe(watchedByParent, ACCOUNT_A, 'call.*.*', PARENT);
    subscribe(other, ACCOUNT_B, 'call.*.*', ACCOUNT_B);

    expect(listing.list({ authAccountIds: [ACCOUNT_A] })).toHaveLength(1);
    expect(listing.list({ authAccountIds: [ACCOUNT_A, PARENT] })).toHaveLength(2);
    expect(
      listing.list({ authAccountIds: [ACCOUNT_A], subscribedAccountIds: [ACCOUNT_A] }),
    ).toHaveLength(2);
  });

  it('finds a socket by id only within the accounts asked for (W7)', () => {
    const session = new FakeSession('s', origin);
    subscribe(session, ACCOUNT_A, 'call.*.*', ACCOUNT_A);
    const [{ websocket_session_id: id }] = listing.list({ authAccountIds: [ACCOUNT_A] });

    expect(listing.list({ authAccountIds: [ACCOUNT_A], socketId: id })).toHaveLength(1);
    expect(listing.list({ authAccountIds: [ACCOUNT_B], socketId: id })).toEqual([]);
    expect(listing.list({ authAccountIds: [ACCOUNT_A], socketId: 'f'.repeat(32) })).toEqual([]);
  });

  it('forgets a socket once it holds no subscription', () => {
    const session = new FakeSession('s', origin);
    subscribe(session, ACCOUNT_A, 'call.*.*', ACCOUNT_A);
    registry.removeAll(session);
    expect(listing.list({ authAccountIds: [ACCOUNT_A] })).toEqual([]);
  });

  it("strips the accounts for Kazoo's Crossbar and tells superduper sockets apart", () => {
    const session = new FakeSession('s', origin);
    subscribe(session, '*', 'call.*.*', ACCOUNT_A);
    const [socket] = listing.list({ authAccountIds: [ACCOUNT_A] });

    expect(watchesAllAccounts(socket)).toBe(true);
    expect(Object.keys(kazooShaped(socket)).sort()).toEqual(
      ['bindings', 'destination', 'protocol', 'source', 'timestamp', 'websocket_session_id'].sort(),
    );
  });
});
