import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ALL_ACCOUNTS, InvalidBindingError, type KazooMessage } from '../../core';
import { CALL_EVENTS, CALL_EXCHANGE, CallFamily } from './call.family';

interface AmqpFixture {
  readonly exchange: string;
  readonly routing_key: string;
  readonly body: KazooMessage;
}

const FIXTURE = join(__dirname, '../../../test/fixtures/call/02-amqp-callevt-CHANNEL_CREATE.json');
const loadFixture = (): AmqpFixture => JSON.parse(readFileSync(FIXTURE, 'utf8')) as AmqpFixture;

const ACCOUNT = '4b8c6fec4b2597882c0390202d195419';
const OTHER_ACCOUNT = 'a'.repeat(32);

function newFamily(): CallFamily {
  // parseBinding/describe never touch the ingress; a real one avoids casting it.
  return new CallFamily();
}

describe('CallFamily', () => {
  const family = newFamily();

  describe('parseBinding: valid bindings', () => {
    const cases: ReadonlyArray<readonly [string, string, readonly string[]]> = [
      ['call.CHANNEL_CREATE.*', 'call.CHANNEL_CREATE.*', ['call.CHANNEL_CREATE.*']],
      ['call.CHANNEL_DESTROY.*', 'call.CHANNEL_DESTROY.*', ['call.CHANNEL_DESTROY.*']],
      ['call.PARK_PARKED.*', 'call.PARK_PARKED.*', ['call.PARK_PARKED.*']],
      [
        'call.CHANNEL_CREATE.at6dmu4ffk97vnlp6qfq',
        'call.CHANNEL_CREATE.at6dmu4ffk97vnlp6qfq',
        ['call.CHANNEL_CREATE.*'],
      ],
      [
        'call.CHANNEL_ANSWER.abc@10.0.0.1',
        'call.CHANNEL_ANSWER.abc%4010%2E0%2E0%2E1',
        ['call.CHANNEL_ANSWER.*'],
      ],
      [
        'call.CHANNEL_ANSWER.abc%4010%2E0%2E0%2E1',
        'call.CHANNEL_ANSWER.abc%4010%2E0%2E0%2E1',
        ['call.CHANNEL_ANSWER.*'],
      ],
      [
        'call.CHANNEL_DESTROY.abc@10.1.0.5',
        'call.CHANNEL_DESTROY.abc%4010%2E1%2E0%2E5',
        ['call.CHANNEL_DESTROY.*'],
      ],
      ['call.*.xyz', 'call.*.xyz', CALL_EVENTS.map((e) => `call.${e}.*`)],
      ['call.*.a.b', 'call.*.a%2Eb', CALL_EVENTS.map((e) => `call.${e}.*`)],
      ['call.*.*', 'call.*.*', CALL_EVENTS.map((e) => `call.${e}.*`)],
    ];

    it.each(cases)('%s -> pattern %s', (binding, pattern, routingKeys) => {
      const parsed = family.parseBinding(binding);
      expect(parsed.binding).toBe(binding);
      expect(parsed.pattern).toBe(pattern);
      expect(family.brokerKeys(parsed)).toEqual(
        routingKeys.map((routingKey) => ({ exchange: CALL_EXCHANGE, routingKey })),
      );
    });

    it('call.*.* needs the nine call.<EVENT>.* keys on callevt', () => {
      const brokerKeys = family.brokerKeys(family.parseBinding('call.*.*'));
      expect(CALL_EXCHANGE).toBe('callevt');
      expect(brokerKeys).toHaveLength(9);
      expect(new Set(brokerKeys.map((k) => k.routingKey))).toEqual(
        new Set([
          'call.CHANNEL_CREATE.*',
          'call.CHANNEL_ANSWER.*',
          'call.CHANNEL_DESTROY.*',
          'call.CHANNEL_HOLD.*',
          'call.CHANNEL_UNHOLD.*',
          'call.CHANNEL_BRIDGE.*',
          'call.PARK_PARKED.*',
          'call.PARK_RETRIEVED.*',
          'call.PARK_ABANDONED.*',
        ]),
      );
      expect(brokerKeys.every((k) => k.exchange === 'callevt')).toBe(true);
    });

    it('raw and already-encoded call-ids give the same pattern', () => {
      expect(family.parseBinding('call.CHANNEL_ANSWER.abc@10.0.0.1').pattern).toBe(
        family.parseBinding('call.CHANNEL_ANSWER.abc%4010%2E0%2E0%2E1').pattern,
      );
    });
  });

  describe('parseBinding: invalid bindings', () => {
    const cases: ReadonlyArray<readonly [string, string]> = [
      ['call', 'invalid format for call subscription : '],
      ['call.CHANNEL_CREATE', 'invalid format for call subscription : CHANNEL_CREATE'],
      ['call.FOO.*', 'event FOO not supported'],
      ['call.channel_create.*', 'event channel_create not supported'],
      ['call.CHANNEL_EXECUTE.*', 'event CHANNEL_EXECUTE not supported'],
      ['call.#', 'invalid format for call subscription : #'],
      ['call.CHANNEL_CREATE.#', 'invalid format for call subscription : CHANNEL_CREATE, #'],
      ['call.*.#', 'invalid format for call subscription : *, #'],
      ['call.#.x', 'invalid format for call subscription : #, x'],
      // Kazoo judges the shape before the event, and a wildcard is a whole id or nothing.
      ['call.X.*.*', 'invalid format for call subscription : X, *, *'],
      ['call.CHANNEL_CREATE.*.*', 'invalid format for call subscription : CHANNEL_CREATE, *, *'],
      ['call.*.*.*', 'invalid format for call subscription : *, *, *'],
      ['call.*.abc.*', 'invalid format for call subscription : *, abc, *'],
      ['call.*.*.abc', 'invalid format for call subscription : *, *, abc'],
      ['call.CHANNEL_CREATE.ab*c', 'invalid format for call subscription : CHANNEL_CREATE, ab*c'],
      ['call.CHANNEL_CREATE.abc*', 'invalid format for call subscription : CHANNEL_CREATE, abc*'],
      [
        'call.CHANNEL_CREATE.abc@10.1.0.*',
        'invalid format for call subscription : CHANNEL_CREATE, abc@10, 1, 0, *',
      ],
      ['call.CHANNEL_*.*', 'event CHANNEL_* not supported'],
      ['call.FOO.abc@10.1.0.5', 'event FOO not supported'],
    ];

    it.each(cases)('%s -> %j', (binding, message) => {
      // An InvalidBindingError (code invalid_binding) with exactly this message.
      expect(() => family.parseBinding(binding)).toThrow(InvalidBindingError);
      expect(() => family.parseBinding(binding)).toThrow(new InvalidBindingError(message));
    });
  });

  describe('describe', () => {
    it('reads the Kazoo CHANNEL_CREATE fixture', () => {
      const fixture = loadFixture();
      const event = family.describe(fixture.body, {
        exchange: fixture.exchange,
        routingKey: fixture.routing_key,
      });
      expect(event).toEqual({
        accountId: ACCOUNT,
        key: 'call.CHANNEL_CREATE.at6dmu4ffk97vnlp6qfq',
        name: 'CHANNEL_CREATE',
        payload: fixture.body,
        // What Kazoo 4.3 shows its clients (fixture 03).
        routingKey: 'call.4b8c6fec4b2597882c0390202d195419.CHANNEL_CREATE.at6dmu4ffk97vnlp6qfq',
      });
      // The payload is the message itself, not a copy or a rewrite.
      expect(event?.payload).toBe(fixture.body);
    });

    it('gives Kazoo 4.x subscription keys, account first (fixture 03)', () => {
      const context = { accountId: ACCOUNT, now: new Date(), realm: () => Promise.resolve('') };
      expect(family.subscriptionKey(family.parseBinding('call.CHANNEL_CREATE.*'), context)).toBe(
        'call.4b8c6fec4b2597882c0390202d195419.CHANNEL_CREATE.*',
      );
      expect(family.subscriptionKey(family.parseBinding('call.*.abc@1.2'), context)).toBe(
        'call.4b8c6fec4b2597882c0390202d195419.*.abc%401%2E2',
      );
    });

    it('gives a superduper admin every account in the subscription key, and the same broker keys', () => {
      const context = {
        accountId: ALL_ACCOUNTS,
        now: new Date(),
        realm: () => Promise.reject(new Error('not needed')),
      };
      const parsed = family.parseBinding('call.CHANNEL_CREATE.*');
      expect(family.subscriptionKey(parsed, context)).toBe('call.*.CHANNEL_CREATE.*');
      expect(family.brokerKeys(parsed)).toEqual([
        { exchange: CALL_EXCHANGE, routingKey: 'call.CHANNEL_CREATE.*' },
      ]);
    });

    it('never puts anything but an account id or ALL_ACCOUNTS into the subscription key', () => {
      const context = { accountId: '#', now: new Date(), realm: () => Promise.resolve('') };
      expect(() =>
        family.subscriptionKey(family.parseBinding('call.CHANNEL_CREATE.*'), context),
      ).toThrow('invalid account id');
    });

    it('leaves the message untouched', () => {
      const fixture = loadFixture();
      const before = JSON.stringify(fixture.body);
      family.describe(fixture.body, { exchange: 'callevt', routingKey: fixture.routing_key });
      expect(JSON.stringify(fixture.body)).toBe(before);
    });

    it('uses the delivery routing key as the key, whatever the message says', () => {
      const message: KazooMessage = { 'Event-Name': 'CHANNEL_ANSWER', 'Call-ID': 'other' };
      const event = family.describe(message, {
        exchange: 'callevt',
        routingKey: 'call.CHANNEL_ANSWER.abc%4010%2E0%2E0%2E1',
      });
      expect(event?.key).toBe('call.CHANNEL_ANSWER.abc%4010%2E0%2E0%2E1');
      expect(event?.name).toBe('CHANNEL_ANSWER');
    });

    const accounts: ReadonlyArray<readonly [string, KazooMessage, string | undefined]> = [
      ['Custom-Channel-Vars only', { 'Custom-Channel-Vars': { 'Account-ID': ACCOUNT } }, ACCOUNT],
      ['top-level only', { 'Account-ID': ACCOUNT }, ACCOUNT],
      [
        'both (Custom-Channel-Vars wins)',
        { 'Custom-Channel-Vars': { 'Account-ID': ACCOUNT }, 'Account-ID': OTHER_ACCOUNT },
        ACCOUNT,
      ],
      [
        'empty Custom-Channel-Vars id falls back',
        { 'Custom-Channel-Vars': { 'Account-ID': '' }, 'Account-ID': OTHER_ACCOUNT },
        OTHER_ACCOUNT,
      ],
      [
        'Custom-Channel-Vars without an account falls back',
        { 'Custom-Channel-Vars': { 'Owner-ID': 'x' }, 'Account-ID': OTHER_ACCOUNT },
        OTHER_ACCOUNT,
      ],
      [
        'non-string Custom-Channel-Vars id falls back',
        { 'Custom-Channel-Vars': { 'Account-ID': 42 }, 'Account-ID': OTHER_ACCOUNT },
        OTHER_ACCOUNT,
      ],
      ['Custom-Channel-Vars not an object', { 'Custom-Channel-Vars': ACCOUNT }, undefined],
      ['neither', {}, undefined],
      ['empty top-level id', { 'Account-ID': '' }, undefined],
      ['null Custom-Channel-Vars', { 'Custom-Channel-Vars': null }, undefined],
    ];

    it.each(accounts)('account: %s', (_label, fields, expected) => {
      const message: KazooMessage = { 'Event-Name': 'CHANNEL_DESTROY', ...fields };
      const event = family.describe(message, {
        exchange: 'callevt',
        routingKey: 'call.CHANNEL_DESTROY.x',
      });
      expect(event).toBeDefined();
      expect(event?.accountId).toBe(expected);
    });

    it.each(CALL_EVENTS.map((name) => [name]))('emits %s', (name) => {
      const event = family.describe(
        { 'Event-Name': name, 'Account-ID': ACCOUNT },
        { exchange: 'callevt', routingKey: `call.${name}.x` },
      );
      expect(event?.name).toBe(name);
    });

    it.each([['CHANNEL_EXECUTE'], ['channel_create'], [''], [42], [undefined]])(
      'returns undefined for Event-Name %j',
      (name) => {
        const message: KazooMessage = { ...loadFixture().body, 'Event-Name': name };
        expect(
          family.describe(message, { exchange: 'callevt', routingKey: 'call.CHANNEL_EXECUTE.x' }),
        ).toBeUndefined();
      },
    );
  });
});
