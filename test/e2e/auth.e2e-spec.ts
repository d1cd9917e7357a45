import type { KazooPublisher } from '../support/amqp';
import type { ClientVersion, EventClient } from '../support/clients';
import type { FakeCrossbar } from '../support/fake-crossbar';
import { callEvent } from '../support/kazoo-events';
import type { TestGateway } from '../support/start-app';
import { Stack } from '../support/stack';
import { waitUntil } from '../support/wait';

const CALLEVT = 'callevt';

describe.each<ClientVersion>(['v4', 'v2'])(
  'authorization and bad input, socket.io %s',
  (version) => {
    let stack: Stack;
    let crossbar: FakeCrossbar;
    let gateway: TestGateway;
    let publisher: KazooPublisher;
    let reseller: string;
    let child: string;
    let sibling: string;
    let resellerToken: string;
    let childToken: string;

    const connect = (): Promise<EventClient> => stack.connect(version);

    beforeAll(async () => {
      // A short Crossbar timeout keeps the "Crossbar hangs" case quick.
      stack = await Stack.start({ env: { CROSSBAR_TIMEOUT_MS: '500' } });
      ({ crossbar, gateway, publisher } = stack);
      ({ accountId: reseller, token: resellerToken } = stack.account());
      ({ accountId: child, token: childToken } = stack.account(reseller));
      ({ accountId: sibling } = stack.account());
    });

    afterEach(() => {
      crossbar.setFault(undefined);
      stack.closeClients();
    });

    afterAll(() => stack.close());

    it("lets a reseller token watch a child account, and only that account's events arrive", async () => {
      const client = await connect();
      const ack = await client.request('subscribe', {
        auth_token: resellerToken,
        account_id: child,
        binding: 'call.CHANNEL_CREATE.*',
      });
      expect(ack.status).toBe('success');

      const foreign = callEvent('CHANNEL_CREATE', sibling, 'sibling-call');
      const parentEvent = callEvent('CHANNEL_CREATE', reseller, 'parent-call');
      const own = callEvent('CHANNEL_CREATE', child, 'child-call');
      for (const e of [foreign, parentEvent, own])
        await publisher.publish(CALLEVT, e.routingKey, e.body);
      await client.waitFor(
        'CHANNEL_CREATE',
        (p) => (p as Record<string, unknown>)['Call-ID'] === 'child-call',
      );
      expect(client.named('CHANNEL_CREATE')).toEqual([own.body]);
    });

    it('refuses a child token for its parent account with an error event and an error ack', async () => {
      const client = await connect();
      const ack = await client.request('subscribe', {
        auth_token: childToken,
        account_id: reseller,
        binding: 'call.CHANNEL_CREATE.*',
      });
      expect(ack).toEqual({
        status: 'error',
        data: { errors: ['unauthorized account id'], code: 'account_forbidden', temporary: false },
      });
      const event = await client.waitFor('error');
      expect(event.payload).toEqual({
        message: 'unauthorized account id',
        code: 'account_forbidden',
      });

      const parentEvent = callEvent('CHANNEL_CREATE', reseller, 'not-for-child');
      await publisher.publish(CALLEVT, parentEvent.routingKey, parentEvent.body);
      // The refused socket may still subscribe its own account; its event proves the parent's was not sent.
      await client.request('subscribe', {
        auth_token: childToken,
        account_id: child,
        binding: 'call.CHANNEL_DESTROY.*',
      });
      const marker = callEvent('CHANNEL_DESTROY', child, 'child-marker');
      await publisher.publish(CALLEVT, marker.routingKey, marker.body);
      await client.waitFor('CHANNEL_DESTROY');
      expect(client.named('CHANNEL_CREATE')).toEqual([]);
    });

    it.each([
      ['an unknown token', 'f00dfeedf00dfeedf00dfeedf00dfeed'],
      ['an expired token', 'expired'],
    ])('answers %s with auth_failure that never contains the token', async (_label, kind) => {
      const token = kind === 'expired' ? crossbar.issueToken(child, -60) : kind;
      const client = await connect();
      const ack = await client.request('subscribe', {
        auth_token: token,
        account_id: child,
        binding: 'call.CHANNEL_CREATE.*',
      });
      expect(ack).toEqual({
        status: 'error',
        data: { errors: ['failed to authenticate token'], code: 'token_invalid', temporary: false },
      });
      const failure = await client.waitFor('auth_failure');
      expect(failure.payload).toEqual({
        message: 'failed to authenticate token',
        code: 'token_invalid',
      });
      expect(JSON.stringify([ack, client.events])).not.toContain(token);
    });

    it('asks for a token when none is given', async () => {
      const client = await connect();
      client.send('subscribe', { account_id: child, binding: 'call.CHANNEL_CREATE.*' });
      const failure = await client.waitFor('auth_failure');
      expect(failure.payload).toEqual({
        message: 'authentication token required',
        code: 'token_required',
      });
    });

    it.each([
      ['Crossbar answering 503', () => crossbar.setFault({ status: 503 })],
      ['Crossbar hanging past the timeout', () => crossbar.setFault('hang')],
    ])(
      'reports %s as a temporary error, not as a bad token, and recovers',
      async (_label, breakIt) => {
        const token = crossbar.issueToken(child);
        const client = await connect();
        breakIt();
        const ack = await client.request('subscribe', {
          auth_token: token,
          account_id: child,
          binding: 'call.CHANNEL_CREATE.*',
        });
        expect(ack).toEqual({
          status: 'error',
          data: {
            errors: ['authentication service unavailable'],
            code: 'auth_unavailable',
            temporary: true,
          },
        });
        expect((await client.waitFor('error')).payload).toEqual({
          message: 'authentication service unavailable',
          code: 'auth_unavailable',
        });
        expect(client.named('auth_failure')).toEqual([]);

        crossbar.setFault(undefined);
        const retry = await client.request('subscribe', {
          auth_token: token,
          account_id: child,
          binding: 'call.CHANNEL_CREATE.*',
        });
        expect(retry.status).toBe('success');
      },
    );

    it('reports Crossbar being down as a temporary error and recovers when it is back', async () => {
      const token = crossbar.issueToken(child);
      const client = await connect();
      await crossbar.stop();
      try {
        const ack = await client.request('subscribe', {
          auth_token: token,
          account_id: child,
          binding: 'call.CHANNEL_CREATE.*',
        });
        expect(ack.data.code).toBe('auth_unavailable');
        expect(ack.data.temporary).toBe(true);
      } finally {
        await crossbar.restart();
      }
      const retry = await client.request('subscribe', {
        auth_token: token,
        account_id: child,
        binding: 'call.CHANNEL_CREATE.*',
      });
      expect(retry.status).toBe('success');
    });

    const badRequests: [string, unknown, string, string][] = [
      [
        'a string payload',
        'call.CHANNEL_CREATE.*',
        'bad_request',
        'subscribe expects a JSON object',
      ],
      ['a number payload', 42, 'bad_request', 'subscribe expects a JSON object'],
      ['an array payload', [1, 2], 'bad_request', 'subscribe expects a JSON object'],
      [
        'a numeric binding',
        { binding: 42 },
        'bad_request',
        'invalid subscribe request: binding: binding must be a string',
      ],
      [
        'a non-string token',
        { auth_token: 7, binding: 'call.CHANNEL_CREATE.*' },
        'bad_request',
        'invalid subscribe request: auth_token: auth_token must be a string',
      ],
      ['no binding', { binding: undefined }, 'bad_request', 'missing required keys : binding'],
      [
        'no account',
        { account_id: undefined },
        'bad_request',
        'missing required keys : account_id',
      ],
      [
        'an unknown family',
        { binding: 'weather.today.*' },
        'invalid_binding',
        'no available subscriptions to requested binding weather.today.*',
      ],
      [
        'an unknown call event',
        { binding: 'call.CHANNEL_EXPLODE.*' },
        'invalid_binding',
        'event CHANNEL_EXPLODE not supported',
      ],
      [
        'a short call binding',
        { binding: 'call.CHANNEL_CREATE' },
        'invalid_binding',
        'invalid format for call subscription : CHANNEL_CREATE',
      ],
      [
        'the wildcard account',
        { account_id: '*' },
        'invalid_account',
        'unauthorized wildcard account id',
      ],
      [
        'a malformed account id',
        { account_id: '../../accounts' },
        'invalid_account',
        'invalid account id',
      ],
    ];

    it.each(badRequests)(
      'answers %s with a clear error and keeps the connection',
      async (_label, patch, code, message) => {
        const client = await connect();
        const payload =
          typeof patch === 'object' && patch !== null && !Array.isArray(patch)
            ? {
                auth_token: childToken,
                account_id: child,
                binding: 'call.CHANNEL_CREATE.*',
                ...patch,
              }
            : patch;
        const ack = await client.request('subscribe', payload);
        expect(ack).toEqual({
          status: 'error',
          data: { errors: [message], code, temporary: false },
        });
        expect((await client.waitFor('error')).payload).toEqual({ message, code });

        // The same connection still works for a well-formed request.
        const ok = await client.request('subscribe', {
          auth_token: childToken,
          account_id: child,
          binding: 'call.CHANNEL_ANSWER.*',
        });
        expect(ok.status).toBe('success');
        expect(client.isDisconnected).toBe(false);
      },
    );

    it('closes a connection that sends an oversized frame while other clients keep receiving', async () => {
      const bystander = await connect();
      await bystander.request('subscribe', {
        auth_token: childToken,
        account_id: child,
        binding: 'call.CHANNEL_CREATE.*',
      });
      const abuser = await connect();
      abuser.send('subscribe', {
        auth_token: 'x'.repeat(200 * 1024),
        account_id: child,
        binding: 'call.CHANNEL_CREATE.*',
      });
      await waitUntil('the oversized connection to be closed', () =>
        abuser.isDisconnected ? true : undefined,
      );

      const event = callEvent('CHANNEL_CREATE', child, 'after-abuse');
      await publisher.publish(CALLEVT, event.routingKey, event.body);
      expect((await bystander.waitFor('CHANNEL_CREATE')).payload).toEqual(event.body);
      expect((await gateway.health()).status).toBe(200);
    });
  },
);
