import { createHash } from 'node:crypto';
import { exchangeReadersOf } from '../amqp/family-subscription';
import type { EventFamily } from '../core';
import { CALL_EXCHANGE, CallFamily } from '../features/call/call.family';
import { CONFERENCE_EXCHANGE, ConferenceFamily } from '../features/conference/conference.family';
import { FAX_STATUS_EXCHANGE, FaxFamily } from '../features/fax/fax.family';
import { CONFIGURATION_EXCHANGE, ObjectFamily } from '../features/object/object.family';
import { PRESENCE_EXCHANGE, PresenceFamily } from '../features/presence/presence.family';
import { readFixture } from '../../test/support/kazoo-events';
import {
  GREGORIAN_UNIX_OFFSET_S,
  KAZOO_EXCHANGES,
  callEvent,
  conferenceEvent,
  dialogUpdate,
  documentEvent,
  faxStatus,
  gregorianSeconds,
  mwiUpdate,
  presenceUpdate,
  type KazooAccount,
  type KazooCall,
  type KazooDelivery,
  type KazooDevice,
  type KazooDialog,
  type KazooJson,
} from './kazoo-events';

/** The ids the fixtures share (Kazoo's documentation examples). */
const ACCOUNT: KazooAccount = {
  id: '4b8c6fec4b2597882c0390202d195419',
  name: 'wefwefwefwef',
  realm: 'wefwefwefwef.2600hz.com',
};
const DEVICE: KazooDevice = {
  id: 'd509114b66efabf32dfd78dc464b46dd',
  ownerId: '699ed7e3d583e2577ac017c575f87262',
  username: 'user_wpxnx7am9w',
  extension: '356',
  name: 'web phone',
  userAgent: 'SIP.js/0.6.4',
  ip: '192.168.25.203',
};
const CALL: KazooCall = {
  account: ACCOUNT,
  callId: 'at6dmu4ffk97vnlp6qfq',
  device: DEVICE,
  dialed: '*97',
  fromTag: 'l530ecbu2f',
  toTag: '9tr3FZcKDaNHK',
  createdAt: new Date('2015-10-01T04:12:36Z'),
};

interface AmqpFixture {
  readonly exchange: string;
  readonly routing_key: string;
  readonly body: KazooJson;
}

const amqpFixture = (path: string): AmqpFixture => readFixture<AmqpFixture>(path);
const argsOf = (path: string): KazooJson => readFixture<{ args: KazooJson }>(path).args;
const keysOf = (object: unknown): string[] => Object.keys(object as object).sort();
const field = (body: KazooJson, key: string): KazooJson => body[key] as KazooJson;

/** The account the gateway's own family reads from a built message. */
function accountSeenBy(family: EventFamily, delivery: KazooDelivery): string | undefined {
  const reader = exchangeReadersOf(family).find((r) => r.exchange === delivery.exchange);
  return reader?.describe(delivery.body, delivery)?.accountId;
}

