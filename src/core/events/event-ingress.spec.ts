import { readFixture } from '../../../test/support/kazoo-events';
import { CallFamily } from '../../features/call/call.family';
import { ConferenceFamily } from '../../features/conference/conference.family';
import { FaxFamily } from '../../features/fax/fax.family';
import { ObjectFamily } from '../../features/object/object.family';
import type {
  BindingContext,
  Delivery,
  EventFamily,
  ExchangeReader,
  FamilyBinding,
  KazooMessage,
} from '../families/event-family';
import type { EventMatch, OutboundEvent, Session, SessionGroup } from '../session';
import { SubscriptionRegistry } from '../subscriptions/subscription.registry';
import { Clock } from '../clock';
import {
  EventIngress,
  MalformedEventError,
  UnreadableMessage,
  kazooTimestampMs,
} from './event-ingress';
import { EventStats } from './event-stats';

const ACCOUNT = '4b8c6fec4b2597882c0390202d195419';
const OTHER = 'fedcba9876543210fedcba9876543210';
const MODB = 'account%2F4b%2F8c%2F6fec4b2597882c0390202d195419-202611';

interface AmqpFixture {
  readonly exchange: string;
  readonly routing_key: string;
  readonly body: KazooMessage;
}

/** A Kazoo call event as published on `callevt`, from the 3.22 capture (fixture 01). */
function callDelivery(name: 'CHANNEL_CREATE' | 'CHANNEL_ANSWER', accountId = ACCOUNT) {
  const { args } = readFixture<{ args: KazooMessage }>(`call/01-socketio-3.22-${name}.json`);
  const body: KazooMessage = {
    ...args,
    'Custom-Channel-Vars': { ...(args['Custom-Channel-Vars'] as object), 'Account-ID': accountId },
  };
  return {
    body,
    delivery: { exchange: 'callevt', routingKey: `call.${name}.${String(args['Call-ID'])}` },
  };
}

/** Kazoo 4.3's conference add-member event (fixture 05). */
function conferenceDelivery(msgId: string) {
  const fixture = readFixture<AmqpFixture>(
    'conference/05-amqp-conference-event-4.3-add-member.json',
  );
  return {
    body: { ...fixture.body, 'Msg-ID': msgId },
    delivery: { exchange: fixture.exchange, routingKey: fixture.routing_key },
  };
}

/** A fax document created in the account's November MODB (shape of fixture 11). */
function faxDocumentDelivery(id: string) {
  const fixture = readFixture<AmqpFixture>('object/11-amqp-configuration-doc_created-user.json');
  return {
    body: { ...fixture.body, ID: id, Type: 'fax', Database: MODB },
    delivery: { exchange: 'configuration', routingKey: `doc_created.${MODB}.fax.${id}` },
  };
}

class RecordingSession implements Session {
  readonly received: (readonly EventMatch[])[] = [];
  constructor(
    readonly id: string,
    readonly group?: SessionGroup,
  ) {}
  send(matches: readonly EventMatch[]): void {
    this.received.push(matches);
  }
  /** What each delivery looked like: `<family>:<binding>` per match. */
  get seen(): string[][] {
    return this.received.map((matches) =>
      matches.map((m) => `${m.event.family}:${m.subscription.binding.binding}`),
    );
  }
}

class RecordingGroup implements SessionGroup {
  readonly sent: { sessions: string[]; event: OutboundEvent }[] = [];
  readonly lists: (readonly Session[])[] = [];
  sendToAll(sessions: readonly Session[], event: OutboundEvent): void {
    this.sent.push({ sessions: sessions.map((s) => s.id), event });
    this.lists.push(sessions);
  }
}

const context = (accountId: string): BindingContext => ({
  accountId,
  now: new Date('2026-11-15T12:00:00Z'),
  realm: () => Promise.reject(new Error('not needed')),
});

