import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  ALL_ACCOUNTS,
  InvalidBindingError,
  topicMatches,
  type BindingContext,
  type KazooMessage,
} from '../../core';
import {
  CONFERENCE_EVENTS,
  CONFERENCE_EXCHANGE,
  ConferenceFamily,
  LEGACY_CONFERENCE_EVENT_NAME,
} from './conference.family';

interface AmqpFixture {
  readonly exchange: string;
  readonly routing_key: string;
  readonly body: KazooMessage;
}

interface WsEventFixture {
  readonly subscribed_key: string;
  readonly subscription_key: string;
  readonly routing_key: string;
}

interface SocketIoFixture {
  readonly _amqp: { readonly exchange: string; readonly routing_key: string };
  readonly name: string;
  readonly args: KazooMessage;
}

const FIXTURES = join(__dirname, '../../../test/fixtures/conference');
const fixture = <T>(file: string): T => JSON.parse(readFileSync(join(FIXTURES, file), 'utf8')) as T;
const amqpFixture = () => fixture<AmqpFixture>('05-amqp-conference-event-4.3-add-member.json');
const wsFixture = () => fixture<WsEventFixture>('06-ws-4.3-event-conference-add-member.json');
const legacyFixture = () => fixture<SocketIoFixture>('07-socketio-3.22-participants_event.json');

const ACCOUNT = '4b8c6fec4b2597882c0390202d195419';
const OTHER_ACCOUNT = 'a'.repeat(32);
const CONF = '5edbfdd3b825314a71b0a05957392edb';

function newFamily(): ConferenceFamily {
  // parseBinding/describe never touch the ingress; a real one avoids casting it.
  return new ConferenceFamily();
}

function contextFor(accountId: string): BindingContext {
  return {
    accountId,
    now: new Date('2024-05-01T00:00:00Z'),
    realm: () => Promise.reject(new Error('conference bindings never need a realm')),
  };
}

/** Kazoo's key for an event (`kapi_conference:event_key/1`): only the call-id is encoded. */
const kazooKey = (event: string, account: string, conf: string, encodedCall: string) =>
  `conference.event.${event}.${account}.${conf}.${encodedCall}`;

