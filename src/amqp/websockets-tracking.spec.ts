import { SocketListing } from '../core/tracking/socket-listing';
import { SubscriptionRegistry } from '../core/subscriptions/subscription.registry';
import type { Session } from '../core/session';
import { answerData, parseGetRequest } from './websockets-tracking';

const ACCOUNT_A = 'a'.repeat(32);
const ACCOUNT_B = 'b'.repeat(32);

/** A get_req as Kazoo 4.3's Crossbar publishes it (cb_websockets:websockets_req/2). */
const kazooRequest = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  'Event-Category': 'websockets',
  'Event-Name': 'get_req',
  'Msg-ID': 'msg-1',
  'Server-ID': 'crossbar-reply-queue',
  'Account-ID': ACCOUNT_A,
  'App-Name': 'crossbar',
  'App-Version': '4.3.0',
  Node: 'crossbar@kz1',
  ...extra,
});

describe('parseGetRequest', () => {
  it("reads Kazoo's get_req", () => {
    expect(parseGetRequest(kazooRequest({ 'Auth-Account-ID': ACCOUNT_B }))).toEqual({
      msgId: 'msg-1',
      serverId: 'crossbar-reply-queue',
      accountId: ACCOUNT_A,
      authAccountId: ACCOUNT_B,
      socketId: undefined,
      subscribedAccountId: undefined,
      includeAccounts: false,
    });
  });

  it.each([
    ['no object', 'text'],
    ['null', null],
    ['an array', [kazooRequest()]],
    ['another event', kazooRequest({ 'Event-Name': 'get_resp' })],
    ['no reply queue', kazooRequest({ 'Server-ID': undefined })],
    ['no account', kazooRequest({ 'Account-ID': 42 })],
    ['a huge id', kazooRequest({ 'Msg-ID': 'x'.repeat(10_000) })],
  ])('drops %s', (_case, body) => {
    expect(parseGetRequest(body)).toBeUndefined();
  });
});

describe('answerData', () => {
  const registry = new SubscriptionRegistry();
  const listing = new SocketListing(registry, 'node');
  const session: Session = { id: 's', send: () => undefined };
  registry.add(
    session,
    ACCOUNT_A,
    'call',
    { binding: 'call.*.*', pattern: 'call.*.*' },
    [{ exchange: 'callevt', routingKey: 'call.*.*' }],
    { authAccountId: ACCOUNT_A },
  );

  it("answers Kazoo's Crossbar with a list of sockets without their accounts", () => {
    const data = answerData(listing, parseGetRequest(kazooRequest())!);
    expect(data).toEqual([expect.objectContaining({ bindings: ['call.*.*'] })]);
    expect(JSON.stringify(data)).not.toContain(ACCOUNT_A);
  });

  it('answers a socket id with the socket itself, or an empty list when it is not ours', () => {
    const [socket] = answerData(listing, parseGetRequest(kazooRequest())!) as {
      websocket_session_id: string;
    }[];
    const id = socket.websocket_session_id;
    expect(answerData(listing, parseGetRequest(kazooRequest({ 'Socket-ID': id }))!)).toEqual(
      socket,
    );
    const otherAccount = kazooRequest({ 'Socket-ID': id, 'Account-ID': ACCOUNT_B });
    expect(answerData(listing, parseGetRequest(otherAccount)!)).toEqual([]);
  });

  it('adds the accounts only for a node that asks for them', () => {
    const data = answerData(listing, parseGetRequest(kazooRequest({ 'Include-Accounts': true }))!);
    expect(data).toEqual([expect.objectContaining({ account_ids: [ACCOUNT_A] })]);
  });
});
