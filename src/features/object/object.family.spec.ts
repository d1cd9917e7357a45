import { ALL_ACCOUNTS, InvalidBindingError, topicMatches } from '../../core';
import { ObjectFamily } from './object.family';

const ACCOUNT = '4b8c6fec4b2597882c0390202d195419';
const DB = 'account%2F4b%2F8c%2F6fec4b2597882c0390202d195419';
const OTHER_DB = `account%2Faa%2Faa%2F${'a'.repeat(28)}`;
const context = (now = '2026-11-26T12:00:00Z', accountId = ACCOUNT) => ({
  accountId,
  now: new Date(now),
  realm: () => Promise.reject(new Error('not needed')),
});

describe('ObjectFamily', () => {
  const family = new ObjectFamily();
  const keysOf = (binding: string, now?: string, accountId?: string) =>
    family
      .brokerKeys(family.parseBinding(binding), context(now, accountId))
      .map((k) => k.routingKey);

  it.each([
    ['object.doc_created.user', 'doc_created.*.user.*', [`doc_created.${DB}.user.*`]],
    ['object.*.device', '*.*.device.*', [`*.${DB}.device.*`]],
    [
      'object.doc_edited.mailbox_message',
      'doc_edited.*.mailbox_message.*',
      ['202610', '202611', '202612'].map((m) => `doc_edited.${DB}-${m}.mailbox_message.*`),
    ],
    [
      'object.*.*',
      '*.*.*.*',
      [`*.${DB}.*.*`, ...['202610', '202611', '202612'].map((m) => `*.${DB}-${m}.*.*`)],
    ],
    ['doc_created.*.user.*', 'doc_created.*.user.*', [`doc_created.${DB}.user.*`]],
    [
      'doc_deleted.whatever.vmbox.box@1.2',
      'doc_deleted.*.vmbox.box%401%2E2',
      [`doc_deleted.${DB}.vmbox.*`],
    ],
    [
      'doc_edited.*.fax.*',
      'doc_edited.*.fax.*',
      ['202610', '202611', '202612'].map((m) => `doc_edited.${DB}-${m}.fax.*`),
    ],
    [`doc_created.${DB}.user.*`, 'doc_created.*.user.*', [`doc_created.${DB}.user.*`]],
    [
      'doc_edited.*.device.dev.1@x',
      'doc_edited.*.device.dev%2E1%40x',
      [`doc_edited.${DB}.device.*`],
    ],
  ])('%s -> pattern %s', (binding, pattern, keys) => {
    expect(family.parseBinding(binding).pattern).toBe(pattern);
    expect(keysOf(binding)).toEqual(keys);
  });

  it('moves month databases across a year end', () => {
    expect(keysOf('object.doc_created.fax', '2026-12-31T23:00:00Z')).toEqual(
      ['202611', '202612', '202701'].map((m) => `doc_created.${DB}-${m}.fax.*`),
    );
    expect(keysOf('object.doc_created.fax', '2027-01-01T00:00:00Z')).toEqual(
      ['202612', '202701', '202702'].map((m) => `doc_created.${DB}-${m}.fax.*`),
    );
  });

  it.each([
    // Kazoo 4.x's texts, one per shape of <ACTION>.<TYPE> (bh_object:validate/2).
    ['object.doc_moved.user', 'event doc_moved.user not supported'],
    ['object.doc_created.spaceship', 'event doc_created.spaceship not supported'],
    ['object.doc_moved.spaceship', 'event doc_moved.spaceship not supported'],
    ['object.doc_moved.*', 'event doc_moved.* not supported'],
    ['object.*.spaceship', 'event *.spaceship not supported'],
    ['object.doc_*.user', 'event doc_*.user not supported'],
    ['object.*.us*', 'event *.us* not supported'],
    ['object.doc_created', 'invalid format for object subscription : doc_created'],
    [
      'object.doc_created.user.extra',
      'invalid format for object subscription : doc_created, user, extra',
    ],
    // The 4.x object form is exactly three words.
    ['object.*.user.*', 'invalid format for object subscription : *, user, *'],
    ['object.*.*.*', 'invalid format for object subscription : *, *, *'],
    ['object.#', 'invalid format for object subscription : #'],
    ['object.*.#', 'invalid format for object subscription : *, #'],
    // Kazoo 3.x: <ACTION>.<DB|*>.<TYPE>.<ID|*>, the first word being the action.
    ['doc_created.*.user', 'invalid format for object subscription : *, user'],
    ['doc_created.*.spaceship.*', 'event doc_created.spaceship not supported'],
    ['doc_created.*.user.ab*c', 'invalid format for object subscription : *, user, ab*c'],
    ['doc_created.*.user.abc.*', 'invalid format for object subscription : *, user, abc, *'],
    ['doc_created.*.user.*.*', 'invalid format for object subscription : *, user, *, *'],
    ['doc_created.*.user.#', 'invalid format for object subscription : *, user, #'],
    ['doc_created.*.user.', 'invalid format for object subscription : *, user, '],
    ['doc_created.acc*.user.*', 'invalid format for object subscription : acc*, user, *'],
    ['doc_created..user.*', 'invalid format for object subscription : , user, *'],
    // 3.22 bound nothing for a `*` type: the 3.x form names one.
    ['doc_created.*.*.*', 'invalid format for object subscription : *, *, *'],
    ['doc_created.*.us*.*', 'invalid format for object subscription : *, us*, *'],
  ])('refuses %s', (binding, message) => {
    expect(() => family.parseBinding(binding)).toThrow(new InvalidBindingError(message));
  });

  describe("a superduper admin's ALL_ACCOUNTS", () => {
    it.each([
      ['object.doc_created.user', ['doc_created.*.user.*']],
      ['object.*.device', ['*.*.device.*']],
      ['object.doc_edited.mailbox_message', ['doc_edited.*.mailbox_message.*']],
      ['object.*.*', ['*.*.*.*']],
      ['doc_deleted.*.vmbox.*', ['doc_deleted.*.vmbox.*']],
    ])('%s binds %j: no database names every account', (binding, keys) => {
      expect(keysOf(binding, undefined, ALL_ACCOUNTS)).toEqual(keys);
    });

    it('never widens a real account’s keys to another account', () => {
      for (const binding of ['object.*.*', 'object.doc_created.user', 'object.*.fax']) {
        for (const key of keysOf(binding)) {
          expect(topicMatches(key, `doc_created.${OTHER_DB}.user.x`)).toBe(false);
          expect(topicMatches(key, `doc_created.${OTHER_DB}-202611.fax.x`)).toBe(false);
        }
      }
      expect(() => keysOf('object.*.*', undefined, '#')).toThrow('invalid account id');
    });
  });

  it('lists every action and type for GET /v2/websockets', () => {
    expect(family.availableBindings).toHaveLength(30);
    expect(family.availableBindings).toContain('object.doc_created.call_recording');
  });

  describe('describe', () => {
    const delivery = { exchange: 'configuration', routingKey: `doc_created.${DB}.user.abc` };

    it('names events <Event-Name>_<Type> for 3.x clients and keeps Kazoo names for 4.x', () => {
      const message = { 'Event-Name': 'doc_created', Type: 'user', Database: DB, ID: 'abc' };
      expect(family.describe(message, delivery)).toEqual({
        accountId: ACCOUNT,
        key: delivery.routingKey,
        name: 'doc_created',
        payload: message,
        legacyName: 'doc_created_user',
      });
    });

    it('takes the tenant from the database, not from a contradicting Account-ID', () => {
      const message = {
        'Event-Name': 'doc_edited',
        Type: 'user',
        Database: DB,
        'Account-ID': 'f'.repeat(32),
      };
      expect(family.describe(message, delivery)?.accountId).toBe(ACCOUNT);
    });

    // Such documents only reach the node through a superduper admin's open database word; an
    // Account-ID must not hand them to that account's subscribers, whose keys never bring them.
    it.each([['system_config'], ['accounts'], ['faxes-202611']])(
      'emits nothing for documents of %s, a database of no account, whatever Account-ID says',
      (database) => {
        const delivery = {
          exchange: 'configuration',
          routingKey: `doc_edited.${database}.user.x`,
        };
        expect(
          family.describe(
            { 'Event-Name': 'doc_edited', Type: 'user', Database: database, 'Account-ID': ACCOUNT },
            delivery,
          ),
        ).toBeUndefined();
        expect(
          family.describe(
            { 'Event-Name': 'doc_edited', Type: 'user', Database: database },
            delivery,
          ),
        ).toBeUndefined();
      },
    );

    it('reads MODB documents as their account', () => {
      const modb = `${DB}-202611`;
      const message = { 'Event-Name': 'doc_created', Type: 'fax', Database: modb };
      expect(
        family.describe(message, {
          exchange: 'configuration',
          routingKey: `doc_created.${modb}.fax.x`,
        })?.accountId,
      ).toBe(ACCOUNT);
    });

    it('ignores database events', () => {
      expect(
        family.describe({ 'Event-Name': 'db_created', Database: DB }, delivery),
      ).toBeUndefined();
    });
  });
});
