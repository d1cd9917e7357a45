import { AuthorizationWatch } from '../../src/core/subscriptions/authorization-watch';
import { type EventClient } from '../support/clients';
import { SettableClock } from '../support/clock';
import { callEvent } from '../support/kazoo-events';
import { LegacyClient } from '../support/legacy-client';
import { Stack } from '../support/stack';
import { waitUntil } from '../support/wait';
import type { KazooWsClient } from '../support/ws-client';
import { itWithNodeQueues } from '../support/replay-log-mode';

type Json = Record<string, unknown>;
type Protocol = 'socket.io 4' | 'socket.io 2' | 'socket.io 0.9' | 'Kazoo 4.x WebSocket';
interface Who {
  readonly accountId: string;
  readonly token: string;
}
/** What a client is told when its live subscriptions are dropped. */
interface AuthorizationLost {
  readonly code?: unknown;
  readonly account_id?: unknown;
  readonly unsubscribed?: unknown;
}

const CREATE = 'call.CHANNEL_CREATE.*';
/** Held by the client under test alone, so its broker key shows whether it was released. */
const ANSWER = 'call.CHANNEL_ANSWER.*';
const REVALIDATE_S = 60;
const GRACE_S = 300;

/** One client of any protocol, as this suite needs it. */
interface Watcher {
  subscribe(who: Who, bindings: readonly string[]): Promise<void>;
  /** Call-IDs of the CHANNEL_CREATE events received, in order. */
  calls(): unknown[];
  waitForCall(callId: string): Promise<void>;
  waitForAuthorizationLost(timeoutMs?: number): Promise<AuthorizationLost>;
  authorizationLosses(): number;
}

function socketIoWatcher(client: EventClient): Watcher {
  const callIdOf = (payload: unknown): unknown => (payload as Json)['Call-ID'];
  return {
    async subscribe(who, bindings) {
      expect((await client.subscribe(who.token, who.accountId, bindings)).status).toBe('success');
    },
    calls: () => client.named('CHANNEL_CREATE').map(callIdOf),
    waitForCall: async (callId) => {
      await client.waitFor('CHANNEL_CREATE', (p) => callIdOf(p) === callId);
    },
    waitForAuthorizationLost: async (timeoutMs) =>
      (await client.waitFor('auth_failure', () => true, timeoutMs)).payload as AuthorizationLost,
    authorizationLosses: () => client.named('auth_failure').length,
  };
}

function legacyWatcher(client: LegacyClient): Watcher {
  const callIdOf = (args: unknown): unknown => (args as Json)['Call-ID'];
  return {
    async subscribe(who, bindings) {
      const ack = await client.emit(
        'subscribe',
        { account_id: who.accountId, auth_token: who.token, bindings },
        true,
      );
      expect(ack?.[0]).toMatchObject({ status: 'success' });
    },
    calls: () => client.named('CHANNEL_CREATE').map(callIdOf),
    waitForCall: async (callId) => {
      await client.waitFor('CHANNEL_CREATE', (args) => callIdOf(args) === callId);
    },
    waitForAuthorizationLost: async (timeoutMs) =>
      (await client.waitFor('auth_failure', () => true, timeoutMs)).args as AuthorizationLost,
    authorizationLosses: () => client.named('auth_failure').length,
  };
}

function wsWatcher(client: KazooWsClient): Watcher {
  const creates = () => client.events.filter((f) => f.name === 'CHANNEL_CREATE');
  return {
    async subscribe(who, bindings) {
      const reply = await client.subscribe(who.token, who.accountId, [...bindings]);
      expect(reply.status).toBe('success');
    },
    calls: () => creates().map((f) => f.data?.call_id),
    waitForCall: async (callId) => {
      await client.waitForEvent((f) => f.name === 'CHANNEL_CREATE' && f.data?.call_id === callId);
    },
    waitForAuthorizationLost: async (timeoutMs) => {
      const frame = await client.waitFor((f) => f.action === 'error', timeoutMs);
      expect(frame).toMatchObject({ action: 'error', status: 'error' });
      return frame.data as AuthorizationLost;
    },
    authorizationLosses: () => client.frames.filter((f) => f.action === 'error').length,
  };
}