describe('Kazoo event builders', () => {
  it('publish on the exchanges the families consume', () => {
    expect(KAZOO_EXCHANGES).toEqual({
      call: CALL_EXCHANGE,
      conference: CONFERENCE_EXCHANGE,
      fax: FAX_STATUS_EXCHANGE,
      configuration: CONFIGURATION_EXCHANGE,
      presence: PRESENCE_EXCHANGE,
    });
  });

  it("stamp Kazoo's Gregorian seconds", () => {
    // Fixture 01's CHANNEL_CREATE: Msg-ID 1443672756993309 was taken at Unix 1443672756.
    expect(gregorianSeconds(new Date(1443672756_000))).toBe(63610891956);
    expect(gregorianSeconds(new Date(0))).toBe(GREGORIAN_UNIX_OFFSET_S);
  });

  describe('callEvent', () => {
    it("gives fixture 02's exchange, routing key and shape for its call", () => {
      const fixture = amqpFixture('call/02-amqp-callevt-CHANNEL_CREATE.json');
      const { exchange, routingKey, body } = callEvent('CHANNEL_CREATE', CALL, CALL.createdAt);
      expect(exchange).toBe(fixture.exchange);
      expect(routingKey).toBe(fixture.routing_key);
      expect(keysOf(body)).toEqual(keysOf(fixture.body));
      expect(keysOf(body['Custom-Channel-Vars'])).toEqual(
        keysOf(fixture.body['Custom-Channel-Vars']),
      );
      expect(field(body, 'Custom-Channel-Vars')['Account-ID']).toBe(ACCOUNT.id);
      expect(body).toMatchObject({
        'Call-ID': CALL.callId,
        'Event-Category': 'call_event',
        'Event-Name': 'CHANNEL_CREATE',
        Timestamp: fixture.body.Timestamp,
        From: fixture.body.From,
        Request: fixture.body.Request,
        'Presence-ID': fixture.body['Presence-ID'],
      });
      // ecallmgr's Msg-ID is the switch's microsecond timestamp (fixture 02 has 16 digits).
      expect(body['Msg-ID']).toBe(String(CALL.createdAt.getTime() * 1000));
      expect(String(body['Msg-ID'])).toHaveLength(String(fixture.body['Msg-ID']).length);
    });

    it('gives events of two legs taken in the same instant the same Msg-ID, as Kazoo does', () => {
      const other = { ...CALL, callId: `${CALL.callId}-b` };
      const at = new Date('2026-11-30T10:00:00.123Z');
      expect(callEvent('CHANNEL_CREATE', CALL, at).body['Msg-ID']).toBe(
        callEvent('CHANNEL_CREATE', other, at).body['Msg-ID'],
      );
    });

    it.each(['CHANNEL_ANSWER', 'CHANNEL_DESTROY'] as const)(
      "gives %s fixture 01's shape",
      (event) => {
        const fixture = argsOf(`call/01-socketio-3.22-${event}.json`);
        const answered: KazooCall = { ...CALL, answeredAt: new Date('2015-10-01T04:12:37Z') };
        const { routingKey, body } = callEvent(event, answered, new Date('2015-10-01T04:13:08Z'));
        expect(routingKey).toBe(`call.${event}.at6dmu4ffk97vnlp6qfq`);
        expect(keysOf(body)).toEqual(keysOf(fixture));
        expect(keysOf(body['Custom-Channel-Vars'])).toEqual(keysOf(fixture['Custom-Channel-Vars']));
        expect(body['Caller-ID-Name']).toBe(fixture['Caller-ID-Name']);
        expect(body['Caller-ID-Number']).toBe(fixture['Caller-ID-Number']);
      },
    );

    it('counts the seconds of a call on CHANNEL_DESTROY', () => {
      const answered: KazooCall = { ...CALL, answeredAt: new Date('2015-10-01T04:12:37Z') };
      const { body } = callEvent('CHANNEL_DESTROY', answered, new Date('2015-10-01T04:13:08Z'));
      expect(body).toMatchObject({
        'Duration-Seconds': '32',
        'Billing-Seconds': '31',
        'Ringing-Seconds': '1',
        'Hangup-Cause': 'NORMAL_CLEARING',
      });
      const missed = callEvent(
        'CHANNEL_DESTROY',
        { ...CALL, hangupCause: 'ORIGINATOR_CANCEL' },
        new Date('2015-10-01T04:12:46Z'),
      ).body;
      expect(missed).toMatchObject({ 'Billing-Seconds': '0', 'Hangup-Cause': 'ORIGINATOR_CANCEL' });
    });

    it('encodes SIP call-ids in the key as Kazoo does, and the gateway finds the account', () => {
      const call: KazooCall = { ...CALL, callId: '0_3581277614@192.168.25.203' };
      const delivery = callEvent('CHANNEL_CREATE', call);
      expect(delivery.routingKey).toBe('call.CHANNEL_CREATE.0_3581277614%40192%2E168%2E25%2E203');
      expect(delivery.body['Call-ID']).toBe(call.callId);
      expect(accountSeenBy(new CallFamily(), delivery)).toBe(ACCOUNT.id);
    });
  });

  describe('conferenceEvent', () => {
    const fixture = amqpFixture('conference/05-amqp-conference-event-4.3-add-member.json');
    const member = {
      account: ACCOUNT,
      conferenceId: '5edbfdd3b825314a71b0a05957392edb',
      instanceId: 'd5765180-53d5-4104-860e-b352f3f8e6b1',
      callId: '934800819',
      participantId: 20,
      device: { ...DEVICE, extension: '1000', name: 'sip1', username: 'sip1' },
      moderator: false,
    };

    it("gives fixture 05's exchange, routing key and shape for its member", () => {
      const { exchange, routingKey, body } = conferenceEvent('add-member', member);
      expect(exchange).toBe(fixture.exchange);
      expect(routingKey).toBe(fixture.routing_key);
      expect(keysOf(body)).toEqual(keysOf(fixture.body));
      expect(keysOf(body['Custom-Channel-Vars'])).toEqual(
        keysOf(fixture.body['Custom-Channel-Vars']),
      );
      expect(body['Conference-Channel-Vars']).toEqual(fixture.body['Conference-Channel-Vars']);
      expect(body['Account-ID']).toBe(ACCOUNT.id);
      expect(field(body, 'Custom-Channel-Vars')['Account-ID']).toBe(ACCOUNT.id);
      expect(body).toMatchObject({
        Event: 'add-member',
        'Event-Name': 'event',
        'Participant-ID': 20,
      });
    });

    it('keys del-member the same way, encoding the call-id only', () => {
      const delivery = conferenceEvent('del-member', { ...member, callId: 'a@10.0.0.1' });
      expect(delivery.routingKey).toBe(
        `conference.event.del-member.${ACCOUNT.id}.5edbfdd3b825314a71b0a05957392edb.a%4010%2E0%2E0%2E1`,
      );
      expect(accountSeenBy(new ConferenceFamily(), delivery)).toBe(ACCOUNT.id);
    });
  });

  describe('faxStatus', () => {
    const fixture = amqpFixture('fax/08-amqp-fax-status-4.3.json');
    const job = {
      account: ACCOUNT,
      jobId: '201911-6cd3e0ee7d0c8c2e3e8a5ba42b4cd1b3',
      faxboxId: 'b9e2a1c3d4e5f60718293a4b5c6d7e8f',
    };

    it("gives fixture 08's exchange, routing key and body for its job", () => {
      const { exchange, routingKey, body } = faxStatus(
        job,
        'prepare',
        'prepared document for send',
      );
      expect(exchange).toBe(fixture.exchange);
      expect(routingKey).toBe(fixture.routing_key);
      expect(keysOf(body)).toEqual(keysOf(fixture.body));
      const { 'Msg-ID': _ours, ...ours } = body;
      const { 'Msg-ID': _theirs, Node: _node, ...theirs } = fixture.body;
      expect(ours).toMatchObject(theirs);
    });

    it('adds Fax-Info and the page once sending, and the gateway finds the account', () => {
      const delivery = faxStatus(job, 'send', 'Sent Page 1 of 2', {
        page: 1,
        faxInfo: { 'Fax-Transferred-Pages': 1 },
      });
      expect(delivery.body).toMatchObject({
        'Fax-State': 'send',
        Page: 1,
        'Fax-Info': { 'Fax-Transferred-Pages': 1 },
      });
      expect(accountSeenBy(new FaxFamily(), delivery)).toBe(ACCOUNT.id);
    });
  });

  describe('documentEvent', () => {
    const fixture = amqpFixture('object/11-amqp-configuration-doc_created-user.json');
    const createdAt = new Date((63724349409 - GREGORIAN_UNIX_OFFSET_S) * 1000);
    const user = {
      account: ACCOUNT,
      type: 'user',
      id: 'c4c0ad092e57bc1d28e69bbd20dad932',
      revision: 1,
      createdAt,
    };

    it("gives fixture 11's exchange, routing key and body for its user", () => {
      const { exchange, routingKey, body } = documentEvent('doc_created', user, createdAt);
      expect(exchange).toBe(fixture.exchange);
      expect(routingKey).toBe(fixture.routing_key);
      expect(keysOf(body)).toEqual(keysOf(fixture.body));
      const { 'Msg-ID': _ours, Rev: rev, ...ours } = body;
      const { 'Msg-ID': _theirs, Rev: _rev, Node: _node, ...theirs } = fixture.body;
      expect(ours).toMatchObject(theirs);
      expect(rev).toMatch(/^1-[0-9a-f]{32}$/);
    });

    it("keeps Kazoo's swapped dates and marks deletions", () => {
      const later = new Date(createdAt.getTime() + 60_000);
      const edited = documentEvent('doc_edited', { ...user, revision: 2 }, later).body;
      expect(edited['Date-Modified']).toBe(gregorianSeconds(createdAt));
      expect(edited['Date-Created']).toBe(gregorianSeconds(later));
      expect(edited.Rev).toMatch(/^2-/);
      expect(edited['Is-Soft-Deleted']).toBe(false);
      const deleted = documentEvent('doc_deleted', { ...user, revision: 3 }, later);
      expect(deleted.routingKey).toMatch(/^doc_deleted\.account%2F4b%2F8c%2F/);
      expect(deleted.body['Is-Soft-Deleted']).toBe(true);
      expect(accountSeenBy(new ObjectFamily(), deleted)).toBe(ACCOUNT.id);
    });

    it('puts month documents (faxes) in the MODB, where the fax family finds them', () => {
      const month = new Date('2026-11-15T10:00:00Z');
      const fax = documentEvent('doc_created', {
        account: ACCOUNT,
        type: 'fax',
        id: '202611-6cd3e0ee7d0c8c2e3e8a5ba42b4cd1b3',
        revision: 1,
        createdAt: month,
        month,
      });
      expect(fax.routingKey).toBe(
        'doc_created.account%2F4b%2F8c%2F6fec4b2597882c0390202d195419-202611.fax.202611-6cd3e0ee7d0c8c2e3e8a5ba42b4cd1b3',
      );
      expect(fax.body.Database).toBe('account%2F4b%2F8c%2F6fec4b2597882c0390202d195419-202611');
      expect(accountSeenBy(new FaxFamily(), fax)).toBe(ACCOUNT.id);
    });
  });

  describe('presence', () => {
    const dialog: KazooDialog = {
      account: ACCOUNT,
      callId: '4f2a9c1e-77b1-4c1e-9d3a-5b6e0f8a2c10@10.26.0.81',
      fromUser: '1001',
      toUser: '1002',
      fromTag: '9Kr3XtH5ep0cN',
      toTag: 'a8F2kq0ZpN3vB',
      targetCallId: '8c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f@10.26.0.81',
    };
    const withoutIds = ({ 'Msg-ID': _m, Node: _n, ...rest }: KazooJson): KazooJson => rest;

    it('gives the dialog fixture for its dialog', () => {
      const fixture = amqpFixture('presence/dialog.json');
      const { exchange, routingKey, body } = dialogUpdate(dialog, 'early');
      expect(exchange).toBe(fixture.exchange);
      expect(routingKey).toBe(fixture.routing_key);
      expect(withoutIds(body)).toEqual(withoutIds(fixture.body));
    });

    it('gives the update fixture for its dialog, once answered', () => {
      const fixture = amqpFixture('presence/update.json');
      const { exchange, routingKey, body } = presenceUpdate(dialog, 'confirmed');
      expect(exchange).toBe(fixture.exchange);
      expect(routingKey).toBe(fixture.routing_key);
      expect(withoutIds(body)).toEqual(withoutIds(fixture.body));
    });

    it('gives the mwi_updates fixture for its mailbox', () => {
      const fixture = amqpFixture('presence/mwi_updates.json');
      const { exchange, routingKey, body } = mwiUpdate(ACCOUNT, '1001', { new: 2, saved: 0 });
      expect(exchange).toBe(fixture.exchange);
      expect(routingKey).toBe(fixture.routing_key);
      expect(withoutIds(body)).toEqual(withoutIds(fixture.body));
      expect(body['Call-ID']).toBe(
        createHash('md5').update('1001@wefwefwefwef.2600hz.com').digest('hex'),
      );
      expect(mwiUpdate(ACCOUNT, '1001', { new: 0, saved: 2 }).body['Messages-Waiting']).toBe('no');
    });

    it('is given back to the account whose realm it names', async () => {
      const family = new PresenceFamily();
      await family.brokerKeys(family.parseBinding('presence.dialog.*'), {
        accountId: ACCOUNT.id,
        now: new Date(),
        realm: () => Promise.resolve(ACCOUNT.realm),
      });
      expect(accountSeenBy(family, dialogUpdate(dialog, 'terminated'))).toBe(ACCOUNT.id);
    });
  });
});
