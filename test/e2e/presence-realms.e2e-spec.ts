import { randomBytes } from 'node:crypto';
import { defaultFeatures } from '../../src/features';
import { PRESENCE_EXCHANGE } from '../../src/features/presence/presence.family';
import { PresenceModule } from '../../src/features/presence/presence.module';
import { encodeRoutingWord } from '../../src/core/topics/routing-key-encoding';
import { brokerBindings } from '../support/amqp';
import type { EventClient } from '../support/clients';
import { presenceEvent } from '../support/presence-events';
import { Stack } from '../support/stack';
import { waitUntil } from '../support/wait';
import { replayLogOn } from '../support/replay-log-mode';

type Json = Record<string, unknown>;

const features = defaultFeatures.includes(PresenceModule)
  ? defaultFeatures
  : [...defaultFeatures, PresenceModule];

const field = (payload: unknown, name: string): unknown => (payload as Json)[name];
const realmOfEvent = (payload: unknown): string =>
  String(field(payload, 'Presence-ID')).split('@')[1];

/** A realm of this suite's own: no other node on the shared broker binds it. */
const isProbe = (callId: unknown): boolean => String(callId).startsWith('probe-');

const newRealm = (label: string): string =>
  `${label}-${randomBytes(6).toString('hex')}.sip.example.com`;

describe('presence realms follow Crossbar', () => {
  let stack: Stack;

  const account = (realm: string) => {
    const accountId = stack.crossbar.addAccount(undefined, undefined, { realm });
    return { accountId, token: stack.crossbar.issueToken(accountId) };
  };

  const subscribe = async (
    client: EventClient,
    who: { accountId: string; token: string },
  ): Promise<void> => {
    const ack = await client.subscribe(who.token, who.accountId, 'presence.dialog.*');
    expect(ack.status).toBe('success');
  };

  const publish = (realm: string, callId: string) => {
    const event = presenceEvent('dialog', realm, callId);
    return stack.publisher.publish(PRESENCE_EXCHANGE, event.routingKey, event.body);
  };

  const keysBound = async (): Promise<string[]> =>
    (await brokerBindings(stack.gateway.queuePrefix)).map((b) => b.routingKey);

  /**
   * Publishes probes on `realm` until `client` gets one: from then on the node routes the realm
   * to the client's account, whether it reads per-node queues (once bound) or the replay log.
   */
  const routedTo = (client: EventClient, realm: string): Promise<true> => {
    let probes = 0;
    return waitUntil(`${realm} to reach the client`, async () => {
      if (client.named('dialog_update').some((p) => isProbe(field(p, 'Call-ID')))) return true;
      await publish(realm, `probe-${probes++}`);
      return undefined;
    });
  };

  /** Call-IDs a client got, without the probes of `routedTo`. */
  const callsOf = (client: EventClient): unknown[] =>
    client
      .named('dialog_update')
      .map((p) => field(p, 'Call-ID'))
      .filter((callId) => !isProbe(callId));

  beforeAll(async () => {
    stack = await Stack.start({
      features,
      // Crossbar's answers are not cached, and realms are checked every second.
      env: { AUTH_CACHE_TTL_S: '0', PRESENCE_REALM_CHECK_S: '1' },
    });
  });

  afterEach(() => stack.closeClients());

  afterAll(async () => {
    await stack.close();
  });

  it("gives a realm moved from X to Y to Y alone, and X's new realm to X", async () => {
    const shared = newRealm('moved');
    const fresh = newRealm('fresh');
    const x = account(shared);
    const y = account(newRealm('y-before'));
    const xClient = await stack.connect('v4');
    const yClient = await stack.connect('v4');
    await subscribe(xClient, x);
    await publish(shared, 'x-before-move');
    await xClient.waitFor('dialog_update', (p) => field(p, 'Call-ID') === 'x-before-move');

    // An administrator gives X's realm to Y, and X another one; then Y subscribes.
    stack.crossbar.setRealm(x.accountId, fresh);
    stack.crossbar.setRealm(y.accountId, shared);
    await subscribe(yClient, y);
    // From Y's subscribe on, the realm is Y's or no one's: never X's.
    for (let i = 0; i < 5; i++) await publish(shared, `y-early-${i}`);

    // X's subscription follows its new realm; by then the shared realm is Y's alone.
    await routedTo(xClient, fresh);
    await publish(shared, 'y-marker');
    await publish(fresh, 'x-marker');
    await yClient.waitFor('dialog_update', (p) => field(p, 'Call-ID') === 'y-marker');
    await xClient.waitFor('dialog_update', (p) => field(p, 'Call-ID') === 'x-marker');

    expect(callsOf(xClient)).toEqual(['x-before-move', 'x-marker']);
    expect(new Set(yClient.named('dialog_update').map(realmOfEvent))).toEqual(new Set([shared]));
    if (!replayLogOn()) {
      // Per-node queues: the node's bindings followed the realms.
      const keys = await keysBound();
      expect(keys).toContain(`dialog.${encodeRoutingWord(shared)}.*`);
      expect(keys).toContain(`dialog.${encodeRoutingWord(fresh)}.*`);
    }
  });

  it('moves an account to its new realm without anyone else subscribing, at the next check', async () => {
    const first = newRealm('first');
    const second = newRealm('second');
    const x = account(first);
    const client = await stack.connect('v4');
    await subscribe(client, x);
    await publish(first, 'on-first');
    await client.waitFor('dialog_update', (p) => field(p, 'Call-ID') === 'on-first');

    stack.crossbar.setRealm(x.accountId, second);
    await routedTo(client, second);
    if (!replayLogOn()) {
      // Per-node queues: the old realm's binding is released once the new one is bound.
      await waitUntil(`dialog.${first}.* to be released`, async () =>
        (await keysBound()).includes(`dialog.${encodeRoutingWord(first)}.*`) ? undefined : true,
      );
    }
    await publish(first, 'on-first-after-move');
    await publish(second, 'on-second');
    await client.waitFor('dialog_update', (p) => field(p, 'Call-ID') === 'on-second');
    expect(callsOf(client)).toEqual(['on-first', 'on-second']);
  });
});