describe.each<Protocol>(['socket.io 4', 'socket.io 2', 'socket.io 0.9', 'Kazoo 4.x WebSocket'])(
  'tokens are re-checked on live %s subscriptions',
  (protocol) => {
    let stack: Stack;
    let clock: SettableClock;
    const legacyClients: LegacyClient[] = [];

    const connect = async (): Promise<Watcher> => {
      switch (protocol) {
        case 'socket.io 4':
          return socketIoWatcher(await stack.connect('v4'));
        case 'socket.io 2':
          return socketIoWatcher(await stack.connect('v2'));
        case 'socket.io 0.9': {
          const client = await LegacyClient.connect(stack.gateway.url, 'websocket');
          legacyClients.push(client);
          return legacyWatcher(client);
        }
        case 'Kazoo 4.x WebSocket':
          return wsWatcher(await stack.connectWs());
      }
    };
    /** A socket.io 4 client of the same account on its own valid token: it sees the markers. */
    const witnessOf = async (accountId: string): Promise<Watcher> => {
      const witness = socketIoWatcher(await stack.connect('v4'));
      await witness.subscribe({ accountId, token: stack.crossbar.issueToken(accountId) }, [CREATE]);
      return witness;
    };
    const publishCreate = async (accountId: string, callId: string): Promise<void> => {
      const event = callEvent('CHANNEL_CREATE', accountId, callId);
      await stack.publisher.publish('callevt', event.routingKey, event.body);
    };
    const later = (seconds: number): void =>
      clock.set(new Date(clock.now().getTime() + seconds * 1000).toISOString());
    const boundKeys = (): string[] =>
      stack.gateway.binder.boundKeys().map((k) => `${k.exchange}::${k.routingKey}`);
    const createReferences = (): number =>
      stack.gateway.binder.boundKeys().find((k) => k.routingKey === CREATE)?.references ?? 0;
    const crossbarHits = (): number =>
      [...stack.crossbar.hits.values()].reduce((sum, hits) => sum + hits, 0);

    beforeAll(async () => {
      clock = new SettableClock(new Date().toISOString());
      stack = await Stack.start({
        clock,
        env: { AUTH_REVALIDATE_S: String(REVALIDATE_S), AUTH_OUTAGE_GRACE_S: String(GRACE_S) },
      });
    });

    beforeEach(() => {
      // The gateway's time starts each test at the real time, which JWT `exp`s are written in.
      clock.set(new Date().toISOString());
    });

    afterEach(async () => {
      stack.crossbar.setFault(undefined);
      stack.closeClients();
      legacyClients.splice(0).forEach((client) => client.close());
      // Nothing of this test is left to be re-checked in the next one.
      const watch = stack.gateway.app.get(AuthorizationWatch);
      await waitUntil('closed clients to be forgotten', () =>
        watch.size === 0 ? true : undefined,
      );
    });

    afterAll(async () => {
      await stack.close();
    });

    itWithNodeQueues(
      'stops a revoked token within AUTH_REVALIDATE_S: auth failure, keys released, nothing more delivered',
      async () => {
        const a = stack.account();
        const b = stack.account();
        const victim = await connect();
        await victim.subscribe(a, [CREATE, ANSWER]);
        const witness = await witnessOf(a.accountId);
        const stranger = await witnessOf(b.accountId);
        await publishCreate(a.accountId, 'before-revocation');
        await victim.waitForCall('before-revocation');
        const createRefs = createReferences();

        stack.crossbar.revoke(a.token);
        later(REVALIDATE_S - 1);
        // Not due yet: the token is only asked again once the interval has passed.
        await publishCreate(a.accountId, 'not-yet-due');
        await witness.waitForCall('not-yet-due');
        await victim.waitForCall('not-yet-due');
        later(1);

        const lost = await victim.waitForAuthorizationLost();
        expect(lost).toMatchObject({
          code: 'token_invalid',
          account_id: a.accountId,
          unsubscribed: [CREATE, ANSWER],
        });
        expect(boundKeys()).not.toContain(`callevt::${ANSWER}`);
        expect(createReferences()).toBe(createRefs - 1);

        await publishCreate(a.accountId, 'after-revocation');
        await publishCreate(a.accountId, 'marker-a');
        await witness.waitForCall('marker-a');
        expect(victim.calls()).toEqual(['before-revocation', 'not-yet-due']);
        expect(witness.calls()).toEqual([
          'before-revocation',
          'not-yet-due',
          'after-revocation',
          'marker-a',
        ]);

        // The connection stays open: a fresh token subscribes again.
        await victim.subscribe(
          { accountId: a.accountId, token: stack.crossbar.issueToken(a.accountId) },
          [CREATE],
        );
        await publishCreate(a.accountId, 'after-renewal');
        await victim.waitForCall('after-renewal');
        expect(victim.authorizationLosses()).toBe(1);

        // Isolation: the other account saw its own marker and nothing of A's.
        await publishCreate(b.accountId, 'marker-b');
        await stranger.waitForCall('marker-b');
        expect(stranger.calls()).toEqual(['marker-b']);
      },
    );

    it('drops a JWT at its exp without asking Crossbar', async () => {
      const accountId = stack.crossbar.addAccount();
      const victim = await connect();
      await victim.subscribe({ accountId, token: stack.crossbar.issueToken(accountId, 30) }, [
        CREATE,
        ANSWER,
      ]);
      const witness = await witnessOf(accountId);
      const hits = crossbarHits();

      // Past exp, within AUTH_REVALIDATE_S: nothing is due a re-check.
      later(31);
      const lost = await victim.waitForAuthorizationLost();
      expect(lost).toMatchObject({ code: 'token_invalid', account_id: accountId });
      expect(crossbarHits()).toBe(hits);
      expect(boundKeys()).not.toContain(`callevt::${ANSWER}`);

      await publishCreate(accountId, 'after-expiry');
      await witness.waitForCall('after-expiry');
      expect(victim.calls()).toEqual([]);
    });

    it('keeps streaming through a Crossbar outage for AUTH_OUTAGE_GRACE_S, then drops', async () => {
      const a = stack.account();
      const b = stack.account();
      const victim = await connect();
      await victim.subscribe(a, [CREATE, ANSWER]);
      const stranger = await witnessOf(b.accountId);

      stack.crossbar.setFault({ status: 503 });
      const tokenChecks = stack.crossbar.hitsOf('/v2/token_auth');
      later(REVALIDATE_S);
      // Both the victim's and the stranger's tokens were asked, and Crossbar failed.
      await waitUntil('the re-checks to reach Crossbar', () =>
        stack.crossbar.hitsOf('/v2/token_auth') >= tokenChecks + 2 ? true : undefined,
      );
      await publishCreate(a.accountId, 'during-outage');
      await victim.waitForCall('during-outage');
      expect(victim.authorizationLosses()).toBe(0);

      later(GRACE_S - REVALIDATE_S);
      const lost = await victim.waitForAuthorizationLost();
      expect(lost).toMatchObject({ code: 'auth_unavailable', account_id: a.accountId });
      expect(boundKeys()).not.toContain(`callevt::${ANSWER}`);

      stack.crossbar.setFault(undefined);
      const witness = await witnessOf(a.accountId);
      await publishCreate(a.accountId, 'after-grace');
      await publishCreate(a.accountId, 'marker-a');
      await witness.waitForCall('marker-a');
      expect(victim.calls()).toEqual(['during-outage']);
      // The stranger's own grant ran out the same way; it never saw A's events.
      expect(stranger.calls()).toEqual([]);
    });

    it('drops an account the token may no longer see, with account_forbidden', async () => {
      const reseller = stack.account();
      const child = stack.crossbar.addAccount(undefined, reseller.accountId);
      const victim = await connect();
      await victim.subscribe({ accountId: child, token: reseller.token }, [CREATE, ANSWER]);
      const witness = await witnessOf(child);

      // The child account moves to another reseller.
      stack.crossbar.addAccount(child, stack.crossbar.addAccount());
      later(REVALIDATE_S);
      const lost = await victim.waitForAuthorizationLost();
      expect(lost).toMatchObject({
        code: 'account_forbidden',
        account_id: child,
        unsubscribed: [CREATE, ANSWER],
      });
      await publishCreate(child, 'after-move');
      await witness.waitForCall('after-move');
      expect(victim.calls()).toEqual([]);
    });
  },
);
