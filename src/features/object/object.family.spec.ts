import { ObjectFamily } from './object.family';

const ACCOUNT = '4b8c6fec4b2597882c0390202d195419';
const DB = 'account%2F4b%2F8c%2F6fec4b2597882c0390202d195419';
const context = (now = '2026-11-26T12:00:00Z') => ({
  accountId: ACCOUNT,
  now: new Date(now),
  realm: () => Promise.reject(new Error('not needed')),
});

describe('ObjectFamily', () => {
  const family = new ObjectFamily();
  const keysOf = (binding: string, now?: string) =>
    family.brokerKeys(family.parseBinding(binding), context(now)).map((k) => k.routingKey);

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
    ['object.doc_moved.user', 'event doc_moved.* not supported'],
    ['object.doc_created.spaceship', 'event *.spaceship not supported'],
    ['object.doc_moved.spaceship', 'event doc_moved.spaceship not supported'],
    ['object.doc_created', 'invalid format for object subscription : doc_created'],
    [
      'object.doc_created.user.extra',
      'invalid format for object subscription : doc_created, user, extra',
    ],
    ['object.#', 'invalid format for object subscription : #'],
    ['doc_created.*.user', 'invalid format for object subscription : *, user'],
    ['doc_created.*.spaceship.*', 'event *.spaceship not supported'],
  ])('refuses %s', (binding, message) => {
    expect(() => family.parseBinding(binding)).toThrow(message);
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

    it('falls back to Account-ID for databases of no account, and to nothing at all', () => {
      const system = { exchange: 'configuration', routingKey: 'doc_edited.system_config.user.x' };
      expect(
        family.describe(
          { 'Event-Name': 'doc_edited', Database: 'system_config', 'Account-ID': ACCOUNT },
          system,
        )?.accountId,
      ).toBe(ACCOUNT);
      expect(
        family.describe({ 'Event-Name': 'doc_edited', Database: 'system_config' }, system)
          ?.accountId,
      ).toBeUndefined();
    });

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
