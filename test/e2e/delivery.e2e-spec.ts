import { randomBytes } from 'node:crypto';
import type { ClientVersion, EventClient } from '../support/clients';
import { conferenceEvent } from '../support/conference-events';
import { documentEvent } from '../support/document-events';
import { faxStatus } from '../support/fax-events';
import { callEvent, readFixture } from '../support/kazoo-events';
import { Stack } from '../support/stack';
import type { KazooFrame } from '../support/ws-client';

type Json = Record<string, unknown>;

/**
 * How often a delivery reaches a client: once per socket.io socket however many of its bindings
 * match (Kazoo 3.x), once per matching subscription on the Kazoo 4.x protocol (Kazoo 4.3, which
 * monster-ui relies on: it dispatches frames by `subscribed_key` alone). Built with Kazoo's own
 * data: a call event's `Msg-ID` is a switch timestamp that other events share.
 */
describe('delivery: once per socket, once per subscription, never deduplicated by Msg-ID', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await Stack.start();
  });

  afterEach(() => stack.closeClients());

  afterAll(async () => {
    await stack.close();
  });

  const publishCall = async (
    name: 'CHANNEL_CREATE' | 'CHANNEL_ANSWER' | 'CHANNEL_DESTROY',
    accountId: string,
    callId: string,
  ): Promise<Json> => {
    const event = callEvent(name, accountId, callId);
    await stack.publisher.publish('callevt', event.routingKey, event.body);
    return event.body;
  };
  const callIdOf = (frame: KazooFrame): unknown => frame.data?.call_id;
  const callIdsOf = (client: EventClient, name: string): unknown[] =>
    client.named(name).map((payload) => (payload as Json)['Call-ID']);

  describe('Kazoo 4.x clients (monster-ui)', () => {
    it('get one frame per matching subscription, each with its own keys, in subscription order', async () => {
      const a = stack.account();
      const b = stack.account();
      const client = await stack.connectWs();
      const victim = await stack.connectWs();
      expect((await client.subscribe(a.token, a.accountId, 'call.*.*')).status).toBe('success');
      expect((await client.subscribe(a.token, a.accountId, 'call.CHANNEL_CREATE.*')).status).toBe(
        'success',
      );
      expect((await victim.subscribe(b.token, b.accountId, 'call.*.*')).status).toBe('success');

      await publishCall('CHANNEL_CREATE', a.accountId, 'overlap@10.1.0.5');
      // A marker only `call.*.*` matches: once it is here, every frame before it is too.
      await publishCall('CHANNEL_DESTROY', a.accountId, 'marker-a');
      await client.waitForEvent((f) => callIdOf(f) === 'marker-a');
      const frames = client.events.filter((f) => callIdOf(f) === 'overlap@10.1.0.5');
      expect(frames.map((f) => [f.subscribed_key, f.subscription_key, f.name])).toEqual([
        ['call.*.*', `call.${a.accountId}.*.*`, 'CHANNEL_CREATE'],
        ['call.CHANNEL_CREATE.*', `call.${a.accountId}.CHANNEL_CREATE.*`, 'CHANNEL_CREATE'],
      ]);
      expect(frames[0].routing_key).toBe(
        `call.${a.accountId}.CHANNEL_CREATE.overlap%4010%2E1%2E0%2E5`,
      );

      // The other account's client waits for its own marker, then has seen nothing of A's.
      await publishCall('CHANNEL_CREATE', b.accountId, 'marker-b');
      await victim.waitForEvent((f) => callIdOf(f) === 'marker-b');
      expect(victim.events.map(callIdOf)).toEqual(['marker-b']);
    });

    it('get a fax document once per family that matched it: fax.object.* and object.*.fax', async () => {
      const a = stack.account();
      const client = await stack.connectWs();
      const reply = await client.subscribe(a.token, a.accountId, [
        'fax.object.*',
        'object.*.fax',
        'object.doc_created.device',
      ]);
      expect(reply.status).toBe('success');
      const month = new Date();
      const fax = documentEvent('doc_created', 'fax', a.accountId, { id: 'fax-1', month });
      await stack.publisher.publish('configuration', fax.routingKey, fax.body);
      const marker = documentEvent('doc_created', 'device', a.accountId, { id: 'marker' });
      await stack.publisher.publish('configuration', marker.routingKey, marker.body);
      await client.waitForEvent((f) => f.data?.id === 'marker');
      const frames = client.events.filter((f) => f.data?.id === 'fax-1');
      expect(frames.map((f) => [f.subscribed_key, f.name])).toEqual([
        ['fax.object.*', 'doc_created'],
        ['object.*.fax', 'doc_created'],
      ]);
    });

    it('let a superduper admin watch every account with account_id "*", and no one else', async () => {
      const admins = stack.crossbar.addAccount(undefined, undefined, { superduperAdmin: true });
      const a = stack.account();
      const b = stack.account();
      const admin = await stack.connectWs();
      const reply = await admin.subscribe(stack.crossbar.issueToken(admins), '*', 'call.*.*');
      expect(reply).toMatchObject({ status: 'success', data: { subscribed: ['call.*.*'] } });

      const reseller = await stack.connectWs();
      const refused = await reseller.subscribe(a.token, '*', 'call.*.*');
      expect(refused).toMatchObject({
        status: 'error',
        data: { errors: ['unauthorized wildcard account id'], code: 'invalid_account' },
      });
      const watcher = await stack.connectWs();
      await watcher.subscribe(a.token, a.accountId, 'call.CHANNEL_DESTROY.*');

      await publishCall('CHANNEL_CREATE', a.accountId, 'admin-a');
      await publishCall('CHANNEL_CREATE', b.accountId, 'admin-b');
      await admin.waitForEvent((f) => callIdOf(f) === 'admin-b');
      expect(admin.events.map((f) => [callIdOf(f), f.subscribed_key])).toEqual([
        ['admin-a', 'call.*.*'],
        ['admin-b', 'call.*.*'],
      ]);
      expect((admin.events[0].data?.custom_channel_vars as Json | undefined)?.account_id).toBe(
        a.accountId,
      );

      // The refused client holds nothing; A's own watcher sees A's events only.
      await publishCall('CHANNEL_DESTROY', a.accountId, 'marker-a');
      await watcher.waitForEvent((f) => callIdOf(f) === 'marker-a');
      expect(watcher.events.map(callIdOf)).toEqual(['marker-a']);
      expect(reseller.events).toEqual([]);
    });
  });

  it("gives a superduper admin's `*` every account's conference, fax and document events", async () => {
    const admins = stack.crossbar.addAccount(undefined, undefined, { superduperAdmin: true });
    const a = stack.account();
    const b = stack.account();
    const conferenceId = randomBytes(16).toString('hex');
    const admin = await stack.connectWs();
    const reply = await admin.subscribe(stack.crossbar.issueToken(admins), '*', [
      `conference.event.${conferenceId}`,
      'fax.status.*',
      'object.doc_created.user',
    ]);
    expect(reply.status).toBe('success');
    const presence = await admin.subscribe(undefined, '*', 'presence.dialog.*');
    expect(presence).toMatchObject({ status: 'error', data: { code: 'invalid_binding' } });

    for (const accountId of [a.accountId, b.accountId]) {
      const conference = conferenceEvent(accountId, { conferenceId, callId: `conf-${accountId}` });
      await stack.publisher.publish('conference', conference.routingKey, conference.body);
      const fax = faxStatus(accountId, `job-${accountId}`);
      await stack.publisher.publish('faxes', fax.routingKey, fax.body);
      const user = documentEvent('doc_created', 'user', accountId, { id: `user-${accountId}` });
      await stack.publisher.publish('configuration', user.routingKey, user.body);
    }
    await admin.waitForEvent((f) => f.data?.id === `user-${b.accountId}`);
    const seen = (name: string) =>
      admin.events.filter((f) => f.name === name).map((f) => f.data?.account_id);
    expect(seen('event')).toEqual([a.accountId, b.accountId]);
    expect(seen('status')).toEqual([a.accountId, b.accountId]);
    expect(seen('doc_created')).toEqual([a.accountId, b.accountId]);
  });

  describe.each<ClientVersion>(['v4', 'v2'])('socket.io %s clients', (version) => {
    it('get a delivery once however many bindings match', async () => {
      const a = stack.account();
      const client = await stack.connect(version);
      const reply = await client.subscribe(a.token, a.accountId, [
        'call.*.*',
        'call.CHANNEL_CREATE.*',
        'call.CHANNEL_CREATE.once',
      ]);
      expect(reply.status).toBe('success');
      await publishCall('CHANNEL_CREATE', a.accountId, 'once');
      await publishCall('CHANNEL_DESTROY', a.accountId, 'marker');
      await client.waitFor('CHANNEL_DESTROY');
      expect(callIdsOf(client, 'CHANNEL_CREATE')).toEqual(['once']);
    });

    it("get every distinct event although Kazoo's Msg-IDs repeat across calls and families", async () => {
      const a = stack.account();
      const b = stack.account();
      const conferenceId = randomBytes(16).toString('hex');
      const client = await stack.connect(version, { watch: ['participants_event'] });
      const victim = await stack.connect(version);
      await client.subscribe(a.token, a.accountId, [
        'call.*.*',
        `conference.event.${conferenceId}`,
      ]);
      await victim.subscribe(b.token, b.accountId, 'call.*.*');

      // The captured CHANNEL_ANSWER and participants_event of Kazoo 3.22 share one Msg-ID.
      const shared = readFixture<{ args: Json }>(
        'conference/07-socketio-3.22-participants_event.json',
      ).args['Msg-ID'];
      const answer = await publishCall('CHANNEL_ANSWER', a.accountId, 'leg-1');
      expect(answer['Msg-ID']).toBe(shared);
      const conference = conferenceEvent(a.accountId, { conferenceId, callId: 'leg-1' });
      await stack.publisher.publish('conference', conference.routingKey, {
        ...conference.body,
        'Msg-ID': shared,
      });
      // 100 calls created "in the same microsecond": one Msg-ID, far past any recent-id window.
      const calls = Array.from({ length: 100 }, (_, i) => `call-${i}`);
      for (const callId of calls) await publishCall('CHANNEL_CREATE', a.accountId, callId);
      await publishCall('CHANNEL_DESTROY', a.accountId, 'marker');
      await client.waitFor('CHANNEL_DESTROY');

      expect(callIdsOf(client, 'CHANNEL_ANSWER')).toEqual(['leg-1']);
      expect(client.named('participants_event')).toHaveLength(1);
      expect(callIdsOf(client, 'CHANNEL_CREATE')).toEqual(calls);

      await publishCall('CHANNEL_CREATE', b.accountId, 'marker-b');
      await victim.waitFor('CHANNEL_CREATE');
      expect(victim.events.map((e) => (e.payload as Json)['Call-ID'])).toEqual(['marker-b']);
    });

    it('can drop bindings they hold while Crossbar is down', async () => {
      const a = stack.account();
      const client = await stack.connect(version);
      await client.subscribe(a.token, a.accountId, [
        'call.CHANNEL_CREATE.*',
        'call.CHANNEL_DESTROY.*',
      ]);
      stack.crossbar.setFault({ status: 503 });
      try {
        const reply = await client.request('unsubscribe', {
          auth_token: a.token,
          account_id: a.accountId,
          binding: 'call.CHANNEL_CREATE.*',
        });
        expect(reply).toEqual({
          status: 'success',
          data: { unsubscribed: ['call.CHANNEL_CREATE.*'], subscribed: ['call.CHANNEL_DESTROY.*'] },
        });
        // Anything else still needs Crossbar, which is down: a temporary error.
        const other = stack.account();
        const refused = await client.subscribe(other.token, other.accountId, 'call.*.*');
        expect(refused.data).toMatchObject({ code: 'auth_unavailable', temporary: true });
      } finally {
        stack.crossbar.setFault(undefined);
      }
      await publishCall('CHANNEL_CREATE', a.accountId, 'dropped');
      await publishCall('CHANNEL_DESTROY', a.accountId, 'marker');
      await client.waitFor('CHANNEL_DESTROY');
      expect(client.named('CHANNEL_CREATE')).toEqual([]);
    });
  });
});
