import { newAccountId } from '../support/fake-crossbar';
import { callEvent } from '../support/kazoo-events';
import { Stack } from '../support/stack';
import { waitUntil } from '../support/wait';
import type { KazooFrame, KazooWsClient } from '../support/ws-client';
import type { EventClient } from '../support/clients';

type Json = Record<string, unknown>;

const callIdOf = (payload: unknown): unknown => (payload as Json)['Call-ID'];
const codeOf = (reply: KazooFrame): unknown => reply.data?.code;

/** Crossbar is asked only so much, whatever clients send: a flood is answered by the node. */
describe('Crossbar protection', () => {
  describe('concurrent requests are capped', () => {
    const MAX_CONCURRENT = 4;
    const MAX_QUEUED = 4;
    const TIMEOUT_MS = 1500;
    let stack: Stack;

    beforeAll(async () => {
      stack = await Stack.start({
        env: {
          CROSSBAR_MAX_CONCURRENT: String(MAX_CONCURRENT),
          CROSSBAR_MAX_QUEUED: String(MAX_QUEUED),
          CROSSBAR_TIMEOUT_MS: String(TIMEOUT_MS),
        },
      });
    });

    afterEach(() => {
      stack.crossbar.setFault(undefined);
      stack.closeClients();
    });

    afterAll(async () => {
      await stack.close();
    });

    it('with Crossbar hanging, lets CROSSBAR_MAX_CONCURRENT requests through, queues CROSSBAR_MAX_QUEUED and answers the rest rate_limited at once', async () => {
      const a = stack.account();
      const b = stack.account();
      const tokenHits = () => stack.crossbar.hitsOf('/v2/token_auth');
      const before = tokenHits();
      stack.crossbar.setFault('hang');

      // One request per connection: a connection's own requests run one after another.
      const wsClients = await Promise.all(Array.from({ length: 8 }, () => stack.connectWs()));
      const ioClients = await Promise.all(Array.from({ length: 8 }, () => stack.connect('v4')));
      const started = Date.now();
      const answeredAfter: number[] = [];
      const timed = <T>(reply: Promise<T>): Promise<T> =>
        reply.then((value) => {
          answeredAfter.push(Date.now() - started);
          return value;
        });
      const codes = [
        ...wsClients.map((client, i) =>
          timed(client.subscribe(`unknown-ws-${i}`, a.accountId, 'call.*.*')).then(codeOf),
        ),
        ...ioClients.map((client, i) =>
          timed(client.subscribe(`unknown-io-${i}`, a.accountId, 'call.*.*')).then(
            (ack) => ack.data.code,
          ),
        ),
      ];

      const refused = MAX_CONCURRENT + MAX_QUEUED;
      await waitUntil('the overflow to be refused', () =>
        answeredAfter.length >= 16 - refused ? true : undefined,
      );
      const health = (await stack.gateway.health()).body;
      expect(health.crossbar).toEqual({
        in_flight: MAX_CONCURRENT,
        queued: MAX_QUEUED,
        refused_busy: 16 - refused,
      });
      expect(tokenHits() - before).toBe(MAX_CONCURRENT);
      // Refused without waiting for Crossbar: well before any request could time out.
      expect(Math.max(...answeredAfter)).toBeLessThan(TIMEOUT_MS / 2);

      const outcome = await Promise.all(codes);
      expect(outcome.filter((code) => code === 'rate_limited')).toHaveLength(16 - refused);
      // Waiting in the queue counts towards CROSSBAR_TIMEOUT_MS: nobody waits two timeouts.
      expect(outcome.filter((code) => code === 'auth_unavailable')).toHaveLength(refused);
      expect(Date.now() - started).toBeLessThan(2 * TIMEOUT_MS);
      expect(tokenHits() - before).toBeLessThanOrEqual(refused);

      // Crossbar answers again: a well-behaved client subscribes and gets its events, and a
      // client of another account gets none of them.
      stack.crossbar.setFault(undefined);
      await waitUntil('the gate to drain', async () => {
        const { crossbar } = (await stack.gateway.health()).body;
        return crossbar.in_flight === 0 && crossbar.queued === 0 ? true : undefined;
      });
      const polite = await stack.connect('v4');
      expect((await polite.subscribe(a.token, a.accountId, 'call.CHANNEL_CREATE.*')).status).toBe(
        'success',
      );
      const other = await stack.connectWs();
      expect((await other.subscribe(b.token, b.accountId, 'call.CHANNEL_CREATE.*')).status).toBe(
        'success',
      );
      const own = callEvent('CHANNEL_CREATE', a.accountId, 'a-after-flood');
      const marker = callEvent('CHANNEL_CREATE', b.accountId, 'b-marker');
      await stack.publisher.publish('callevt', own.routingKey, own.body);
      await stack.publisher.publish('callevt', marker.routingKey, marker.body);
      await polite.waitFor('CHANNEL_CREATE', (p) => callIdOf(p) === 'a-after-flood');
      await other.waitForEvent((f) => f.data?.call_id === 'b-marker');
      expect(other.events.map((f) => f.data?.call_id)).toEqual(['b-marker']);
      expect(polite.named('CHANNEL_CREATE').map(callIdOf)).toEqual(['a-after-flood']);
    });
  });

  describe('refusals are cached', () => {
    const CONNECTIONS = 10;
    let stack: Stack;

    beforeAll(async () => {
      // Long enough that the test never crosses it; its expiry is covered by AuthService's specs.
      stack = await Stack.start({ env: { AUTH_NEGATIVE_TTL_S: '60' } });
    });

    afterEach(() => stack.closeClients());

    afterAll(async () => {
      await stack.close();
    });

    async function connections(): Promise<(KazooWsClient | EventClient)[]> {
      return [
        ...(await Promise.all(Array.from({ length: CONNECTIONS / 2 }, () => stack.connectWs()))),
        ...(await Promise.all(Array.from({ length: CONNECTIONS / 2 }, () => stack.connect('v4')))),
      ];
    }

    /** Every connection subscribes at once, three times over; returns every error code. */
    async function flood(token: string, accountId: string): Promise<unknown[]> {
      const clients = await connections();
      const codes: unknown[] = [];
      for (let round = 0; round < 3; round++) {
        codes.push(
          ...(await Promise.all(
            clients.map(async (client) => {
              const reply = await client.subscribe(token, accountId, 'call.*.*');
              return reply.data?.code;
            }),
          )),
        );
      }
      return codes;
    }

    it('a bad token flooded from many connections costs Crossbar one request', async () => {
      const a = stack.account();
      const bad = stack.crossbar.issueToken(a.accountId);
      stack.crossbar.revoke(bad);
      const before = stack.crossbar.hitsOf('/v2/token_auth');
      const codes = await flood(bad, a.accountId);
      expect(codes).toEqual(Array(3 * CONNECTIONS).fill('token_invalid'));
      expect(stack.crossbar.hitsOf('/v2/token_auth') - before).toBe(1);
    });

    it.each([
      ['another tenant (403)', (stack: Stack) => stack.account().accountId],
      ['an unknown account (404)', () => newAccountId()],
    ])(
      'a refused account lookup, %s, flooded from many connections costs Crossbar one request',
      async (_label, target) => {
        const a = stack.account();
        const accountId = target(stack);
        const codes = await flood(a.token, accountId);
        expect(codes).toEqual(Array(3 * CONNECTIONS).fill('account_forbidden'));
        expect(stack.crossbar.hitsOf(`/v2/accounts/${accountId}`)).toBe(1);
      },
    );
  });
});