describe('ConferenceFamily', () => {
  const family = newFamily();

  it("lists master's two binding templates and 4.3's per-event one", () => {
    expect(family.availableBindings).toEqual([
      'conference.event.{CONFERENCE_ID}',
      'conference.event.{CONFERENCE_ID}.{CALL_ID}',
      'conference.event.{CONFERENCE_ID}.*.{EVENT}',
    ]);
  });

  it("knows Kazoo 4.3's conference events (kapi_conference:events/0)", () => {
    expect(CONFERENCE_EVENTS).toEqual([
      'conference-create',
      'conference-destroy',
      'lock',
      'unlock',
      'add-member',
      'del-member',
      'stop-talking',
      'start-talking',
      'mute-member',
      'unmute-member',
      'deaf-member',
      'undeaf-member',
    ]);
  });

  describe('parseBinding: valid bindings', () => {
    // binding, pattern, the conference word of the broker key
    const cases: ReadonlyArray<readonly [string, string, string]> = [
      ['conference.event.*', 'conference.event.*.*.*.*', '*'],
      ['conference.event.*.*', 'conference.event.*.*.*.*', '*'],
      [`conference.event.${CONF}`, `conference.event.*.*.${CONF}.*`, CONF],
      [`conference.event.${CONF}.*`, `conference.event.*.*.${CONF}.*`, CONF],
      [`conference.event.${CONF}.934800819`, `conference.event.*.*.${CONF}.934800819`, CONF],
      ['conference.event.*.934800819', 'conference.event.*.*.*.934800819', '*'],
      [
        `conference.event.${CONF}.abc@10.0.0.1`,
        `conference.event.*.*.${CONF}.abc%4010%2E0%2E0%2E1`,
        CONF,
      ],
      [
        `conference.event.${CONF}.abc%4010%2E0%2E0%2E1`,
        `conference.event.*.*.${CONF}.abc%4010%2E0%2E0%2E1`,
        CONF,
      ],
      // Kazoo puts conference ids into its keys as they are (W15), so they are matched as they are.
      ['conference.event.sales@corp', 'conference.event.*.*.sales@corp.*', 'sales@corp'],
      ['conference.event.Team Room', 'conference.event.*.*.Team Room.*', 'Team Room'],
      ['conference.event.room%40x', 'conference.event.*.*.room%40x.*', 'room%40x'],
      // Call-ids with dots: only five words with `*` fourth are 4.3's per-event form.
      [
        `conference.event.${CONF}.abc@10.1.0.5`,
        `conference.event.*.*.${CONF}.abc%4010%2E1%2E0%2E5`,
        CONF,
      ],
      [
        `conference.event.${CONF}.x.add-member`,
        `conference.event.*.*.${CONF}.x%2Eadd-member`,
        CONF,
      ],
    ];

    it.each(cases)('%s -> pattern %s', (binding, pattern, conferenceWord) => {
      const parsed = family.parseBinding(binding);
      expect(parsed.binding).toBe(binding);
      expect(parsed.pattern).toBe(pattern);
      expect(family.brokerKeys(parsed, contextFor(ACCOUNT))).toEqual([
        {
          exchange: CONFERENCE_EXCHANGE,
          routingKey: `conference.event.*.${ACCOUNT}.${conferenceWord}.*`,
        },
      ]);
    });

    it('raw and already-encoded call-ids give the same pattern', () => {
      expect(family.parseBinding(`conference.event.${CONF}.abc@10.0.0.1`).pattern).toBe(
        family.parseBinding(`conference.event.${CONF}.abc%4010%2E0%2E0%2E1`).pattern,
      );
    });

    // Kazoo 4.3's per-event form: binding, pattern, broker key (= subscription key)
    const perEvent: ReadonlyArray<readonly [string, string, string]> = [
      [
        `conference.event.${CONF}.*.*`,
        `conference.event.*.*.${CONF}.*`,
        `conference.event.*.${ACCOUNT}.${CONF}.*`,
      ],
      [
        `conference.event.${CONF}.*.add-member`,
        `conference.event.add-member.*.${CONF}.*`,
        `conference.event.add-member.${ACCOUNT}.${CONF}.*`,
      ],
      [
        `conference.event.${CONF}.*.conference-destroy`,
        `conference.event.conference-destroy.*.${CONF}.*`,
        `conference.event.conference-destroy.${ACCOUNT}.${CONF}.*`,
      ],
      [
        'conference.event.*.*.del-member',
        'conference.event.del-member.*.*.*',
        `conference.event.del-member.${ACCOUNT}.*.*`,
      ],
      ...CONFERENCE_EVENTS.map(
        (event) =>
          [
            `conference.event.room-1.*.${event}`,
            `conference.event.${event}.*.room-1.*`,
            `conference.event.${event}.${ACCOUNT}.room-1.*`,
          ] as const,
      ),
    ];

    it.each(perEvent)('4.3 form %s -> pattern %s, key %s', (binding, pattern, key) => {
      const parsed = family.parseBinding(binding);
      expect(parsed.binding).toBe(binding);
      expect(parsed.pattern).toBe(pattern);
      expect(family.brokerKeys(parsed, contextFor(ACCOUNT))).toEqual([
        { exchange: CONFERENCE_EXCHANGE, routingKey: key },
      ]);
      // Kazoo 4.3's subscription key (bh_conference ?ACCOUNT_BINDING/4) is the broker key.
      expect(family.subscriptionKey(parsed, contextFor(ACCOUNT))).toBe(key);
    });

    it("shares master's key for `conference.event.<C>.*.*`, so both hold one broker binding", () => {
      const [master] = family.brokerKeys(
        family.parseBinding(`conference.event.${CONF}.*`),
        contextFor(ACCOUNT),
      );
      const [perEventWildcard] = family.brokerKeys(
        family.parseBinding(`conference.event.${CONF}.*.*`),
        contextFor(ACCOUNT),
      );
      expect(perEventWildcard).toEqual(master);
    });

    it('accepts the longest conference id whose broker key the broker can still bind', () => {
      const longest = 'c'.repeat(
        255 - 'conference.event.*.'.length - 32 - '.'.length - '.*'.length,
      );
      const parsed = family.parseBinding(`conference.event.${longest}`);
      const [key] = family.brokerKeys(parsed, contextFor(ACCOUNT));
      expect(Buffer.byteLength(key.routingKey)).toBe(255);
    });

    it('refuses a per-event binding whose event word would push the key past 255 bytes', () => {
      const longest = 'c'.repeat(
        255 - 'conference.event.*.'.length - 32 - '.'.length - '.*'.length,
      );
      expect(() => family.parseBinding(`conference.event.${longest}.*.*`)).not.toThrow();
      expect(() => family.parseBinding(`conference.event.${longest}.*.add-member`)).toThrow(
        new InvalidBindingError(
          `invalid format for conference subscription : event, ${longest}, *, add-member`,
        ),
      );
    });
  });

  describe('parseBinding: invalid bindings', () => {
    const invalid = (keys: string) => `invalid format for conference subscription : ${keys}`;
    const tooLong = 'c'.repeat(202);
    const cases: ReadonlyArray<readonly [string, string]> = [
      // Newer monster-ui's `conference.event.*.<C>.*` (Kazoo 4.3 refuses it too): a `*` call-id
      // word followed by more words is no call-id, and `*` is no conference id followed by one.
      [`conference.event.*.${CONF}.*`, invalid(`event, *, ${CONF}, *`)],
      [`conference.event.${CONF}.abc.*`, invalid(`event, ${CONF}, abc, *`)],
      [`conference.event.${CONF}.*.abc`, 'Unsupported conference event abc'],
      [`conference.event.${CONF}.*.*.*`, invalid(`event, ${CONF}, *, *, *`)],
      [`conference.event.${CONF}.*.add-member.x`, invalid(`event, ${CONF}, *, add-member, x`)],
      [`conference.event.${CONF}.*.`, invalid(`event, ${CONF}, *, `)],
      [`conference.event.${CONF}.ab*c`, invalid(`event, ${CONF}, ab*c`)],
      [`conference.event.${CONF}.abc@10.1.0.*`, invalid(`event, ${CONF}, abc@10, 1, 0, *`)],
      [`conference.event.${CONF}.**`, invalid(`event, ${CONF}, **`)],
      [`conference.event.${CONF}.*.#`, invalid(`event, ${CONF}, *, #`)],
      // 4.3's text for an event outside kapi_conference:events/0.
      [
        `conference.event.${CONF}.*.participants_event`,
        'Unsupported conference event participants_event',
      ],
      [`conference.event.${CONF}.*.ADD-MEMBER`, 'Unsupported conference event ADD-MEMBER'],
      [`conference.event.${CONF}.*.add-*`, 'Unsupported conference event add-*'],
      ['conference.event.*.*.kick-member', 'Unsupported conference event kick-member'],
      ['conference', invalid('')],
      ['conference.event', invalid('event')],
      ['conference.event.', invalid('event, ')],
      [`conference.event.${CONF}.`, invalid(`event, ${CONF}, `)],
      ['conference.events.x', invalid('events, x')],
      ['conference.EVENT.x', invalid('EVENT, x')],
      // Kazoo's command keys have no account: any tenant could watch any conference (W17).
      ['conference.command.x', invalid('command, x')],
      ['conference.command.*', invalid('command, *')],
      ['conference.#', invalid('#')],
      ['conference.event.#', invalid('event, #')],
      ['conference.event.*.#', invalid('event, *, #')],
      [`conference.event.${CONF}.#`, invalid(`event, ${CONF}, #`)],
      [`conference.event.${CONF}.abc.#`, invalid(`event, ${CONF}, abc, #`)],
      ['conference.event.ab#c', invalid('event, ab#c')],
      ['conference.event.call#1.*', invalid('event, call#1, *')],
      ['conference.event.ab*', invalid('event, ab*')],
      ['conference.event.*x.y', invalid('event, *x, y')],
      ['conference.event.**', invalid('event, **')],
      [`conference.event.${tooLong}`, invalid(`event, ${tooLong}`)],
      // Multi-byte characters count by the byte, as the broker counts them.
      [`conference.event.${'é'.repeat(101)}`, invalid(`event, ${'é'.repeat(101)}`)],
    ];

    it.each(cases)('%s -> %j', (binding, message) => {
      // An InvalidBindingError (code invalid_binding) with exactly this message.
      expect(() => family.parseBinding(binding)).toThrow(InvalidBindingError);
      expect(() => family.parseBinding(binding)).toThrow(new InvalidBindingError(message));
    });
  });

  describe('brokerKeys', () => {
    it("covers every account for a superduper admin's ALL_ACCOUNTS, never more for a real one", () => {
      const keysFor = (binding: string, accountId: string) =>
        family
          .brokerKeys(family.parseBinding(binding), contextFor(accountId))
          .map((key) => key.routingKey);
      const cases: ReadonlyArray<readonly [string, string, string]> = [
        ['conference.event.*', 'conference.event.*.*.*.*', `conference.event.*.${ACCOUNT}.*.*`],
        [
          `conference.event.${CONF}.934800819`,
          `conference.event.*.*.${CONF}.*`,
          `conference.event.*.${ACCOUNT}.${CONF}.*`,
        ],
        [
          `conference.event.${CONF}.*.add-member`,
          `conference.event.add-member.*.${CONF}.*`,
          `conference.event.add-member.${ACCOUNT}.${CONF}.*`,
        ],
      ];
      for (const [binding, everyAccount, oneAccount] of cases) {
        expect(keysFor(binding, ALL_ACCOUNTS)).toEqual([everyAccount]);
        expect(keysFor(binding, ACCOUNT)).toEqual([oneAccount]);
        const published = kazooKey('add-member', OTHER_ACCOUNT, CONF, CONF);
        expect(topicMatches(oneAccount, published)).toBe(false);
      }
      expect(() => keysFor('conference.event.*', '#')).toThrow('invalid account id');
    });

    it('puts the account into the key, so a node only receives its subscribers’ accounts', () => {
      const parsed = family.parseBinding('conference.event.*');
      expect(family.brokerKeys(parsed, contextFor(ACCOUNT))).toEqual([
        { exchange: 'conference', routingKey: `conference.event.*.${ACCOUNT}.*.*` },
      ]);
      expect(family.brokerKeys(parsed, contextFor(OTHER_ACCOUNT))).toEqual([
        { exchange: 'conference', routingKey: `conference.event.*.${OTHER_ACCOUNT}.*.*` },
      ]);
    });

    it('gives every binding on one conference the same key, whatever the call', () => {
      const keys = [
        `conference.event.${CONF}`,
        `conference.event.${CONF}.*`,
        `conference.event.${CONF}.934800819`,
        `conference.event.${CONF}.abc@10.0.0.1`,
      ].map((binding) => family.brokerKeys(family.parseBinding(binding), contextFor(ACCOUNT)));
      expect(new Set(keys.map((k) => JSON.stringify(k))).size).toBe(1);
    });

    it('is the subscription key Kazoo 4.3 uses (fixture 06)', () => {
      const ws = wsFixture();
      const parsed = family.parseBinding(ws.subscribed_key);
      expect(family.brokerKeys(parsed, contextFor(ACCOUNT))).toEqual([
        { exchange: CONFERENCE_EXCHANGE, routingKey: ws.subscription_key },
      ]);
    });

    it('routes the keys Kazoo publishes (fixture 05) to the node queue', () => {
      const { routing_key } = amqpFixture();
      for (const binding of [
        'conference.event.*',
        `conference.event.${CONF}`,
        `conference.event.${CONF}.934800819`,
      ]) {
        const [key] = family.brokerKeys(family.parseBinding(binding), contextFor(ACCOUNT));
        expect(topicMatches(key.routingKey, routing_key)).toBe(true);
      }
      const [foreign] = family.brokerKeys(
        family.parseBinding('conference.event.*'),
        contextFor(OTHER_ACCOUNT),
      );
      expect(topicMatches(foreign.routingKey, routing_key)).toBe(false);
    });
  });

  describe('subscriptionKey', () => {
    it('is what Kazoo 4.3 sends with master-form events (fixture 06)', () => {
      const ws = wsFixture();
      expect(
        family.subscriptionKey(family.parseBinding(ws.subscribed_key), contextFor(ACCOUNT)),
      ).toBe(ws.subscription_key);
    });

    it.each([
      [`conference.event.${CONF}`, `conference.event.*.${ACCOUNT}.${CONF}.*`],
      [`conference.event.*`, `conference.event.*.${ACCOUNT}.*.*`],
      // Master's ?ACCOUNT_BINDING/3 keeps the call-id; ours is encoded as it is matched.
      [`conference.event.${CONF}.934800819`, `conference.event.*.${ACCOUNT}.${CONF}.934800819`],
      [
        `conference.event.${CONF}.abc@10.1.0.5`,
        `conference.event.*.${ACCOUNT}.${CONF}.abc%4010%2E1%2E0%2E5`,
      ],
      [`conference.event.${CONF}.*.*`, `conference.event.*.${ACCOUNT}.${CONF}.*`],
      [`conference.event.${CONF}.*.add-member`, `conference.event.add-member.${ACCOUNT}.${CONF}.*`],
    ])('%s -> %s', (binding, key) => {
      expect(family.subscriptionKey(family.parseBinding(binding), contextFor(ACCOUNT))).toBe(key);
    });

    it('shows `*` as the account of a superduper admin', () => {
      expect(
        family.subscriptionKey(
          family.parseBinding(`conference.event.${CONF}.*.add-member`),
          contextFor(ALL_ACCOUNTS),
        ),
      ).toBe(`conference.event.add-member.*.${CONF}.*`);
    });
  });

  describe("pattern of 4.3's per-event form against the keys Kazoo publishes", () => {
    const encodedCall = 'abc%4010%2E1%2E0%2E5';
    // binding, key, matches
    const cases: ReadonlyArray<readonly [string, string, boolean]> = [
      [`conference.event.${CONF}.*.*`, kazooKey('add-member', ACCOUNT, CONF, encodedCall), true],
      [`conference.event.${CONF}.*.*`, kazooKey('conference-destroy', ACCOUNT, CONF, CONF), true],
      [
        `conference.event.${CONF}.*.add-member`,
        kazooKey('add-member', ACCOUNT, CONF, '934800819'),
        true,
      ],
      [
        `conference.event.${CONF}.*.add-member`,
        kazooKey('add-member', ACCOUNT, CONF, encodedCall),
        true,
      ],
      [
        `conference.event.${CONF}.*.add-member`,
        kazooKey('del-member', ACCOUNT, CONF, encodedCall),
        false,
      ],
      [
        `conference.event.${CONF}.*.add-member`,
        kazooKey('add-member', ACCOUNT, 'other', encodedCall),
        false,
      ],
      [
        'conference.event.*.*.mute-member',
        kazooKey('mute-member', ACCOUNT, 'other', encodedCall),
        true,
      ],
      [
        'conference.event.*.*.mute-member',
        kazooKey('unmute-member', ACCOUNT, CONF, encodedCall),
        false,
      ],
      // The account is compared by the core, not by the pattern.
      [
        `conference.event.${CONF}.*.add-member`,
        kazooKey('add-member', OTHER_ACCOUNT, CONF, 'x'),
        true,
      ],
    ];

    it.each(cases)('%s against %s -> %s', (binding, routingKey, matches) => {
      expect(topicMatches(family.parseBinding(binding).pattern, routingKey)).toBe(matches);
    });

    it("matches fixture 05's key with its pattern and its account's broker key", () => {
      const { routing_key } = amqpFixture();
      const parsed = family.parseBinding(`conference.event.${CONF}.*.add-member`);
      expect(topicMatches(parsed.pattern, routing_key)).toBe(true);
      const [key] = family.brokerKeys(parsed, contextFor(ACCOUNT));
      expect(topicMatches(key.routingKey, routing_key)).toBe(true);
      const [foreign] = family.brokerKeys(parsed, contextFor(OTHER_ACCOUNT));
      expect(topicMatches(foreign.routingKey, routing_key)).toBe(false);
    });
  });

  describe('pattern', () => {
    const key = kazooKey('add-member', ACCOUNT, CONF, 'abc%4010%2E0%2E0%2E1');
    // binding, key, matches
    const cases: ReadonlyArray<readonly [string, string, boolean]> = [
      ['conference.event.*', key, true],
      [`conference.event.${CONF}`, key, true],
      [`conference.event.${CONF}.*`, key, true],
      [`conference.event.${CONF}.abc@10.0.0.1`, key, true],
      [`conference.event.${CONF}.abc%4010%2E0%2E0%2E1`, key, true],
      ['conference.event.*.abc@10.0.0.1', key, true],
      [`conference.event.${CONF}.xyz@10.0.0.2`, key, false],
      [`conference.event.${CONF}.abc`, key, false],
      ['conference.event.other-conf', key, false],
      ['conference.event.*', kazooKey('conference-destroy', OTHER_ACCOUNT, 'other', 'other'), true],
      // The account is compared by the core, not by the pattern.
      [`conference.event.${CONF}`, kazooKey('del-member', OTHER_ACCOUNT, CONF, 'x'), true],
      // Not the 4.x shape.
      ['conference.event.*', `conference.event.${CONF}`, false],
      ['conference.event.*', `conference.command.${CONF}`, false],
      // A conference id with a dot breaks Kazoo's key (W15): it is never matched.
      ['conference.event.*', kazooKey('add-member', ACCOUNT, 'a.b', 'x'), false],
    ];

    it.each(cases)('%s against %s -> %s', (binding, routingKey, matches) => {
      expect(topicMatches(family.parseBinding(binding).pattern, routingKey)).toBe(matches);
    });

    it('matches a specific call-id against the call-id as Kazoo encodes it', () => {
      const pattern = family.parseBinding(`conference.event.${CONF}.abc@10.0.0.1`).pattern;
      expect(pattern).toBe(`conference.event.*.*.${CONF}.abc%4010%2E0%2E0%2E1`);
      expect(pattern.split('.')).toHaveLength(6);
    });
  });

  describe('describe', () => {
    it('reads the Kazoo add-member fixture', () => {
      const { exchange, routing_key, body } = amqpFixture();
      const event = family.describe(body, { exchange, routingKey: routing_key });
      expect(event).toEqual({
        accountId: ACCOUNT,
        key: routing_key,
        name: 'event',
        payload: body,
        legacyName: 'participants_event',
        legacyPayload: body,
      });
      // Both clients get the message itself, not a copy or a rewrite.
      expect(event?.payload).toBe(body);
      expect(event?.legacyPayload).toBe(body);
      expect(LEGACY_CONFERENCE_EVENT_NAME).toBe('participants_event');
    });

    it('leaves the message untouched', () => {
      const { routing_key, body } = amqpFixture();
      const before = JSON.stringify(body);
      family.describe(body, { exchange: 'conference', routingKey: routing_key });
      expect(JSON.stringify(body)).toBe(before);
    });

    it('uses the delivery routing key as the key, whatever the message says', () => {
      const routingKey = kazooKey('add-member', ACCOUNT, CONF, 'abc%4010%2E0%2E0%2E1');
      const event = family.describe(
        { 'Event-Name': 'event', 'Account-ID': ACCOUNT, 'Call-ID': 'other' },
        { exchange: 'conference', routingKey },
      );
      expect(event?.key).toBe(routingKey);
    });

    const keyOf = (account: string) => kazooKey('add-member', account, CONF, CONF);
    const accounts: ReadonlyArray<readonly [string, KazooMessage, string, string | undefined]> = [
      ['Account-ID', { 'Account-ID': ACCOUNT }, keyOf(OTHER_ACCOUNT), ACCOUNT],
      [
        'Custom-Channel-Vars when there is no Account-ID',
        { 'Custom-Channel-Vars': { 'Account-ID': ACCOUNT } },
        keyOf(OTHER_ACCOUNT),
        ACCOUNT,
      ],
      [
        'Account-ID before Custom-Channel-Vars, as kapi_conference:event_key/1',
        { 'Account-ID': ACCOUNT, 'Custom-Channel-Vars': { 'Account-ID': OTHER_ACCOUNT } },
        keyOf(OTHER_ACCOUNT),
        ACCOUNT,
      ],
      [
        'empty Account-ID falls back to Custom-Channel-Vars',
        { 'Account-ID': '', 'Custom-Channel-Vars': { 'Account-ID': ACCOUNT } },
        keyOf(OTHER_ACCOUNT),
        ACCOUNT,
      ],
      [
        'non-string Account-ID falls back to Custom-Channel-Vars',
        { 'Account-ID': 42, 'Custom-Channel-Vars': { 'Account-ID': ACCOUNT } },
        keyOf(OTHER_ACCOUNT),
        ACCOUNT,
      ],
      ['the routing key when the body has none', {}, keyOf(ACCOUNT), ACCOUNT],
      [
        'the routing key when Custom-Channel-Vars has none',
        { 'Custom-Channel-Vars': { 'Owner-ID': 'x' } },
        keyOf(ACCOUNT),
        ACCOUNT,
      ],
      [
        'the routing key when Custom-Channel-Vars is not an object',
        { 'Custom-Channel-Vars': OTHER_ACCOUNT },
        keyOf(ACCOUNT),
        ACCOUNT,
      ],
      [
        'the routing key when Custom-Channel-Vars is null',
        { 'Custom-Channel-Vars': null },
        keyOf(ACCOUNT),
        ACCOUNT,
      ],
      ['no account: a key word that is no account id', {}, keyOf('undefined'), undefined],
      ['no account: an upper-case key word', {}, keyOf(ACCOUNT.toUpperCase()), undefined],
      ['no account: a 31-character key word', {}, keyOf(ACCOUNT.slice(1)), undefined],
      ['no account: a wildcard key word', {}, keyOf('*'), undefined],
      ['no account: an empty key word', { 'Account-ID': '' }, keyOf(''), undefined],
    ];

    it.each(accounts)('account: %s', (_label, fields, routingKey, expected) => {
      const event = family.describe(
        { 'Event-Name': 'event', Event: 'add-member', ...fields },
        { exchange: 'conference', routingKey },
      );
      expect(event).toBeDefined();
      expect(event?.accountId).toBe(expected);
    });

    it.each([
      ['participants_event'],
      ['participant_event'],
      ['command'],
      ['EVENT'],
      ['add-member'],
      [''],
      [42],
      [null],
      [undefined],
    ])('returns undefined for Event-Name %j', (name) => {
      const { routing_key, body } = amqpFixture();
      const message: KazooMessage = { ...body, 'Event-Name': name };
      expect(
        family.describe(message, { exchange: 'conference', routingKey: routing_key }),
      ).toBeUndefined();
    });

    it("ignores Kazoo 3.22's participants_event, which has no account (fixture 07)", () => {
      const legacy = legacyFixture();
      expect(
        family.describe(legacy.args, {
          exchange: legacy._amqp.exchange,
          routingKey: legacy._amqp.routing_key,
        }),
      ).toBeUndefined();
    });

    it.each([
      [`conference.event.${CONF}`],
      [`conference.event.add-member.${ACCOUNT}.${CONF}`],
      [`conference.event.add-member.${ACCOUNT}.a.b.x`],
      [`conference.command.add-member.${ACCOUNT}.${CONF}.x`],
      [`call.event.add-member.${ACCOUNT}.${CONF}.x`],
    ])('returns undefined for an event on key %s, which is not the 4.x shape', (routingKey) => {
      const { body } = amqpFixture();
      expect(family.describe(body, { exchange: 'conference', routingKey })).toBeUndefined();
    });
  });
});
