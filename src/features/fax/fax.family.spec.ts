import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { subscribedExchange } from '../../amqp/family-subscription';
import {
  ALL_ACCOUNTS,
  InvalidBindingError,
  topicMatches,
  type BindingContext,
  type KazooMessage,
} from '../../core';
import {
  FAX_DOC_ACTIONS,
  FAX_DOCUMENT_EXCHANGE,
  FAX_STATUS_EXCHANGE,
  FaxFamily,
} from './fax.family';

interface StatusFixture {
  readonly exchange: string;
  readonly routing_key: string;
  readonly body: KazooMessage;
  readonly '_3.22_equivalent': { readonly socketio_frame: { name: string; args: KazooMessage } };
}

interface DocumentFixture {
  readonly exchange: string;
  readonly routing_key: string;
  readonly body: KazooMessage;
}

const FIXTURES = join(__dirname, '../../../test/fixtures/fax');
const loadStatus = (): StatusFixture =>
  JSON.parse(readFileSync(join(FIXTURES, '08-amqp-fax-status-4.3.json'), 'utf8')) as StatusFixture;
const loadUserDocument = (): DocumentFixture =>
  JSON.parse(
    readFileSync(join(FIXTURES, '11-amqp-configuration-doc_created-user.json'), 'utf8'),
  ) as DocumentFixture;

const ACCOUNT = '4b8c6fec4b2597882c0390202d195419';
const ACCOUNT_DB = 'account%2F4b%2F8c%2F6fec4b2597882c0390202d195419';
const OTHER_ACCOUNT = 'a'.repeat(32);
const OTHER_MODB = `account%2Faa%2Faa%2F${'a'.repeat(28)}-202611`;
const FAX_DOC_ID = '202611-6cd3e0ee7d0c8c2e3e8a5ba42b4cd1b3';

function newFamily(): FaxFamily {
  // The DiscoveryService is only read by FamilyRegistry.onModuleInit, which is not called.
  return new FaxFamily();
}

/** No fax key depends on the realm; asking for it would fail the test. */
const contextAt = (now: string, accountId = ACCOUNT): BindingContext => ({
  accountId,
  now: new Date(now),
  realm: () => Promise.reject(new Error('the fax family never needs the realm')),
});

/** A fax document change the way `kzs_publish` sends it, built on fixture 11's user document. */
function faxDocument(
  action: string,
  database: string,
  fields: KazooMessage = {},
): { body: KazooMessage; routingKey: string } {
  const body: KazooMessage = {
    ...loadUserDocument().body,
    ID: FAX_DOC_ID,
    Type: 'fax',
    Database: database,
    'Event-Name': action,
    ...fields,
  };
  return { body, routingKey: `${action}.${database}.fax.${FAX_DOC_ID}` };
}