describe('EventIngress', () => {
  const families: Record<string, EventFamily> = {
    call: new CallFamily(),
    conference: new ConferenceFamily(),
    fax: new FaxFamily(),
    object: new ObjectFamily(),
  };
  const call = families.call as CallFamily;
  const fax = families.fax as FaxFamily;
  const object = families.object as ObjectFamily;
  const readers: Record<string, ExchangeReader[]> = {
    callevt: [{ family: 'call', describe: (m, d) => call.describe(m, d) }],
    conference: [
      {
        family: 'conference',
        describe: (m, d) => (families.conference as ConferenceFamily).describe(m, d),
      },
    ],
    // The node reads `configuration` once, for both families that want it.
    configuration: [
      { family: 'fax', describe: (m, d) => fax.describeDocument(m, d) },
      { family: 'object', describe: (m, d) => object.describe(m, d) },
    ],
  };

  let registry: SubscriptionRegistry;
  let stats: EventStats;
  let ingress: EventIngress;

  beforeEach(() => {
    registry = new SubscriptionRegistry();
    stats = new EventStats();
    ingress = new EventIngress(registry, stats);
  });

  async function subscribe(session: Session, accountId: string, binding: string): Promise<void> {
    const family = families[binding.split('.')[0]];
    const parsed: FamilyBinding = family.parseBinding(binding);
    const keys = await family.brokerKeys(parsed, context(accountId));
    registry.add(session, accountId, binding.split('.')[0], parsed, keys);
  }

  function ingest(message: { body: KazooMessage; delivery: Delivery }): void {
    ingress.ingest(readers[message.delivery.exchange], message.body, message.delivery);
  }

  it("delivers distinct events that share a Msg-ID (ecallmgr's is a switch timestamp)", async () => {
    const session = new RecordingSession('s');
    await subscribe(session, ACCOUNT, 'call.*.*');
    await subscribe(session, ACCOUNT, 'conference.event.*');
    const answer = callDelivery('CHANNEL_ANSWER');
    // The captured conference event of the same instant carries the call event's Msg-ID.
    const conference = conferenceDelivery(String(answer.body['Msg-ID']));
    ingest(answer);
    ingest(conference);
    // Two legs of one instant: same Msg-ID, other call.
    ingest({
      body: { ...answer.body, 'Call-ID': 'second-leg' },
      delivery: { exchange: 'callevt', routingKey: 'call.CHANNEL_ANSWER.second-leg' },
    });
    expect(session.received.map(([m]) => [m.event.name, m.event.payload['Call-ID']])).toEqual([
      ['CHANNEL_ANSWER', 'at6dmu4ffk97vnlp6qfq'],
      ['event', '934800819'],
      ['CHANNEL_ANSWER', 'second-leg'],
    ]);
    expect(stats.snapshot()).toMatchObject({ received: 3, delivered: 3 });
  });

  it('hands a session every subscription a delivery matched, in subscription order, in one call', async () => {
    const session = new RecordingSession('s');
    await subscribe(session, ACCOUNT, 'call.CHANNEL_ANSWER.*');
    await subscribe(session, ACCOUNT, 'call.CHANNEL_CREATE.*');
    await subscribe(session, ACCOUNT, 'call.*.*');
    ingest(callDelivery('CHANNEL_CREATE'));
    expect(session.seen).toEqual([['call:call.CHANNEL_CREATE.*', 'call:call.*.*']]);
  });

  it('gives a session holding one pattern twice (raw and encoded id) both matches in one call', async () => {
    const session = new RecordingSession('s');
    await subscribe(session, ACCOUNT, 'call.*.leg@10.1.0.5');
    await subscribe(session, ACCOUNT, 'call.*.leg%4010%2E1%2E0%2E5');
    const { body } = callDelivery('CHANNEL_CREATE');
    ingest({
      body: { ...body, 'Call-ID': 'leg@10.1.0.5' },
      delivery: { exchange: 'callevt', routingKey: 'call.CHANNEL_CREATE.leg%4010%2E1%2E0%2E5' },
    });
    expect(session.seen).toEqual([
      ['call:call.*.leg@10.1.0.5', 'call:call.*.leg%4010%2E1%2E0%2E5'],
    ]);
  });

  it('hands a group the same session list until the subscriptions of the pattern change', async () => {
    const group = new RecordingGroup();
    const sessions = ['a', 'b', 'c'].map((id) => new RecordingSession(id, group));
    for (const session of sessions.slice(0, 2)) await subscribe(session, ACCOUNT, 'call.*.*');
    ingest(callDelivery('CHANNEL_CREATE'));
    ingest(callDelivery('CHANNEL_ANSWER'));
    await subscribe(sessions[2], ACCOUNT, 'call.*.*');
    ingest(callDelivery('CHANNEL_CREATE'));
    registry.removeAll(sessions[0]);
    ingest(callDelivery('CHANNEL_CREATE'));
    const lists = group.sent.map((sent) => sent.sessions);
    expect(lists).toEqual([
      ['a', 'b'],
      ['a', 'b'],
      ['a', 'b', 'c'],
      ['b', 'c'],
    ]);
    expect(group.lists[0]).toBe(group.lists[1]);
    expect(group.lists[1]).not.toBe(group.lists[2]);
  });

  it('merges the families reading one exchange, in subscription order, each with its own reading', async () => {
    const session = new RecordingSession('s');
    await subscribe(session, ACCOUNT, 'object.*.fax');
    await subscribe(session, ACCOUNT, 'fax.object.*');
    await subscribe(session, ACCOUNT, 'object.doc_created.*');
    for (let i = 0; i < 100; i++) ingest(faxDocumentDelivery(`fax-${i}`));
    // Every document once per session, past any window a de-duplication could have kept.
    expect(session.received).toHaveLength(100);
    expect(session.seen[99]).toEqual([
      'object:object.*.fax',
      'fax:fax.object.*',
      'object:object.doc_created.*',
    ]);
    const [first, second] = session.received[0];
    expect([first.event.legacyName, second.event.legacyName]).toEqual([
      'doc_created_fax',
      'doc_created_fax',
    ]);
    expect(first.event).not.toBe(second.event);
    expect(stats.snapshot()).toMatchObject({ received: 100, delivered: 100 });
  });

  it("never gives a session another account's event", async () => {
    const mine = new RecordingSession('mine');
    const theirs = new RecordingSession('theirs');
    await subscribe(mine, ACCOUNT, 'call.*.*');
    await subscribe(theirs, OTHER, 'call.*.*');
    ingest(callDelivery('CHANNEL_CREATE', ACCOUNT));
    ingest(callDelivery('CHANNEL_CREATE', OTHER));
    expect(mine.received.map(([m]) => m.event.accountId)).toEqual([ACCOUNT]);
    expect(theirs.received.map(([m]) => m.event.accountId)).toEqual([OTHER]);
  });

  it("gives a superduper admin's `*` subscriptions every account's events, merged in order", async () => {
    const admin = new RecordingSession('admin');
    await subscribe(admin, '*', 'call.*.*');
    await subscribe(admin, OTHER, 'call.CHANNEL_CREATE.*');
    ingest(callDelivery('CHANNEL_CREATE', ACCOUNT));
    ingest(callDelivery('CHANNEL_CREATE', OTHER));
    expect(admin.received.map((matches) => matches.map((m) => m.subscription.accountId))).toEqual([
      ['*'],
      ['*', OTHER],
    ]);
    expect(admin.received[1][0].event.accountId).toBe(OTHER);
  });

  it('counts a delivery no family could give an account, and sends it to no one', async () => {
    const session = new RecordingSession('s');
    await subscribe(session, ACCOUNT, 'call.*.*');
    const { body, delivery } = callDelivery('CHANNEL_CREATE');
    ingest({ body: { ...body, 'Custom-Channel-Vars': {} }, delivery });
    expect(session.received).toEqual([]);
    expect(stats.snapshot()).toMatchObject({ received: 1, dropped_without_account: 1 });
  });

  it('refuses what is not a Kazoo message', () => {
    const [reader] = readers.callevt;
    const delivery = { exchange: 'callevt', routingKey: 'call.CHANNEL_CREATE.x' };
    expect(() => ingress.ingest([reader], [1, 2], delivery)).toThrow(MalformedEventError);
    expect(() => ingress.ingest([reader], new UnreadableMessage('bad gzip'), delivery)).toThrow(
      'callevt::call.CHANNEL_CREATE.x: bad gzip',
    );
    expect(stats.snapshot()).toMatchObject({ received: 2, malformed: 2 });
  });

  it('broadcasts once per group and event, and keeps going past a session that throws', async () => {
    const group = new RecordingGroup();
    const a = new RecordingSession('a', group);
    const b = new RecordingSession('b', group);
    const broken: Session = {
      id: 'broken',
      send: () => {
        throw new Error('socket gone');
      },
    };
    const plain = new RecordingSession('plain');
    for (const session of [a, broken, b, plain]) await subscribe(session, ACCOUNT, 'call.*.*');
    ingest(callDelivery('CHANNEL_CREATE'));
    expect(group.sent.map((s) => s.sessions)).toEqual([['a', 'b']]);
    expect(group.sent[0].event.legacyName).toBe('CHANNEL_CREATE');
    expect(plain.received).toHaveLength(1);
    expect(stats.snapshot()).toMatchObject({ delivered: 3 });
  });

  describe('counters by exchange, family and reason (read by /metrics)', () => {
    const NOW_MS = Date.parse('2026-11-15T12:00:00Z');
    /** Kazoo's `Timestamp`: Gregorian seconds. */
    const gregorian = (unixMs: number): number => unixMs / 1000 + 62167219200;

    class FixedClock extends Clock {
      override now(): Date {
        return new Date(NOW_MS);
      }
    }

    beforeEach(() => {
      ingress = new EventIngress(registry, stats, new FixedClock());
    });

    const drops = (): Record<string, number> =>
      Object.fromEntries(stats.dropped().map((d) => [`${d.reason}/${d.family}`, d.count]));

    it('counts received per exchange, delivered per family and session, drops per reason and family', async () => {
      const group = new RecordingGroup();
      const grouped = [new RecordingSession('a', group), new RecordingSession('b', group)];
      const plain = new RecordingSession('plain');
      for (const session of [...grouped, plain]) await subscribe(session, ACCOUNT, 'call.*.*');
      await subscribe(plain, ACCOUNT, 'fax.object.*');

      ingest(callDelivery('CHANNEL_CREATE'));
      ingest(faxDocumentDelivery('f1'));
      // An account nobody here subscribed to.
      ingest(callDelivery('CHANNEL_ANSWER', OTHER));
      const { body, delivery } = callDelivery('CHANNEL_CREATE');
      ingest({ body: { ...body, 'Custom-Channel-Vars': {} }, delivery });
      expect(() => ingress.ingest(readers.callevt, [1], delivery)).toThrow(MalformedEventError);
      ingest({ body: { ...body, 'Event-Name': 'CHANNEL_EXECUTE' }, delivery });

      expect(Object.fromEntries(stats.receivedByExchange)).toEqual({
        callevt: 5,
        configuration: 1,
      });
      expect(Object.fromEntries(stats.deliveredByFamily)).toEqual({ call: 3, fax: 1 });
      expect(drops()).toEqual({
        // The fax document is an object event too: nobody here holds object bindings.
        'no_subscriber/object': 1,
        'no_subscriber/call': 1,
        'without_account/call': 1,
        'malformed/unknown': 1,
        'unread/unknown': 1,
      });
      expect(stats.snapshot()).toMatchObject({ received: 6, delivered: 4 });
    });

    it('counts what a throwing session did not take as send_failed, not delivered', async () => {
      const broken: Session = {
        id: 'broken',
        send: () => {
          throw new Error('socket gone');
        },
      };
      await subscribe(broken, ACCOUNT, 'call.*.*');
      ingest(callDelivery('CHANNEL_CREATE'));
      expect(drops()).toEqual({ 'send_failed/call': 1 });
      expect(stats.delivered).toBe(0);
    });

    it("observes the age of Kazoo's Timestamp once per session reached, and skips events without one", async () => {
      const group = new RecordingGroup();
      for (const id of ['a', 'b', 'c']) {
        await subscribe(new RecordingSession(id, group), ACCOUNT, 'call.*.*');
      }
      const { body, delivery } = callDelivery('CHANNEL_CREATE');
      ingest({ body: { ...body, Timestamp: gregorian(NOW_MS - 2500) }, delivery });
      // From a node whose clock is ahead: counted as just now.
      ingest({ body: { ...body, Timestamp: gregorian(NOW_MS + 3000) }, delivery });
      const { Timestamp: _dropped, ...untimed } = body;
      ingest({ body: untimed, delivery });
      ingest({ body: { ...body, Timestamp: '63610891956' }, delivery });

      const latency = stats.deliveryLatency.snapshot();
      expect(latency.count).toBe(6);
      expect(latency.sum).toBeCloseTo(3 * 2.5);
      const le = (bound: number): number => latency.cumulative[latency.bounds.indexOf(bound)];
      expect(le(0.005)).toBe(3);
      expect(le(2)).toBe(3);
      expect(le(5)).toBe(6);
      expect(stats.delivered).toBe(12);
    });
  });
});

describe('kazooTimestampMs', () => {
  it('turns Gregorian seconds into Unix milliseconds', () => {
    // From the 3.22 capture.
    expect(new Date(kazooTimestampMs({ Timestamp: 63610891956 }) ?? 0).toISOString()).toBe(
      '2015-10-01T04:12:36.000Z',
    );
  });

  it.each([undefined, '63610891956', Number.NaN, 0, 1700000000, null])(
    'has no time for Timestamp %p',
    (Timestamp) => {
      expect(kazooTimestampMs({ Timestamp })).toBeUndefined();
    },
  );
});