describe('FaxFamily', () => {
  const family = newFamily();
  const november = contextAt('2026-11-26T09:00:00Z');

  it('offers the two Kazoo 4.x binding templates', () => {
    expect(family.availableBindings).toEqual(['fax.status.{FAX_ID}', 'fax.object.{ACTION}']);
  });

  it('consumes fax status from faxes and fax documents from configuration', () => {
    expect(subscribedExchange(FaxFamily.prototype.describeStatus)).toBe('faxes');
    expect(subscribedExchange(FaxFamily.prototype.describeDocument)).toBe('configuration');
    expect([FAX_STATUS_EXCHANGE, FAX_DOCUMENT_EXCHANGE]).toEqual(['faxes', 'configuration']);
  });

  describe('parseBinding: valid bindings', () => {
    const statusKeys = [{ exchange: 'faxes', routingKey: `fax.status.${ACCOUNT}.*` }];
    const documentKeys = (action: string) =>
      ['202610', '202611', '202612'].map((month) => ({
        exchange: 'configuration',
        routingKey: `${action}.${ACCOUNT_DB}-${month}.fax.*`,
      }));
    const cases: ReadonlyArray<
      readonly [string, string, ReadonlyArray<{ exchange: string; routingKey: string }>]
    > = [
      ['fax.status.*', 'fax.status.*.*', statusKeys],
      [
        'fax.status.201911-6cd3e0ee7d0c8c2e3e8a5ba42b4cd1b3',
        'fax.status.*.201911-6cd3e0ee7d0c8c2e3e8a5ba42b4cd1b3',
        statusKeys,
      ],
      ['fax.status.201911-abc.def', 'fax.status.*.201911-abc%2Edef', statusKeys],
      ['fax.status.201911-abc%2Edef', 'fax.status.*.201911-abc%2Edef', statusKeys],
      ['fax.status.job@fax.example', 'fax.status.*.job%40fax%2Eexample', statusKeys],
      ['fax.object.*', '*.*.fax.*', documentKeys('*')],
      ['fax.object.doc_created', 'doc_created.*.fax.*', documentKeys('doc_created')],
      ['fax.object.doc_edited', 'doc_edited.*.fax.*', documentKeys('doc_edited')],
      ['fax.object.doc_deleted', 'doc_deleted.*.fax.*', documentKeys('doc_deleted')],
    ];

    it.each(cases)('%s -> pattern %s', (binding, pattern, brokerKeys) => {
      const parsed = family.parseBinding(binding);
      expect(parsed.binding).toBe(binding);
      expect(parsed.pattern).toBe(pattern);
      expect(family.brokerKeys(parsed, november)).toEqual(brokerKeys);
    });

    it('raw and already-encoded fax ids give the same pattern', () => {
      expect(family.parseBinding('fax.status.201911-abc.def').pattern).toBe(
        family.parseBinding('fax.status.201911-abc%2Edef').pattern,
      );
    });
  });

  describe('parseBinding: invalid bindings', () => {
    const cases: ReadonlyArray<readonly [string, string]> = [
      ['fax', 'invalid format for fax subscription : '],
      ['fax.status', 'invalid format for fax subscription : status'],
      ['fax.status.', 'invalid format for fax subscription : status, '],
      ['fax.object', 'invalid format for fax subscription : object'],
      ['fax.object.', 'invalid format for fax subscription : object, '],
      ['fax.object.doc_moved', 'event doc_moved not supported'],
      ['fax.object.DOC_CREATED', 'event DOC_CREATED not supported'],
      ['fax.object.db_created', 'event db_created not supported'],
      ['fax.object.doc_created.x', 'invalid format for fax subscription : object, doc_created, x'],
      ['fax.other.x', 'invalid format for fax subscription : other, x'],
      ['fax.*.*', 'invalid format for fax subscription : *, *'],
      ['fax.#', 'invalid format for fax subscription : #'],
      ['fax.status.#', 'invalid format for fax subscription : status, #'],
      ['fax.status.abc.#', 'invalid format for fax subscription : status, abc, #'],
      ['fax.status.a#b', 'invalid format for fax subscription : status, a#b'],
      ['fax.object.#', 'invalid format for fax subscription : object, #'],
      ['fax.#.doc_created', 'invalid format for fax subscription : #, doc_created'],
      // A fax id may contain dots, but a wildcard is the whole id or nothing.
      ['fax.status.x.*', 'invalid format for fax subscription : status, x, *'],
      ['fax.status.*.*', 'invalid format for fax subscription : status, *, *'],
      ['fax.status.*.x', 'invalid format for fax subscription : status, *, x'],
      ['fax.status.ab*c', 'invalid format for fax subscription : status, ab*c'],
      ['fax.status.**', 'invalid format for fax subscription : status, **'],
      ['fax.object.*.*', 'invalid format for fax subscription : object, *, *'],
      ['fax.object.doc_*', 'event doc_* not supported'],
    ];

    it.each(cases)('%s -> %j', (binding, message) => {
      // An InvalidBindingError (code invalid_binding) with exactly this message.
      expect(() => family.parseBinding(binding)).toThrow(InvalidBindingError);
      expect(() => family.parseBinding(binding)).toThrow(new InvalidBindingError(message));
    });
  });

  describe('brokerKeys', () => {
    const modbKeys = (binding: string, now: string, accountId = ACCOUNT) =>
      family
        .brokerKeys(family.parseBinding(binding), contextAt(now, accountId))
        .map((key) => `${key.exchange}:${key.routingKey}`);

    it('binds one fax.status.<ACCOUNT>.* key per account, whatever the fax id', () => {
      expect(modbKeys('fax.status.*', '2026-11-26T09:00:00Z', OTHER_ACCOUNT)).toEqual([
        `faxes:fax.status.${OTHER_ACCOUNT}.*`,
      ]);
      expect(modbKeys('fax.status.201911-abc.def', '2026-11-26T09:00:00Z')).toEqual(
        modbKeys('fax.status.*', '2026-11-26T09:00:00Z'),
      );
      // Status keys do not move with the month.
      expect(modbKeys('fax.status.*', '2027-01-15T00:00:00Z')).toEqual(
        modbKeys('fax.status.*', '2026-11-26T09:00:00Z'),
      );
    });

    it.each([
      ['mid-month', '2026-11-26T09:00:00Z', ['202610', '202611', '202612']],
      ['last minute of November', '2026-11-30T23:59:00Z', ['202610', '202611', '202612']],
      ['last second of December', '2026-12-31T23:59:59Z', ['202611', '202612', '202701']],
      ['first second of January', '2027-01-01T00:00:00Z', ['202612', '202701', '202702']],
      ['mid-January', '2027-01-15T00:00:00Z', ['202612', '202701', '202702']],
    ])('binds last, this and next month around %s (%s)', (_label, now, months) => {
      expect(modbKeys('fax.object.doc_created', now)).toEqual(
        months.map((month) => `configuration:doc_created.${ACCOUNT_DB}-${month}.fax.*`),
      );
    });

    it('keeps a wildcard action as a * word, as Kazoo binds it', () => {
      expect(modbKeys('fax.object.*', '2026-12-31T23:59:59Z')).toEqual(
        ['202611', '202612', '202701'].map(
          (month) => `configuration:*.${ACCOUNT_DB}-${month}.fax.*`,
        ),
      );
    });

    it("covers every account for a superduper admin's ALL_ACCOUNTS, with an open database word", () => {
      const now = '2026-11-26T09:00:00Z';
      expect(modbKeys('fax.status.*', now, ALL_ACCOUNTS)).toEqual(['faxes:fax.status.*.*']);
      expect(modbKeys('fax.status.job@fax.example', now, ALL_ACCOUNTS)).toEqual([
        'faxes:fax.status.*.*',
      ]);
      expect(modbKeys('fax.object.doc_created', now, ALL_ACCOUNTS)).toEqual([
        'configuration:doc_created.*.fax.*',
      ]);
      expect(modbKeys('fax.object.*', now, ALL_ACCOUNTS)).toEqual(['configuration:*.*.fax.*']);
    });

    it('never widens a real account’s keys to another account', () => {
      const now = '2026-11-26T09:00:00Z';
      const [status] = modbKeys('fax.status.*', now).map((key) => key.split(':')[1]);
      expect(topicMatches(status, `fax.status.${OTHER_ACCOUNT}.x`)).toBe(false);
      for (const key of modbKeys('fax.object.*', now).map((k) => k.split(':')[1])) {
        expect(topicMatches(key, `doc_created.${OTHER_MODB}.fax.x`)).toBe(false);
      }
      expect(() => modbKeys('fax.status.*', now, '#')).toThrow('invalid account id');
    });

    it('names the MODB of the subscribing account only', () => {
      expect(modbKeys('fax.object.doc_edited', '2026-11-26T09:00:00Z', OTHER_ACCOUNT)).toEqual(
        ['202610', '202611', '202612'].map(
          (month) =>
            `configuration:doc_edited.account%2Faa%2Faa%2F${'a'.repeat(28)}-${month}.fax.*`,
        ),
      );
    });
  });

  describe('patterns against the routing keys Kazoo publishes', () => {
    const STATUS_KEY = `fax.status.${ACCOUNT}`;
    const DOC_KEY = `${ACCOUNT_DB}-202611.fax.${FAX_DOC_ID}`;
    const cases: ReadonlyArray<readonly [string, string, boolean]> = [
      ['fax.status.*', `${STATUS_KEY}.201911-6cd3e0ee7d0c8c2e3e8a5ba42b4cd1b3`, true],
      ['fax.status.*', `${STATUS_KEY}.201911-abc%2Edef`, true],
      ['fax.status.201911-abc.def', `${STATUS_KEY}.201911-abc%2Edef`, true],
      ['fax.status.201911-abc.def', `${STATUS_KEY}.201911-abc`, false],
      ['fax.status.201911-abc.def', `${STATUS_KEY}.201911-abc%2Edeg`, false],
      ['fax.status.job@fax.example', `${STATUS_KEY}.job%40fax%2Eexample`, true],
      ['fax.status.*', `doc_created.${DOC_KEY}`, false],
      ['fax.object.*', `doc_created.${DOC_KEY}`, true],
      ['fax.object.*', `doc_deleted.${DOC_KEY}`, true],
      ['fax.object.doc_created', `doc_created.${DOC_KEY}`, true],
      ['fax.object.doc_created', `doc_edited.${DOC_KEY}`, false],
      ['fax.object.doc_edited', `doc_edited.${DOC_KEY}`, true],
      ['fax.object.*', `doc_created.${ACCOUNT_DB}-202611.mailbox_message.x`, false],
      ['fax.object.*', `${STATUS_KEY}.x`, false],
    ];

    it.each(cases)('%s vs %s -> %s', (binding, routingKey, matches) => {
      expect(topicMatches(family.parseBinding(binding).pattern, routingKey)).toBe(matches);
    });
  });

  describe('describe: fax status', () => {
    it('reads the Kazoo 4.x status fixture, with the 3.22 normalized payload for legacy clients', () => {
      const fixture = loadStatus();
      const event = family.describeStatus(fixture.body, {
        exchange: fixture.exchange,
        routingKey: fixture.routing_key,
      });
      expect(event).toEqual({
        accountId: ACCOUNT,
        key: 'fax.status.4b8c6fec4b2597882c0390202d195419.201911-6cd3e0ee7d0c8c2e3e8a5ba42b4cd1b3',
        name: 'status',
        payload: fixture.body,
        legacyName: 'fax.status',
        legacyPayload: fixture['_3.22_equivalent'].socketio_frame.args,
      });
      expect(event?.legacyName).toBe(fixture['_3.22_equivalent'].socketio_frame.name);
      // The 4.x payload is the message itself, not a copy or a rewrite.
      expect(event?.payload).toBe(fixture.body);
    });

    it('leaves the message untouched while normalizing the legacy payload', () => {
      const fixture = loadStatus();
      const body: KazooMessage = {
        ...fixture.body,
        'Fax-Info': { 'Fax-Result-Code': 0, 'Fax-ECM-Used': true, 'Fax-Bad-Rows': null },
        'Callee-ID-Name': null,
      };
      const before = JSON.stringify(body);
      const event = family.describeStatus(body, {
        exchange: 'faxes',
        routingKey: fixture.routing_key,
      });
      expect(JSON.stringify(body)).toBe(before);
      expect(event?.legacyPayload?.fax_info).toEqual({ fax_result_code: 0, fax_ecm_used: true });
      expect(event?.legacyPayload).not.toHaveProperty('callee_id_name');
    });

    const KEY = `fax.status.${ACCOUNT}.201911-abc%2Edef`;
    const accounts: ReadonlyArray<readonly [string, KazooMessage, string, string | undefined]> = [
      ['Account-ID', { 'Account-ID': ACCOUNT }, 'fax.status.*.x', ACCOUNT],
      ['routing key only', {}, KEY, ACCOUNT],
      ['both (Account-ID wins)', { 'Account-ID': OTHER_ACCOUNT }, KEY, OTHER_ACCOUNT],
      ['empty Account-ID falls back', { 'Account-ID': '' }, KEY, ACCOUNT],
      ['non-string Account-ID falls back', { 'Account-ID': 42 }, KEY, ACCOUNT],
      ['neither: Kazoo keys such a status with *', {}, 'fax.status.*.201911-abc', undefined],
      ['routing key word not hex', {}, `fax.status.${'g'.repeat(32)}.x`, undefined],
      ['routing key word upper-case', {}, `fax.status.${ACCOUNT.toUpperCase()}.x`, undefined],
      ['routing key word too short', {}, `fax.status.${ACCOUNT.slice(1)}.x`, undefined],
      ['routing key without an account word', {}, 'fax.status', undefined],
    ];

    it.each(accounts)('account: %s', (_label, fields, routingKey, expected) => {
      const message: KazooMessage = { 'Event-Name': 'status', 'Job-ID': 'x', ...fields };
      const event = family.describeStatus(message, { exchange: 'faxes', routingKey });
      expect(event).toBeDefined();
      expect(event?.accountId).toBe(expected);
      expect(event?.key).toBe(routingKey);
    });

    it.each([['query_status'], ['STATUS'], [''], [42], [undefined]])(
      'returns undefined for Event-Name %j',
      (name) => {
        const fixture = loadStatus();
        const message: KazooMessage = { ...fixture.body, 'Event-Name': name };
        expect(
          family.describeStatus(message, { exchange: 'faxes', routingKey: fixture.routing_key }),
        ).toBeUndefined();
      },
    );
  });

  describe('describe: fax documents', () => {
    it('reads a fax document created in the account MODB', () => {
      const { body, routingKey } = faxDocument('doc_created', `${ACCOUNT_DB}-202611`);
      const event = family.describeDocument(body, { exchange: 'configuration', routingKey });
      expect(event).toEqual({
        accountId: ACCOUNT,
        key: `doc_created.${ACCOUNT_DB}-202611.fax.${FAX_DOC_ID}`,
        name: 'doc_created',
        payload: body,
        legacyName: 'doc_created_fax',
      });
      // Kazoo 3.x sent document events raw.
      expect(event?.legacyPayload).toBeUndefined();
      expect(event?.payload).toBe(body);
    });

    it.each(FAX_DOC_ACTIONS.map((action) => [action]))('emits %s', (action) => {
      const { body, routingKey } = faxDocument(action, `${ACCOUNT_DB}-202612`);
      const event = family.describeDocument(body, { exchange: 'configuration', routingKey });
      expect(event?.name).toBe(action);
      expect(event?.legacyName).toBe(`${action}_fax`);
    });

    // [label, Account-ID (absent when undefined), Database, expected account]
    const accounts: ReadonlyArray<readonly [string, unknown, string, string | undefined]> = [
      ['Account-ID', ACCOUNT, `${ACCOUNT_DB}-202611`, ACCOUNT],
      ['database only', undefined, `${ACCOUNT_DB}-202611`, ACCOUNT],
      ['both (the database wins)', OTHER_ACCOUNT, `${ACCOUNT_DB}-202611`, ACCOUNT],
      ['empty Account-ID', '', OTHER_MODB, OTHER_ACCOUNT],
      ['non-string Account-ID', 42, OTHER_MODB, OTHER_ACCOUNT],
      ['unencoded database name', undefined, `account/4b/8c/${ACCOUNT.slice(4)}-202611`, ACCOUNT],
    ];

    it.each(accounts)('account: %s', (_label, accountId, database, expected) => {
      const { body, routingKey } = faxDocument('doc_edited', database);
      const { 'Account-ID': _fixtureAccount, ...withoutAccount } = body;
      const message: KazooMessage =
        accountId === undefined ? withoutAccount : { ...withoutAccount, 'Account-ID': accountId };
      const event = family.describeDocument(message, { exchange: 'configuration', routingKey });
      expect(event).toBeDefined();
      expect(event?.accountId).toBe(expected);
    });

    // A superduper admin's `<action>.*.fax.*` brings faxes of any database; only an account's
    // MODB says whose a fax is, so the others are no fax events at all, whatever Account-ID says.
    it.each([
      ['a MODB of no account, with an Account-ID', ACCOUNT, 'faxes-202611'],
      ['a MODB of no account', undefined, 'faxes-202611'],
      ['the account database, not a MODB', ACCOUNT, ACCOUNT_DB],
    ])('emits nothing for %s', (_label, accountId, database) => {
      const { body, routingKey } = faxDocument('doc_edited', database);
      const { 'Account-ID': _fixtureAccount, ...withoutAccount } = body;
      const message: KazooMessage =
        accountId === undefined ? withoutAccount : { ...withoutAccount, 'Account-ID': accountId };
      expect(
        family.describeDocument(message, { exchange: 'configuration', routingKey }),
      ).toBeUndefined();
    });

    it('ignores the user document of fixture 11', () => {
      const fixture = loadUserDocument();
      expect(
        family.describeDocument(fixture.body, {
          exchange: fixture.exchange,
          routingKey: fixture.routing_key,
        }),
      ).toBeUndefined();
    });

    const ignored: ReadonlyArray<readonly [string, KazooMessage]> = [
      ['a voicemail message in the MODB', { Type: 'mailbox_message' }],
      ['a document without a type', { Type: undefined }],
      ['a fax type in the account database', { Database: ACCOUNT_DB }],
      ['a document without a database', { Database: undefined }],
      ['a non-string database', { Database: 202611 }],
      ['a database change', { 'Event-Name': 'db_created' }],
      ['an unknown action', { 'Event-Name': 'doc_moved' }],
      ['a fax status on configuration', { 'Event-Name': 'status' }],
    ];

    it.each(ignored)('ignores %s', (_label, fields) => {
      const { body, routingKey } = faxDocument('doc_created', `${ACCOUNT_DB}-202611`, fields);
      expect(
        family.describeDocument(body, { exchange: 'configuration', routingKey }),
      ).toBeUndefined();
    });

    it('never reads a document as a fax status, nor a status as a document', () => {
      const status = loadStatus();
      expect(
        family.describeDocument(status.body, {
          exchange: 'configuration',
          routingKey: status.routing_key,
        }),
      ).toBeUndefined();
      const { body, routingKey } = faxDocument('doc_created', `${ACCOUNT_DB}-202611`);
      expect(family.describeStatus(body, { exchange: 'faxes', routingKey })).toBeUndefined();
    });
  });
});
