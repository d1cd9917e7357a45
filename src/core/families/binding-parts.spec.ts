import { InvalidAccountError, InvalidBindingError } from '../errors';
import { accountWord, bindingId, wordAndId } from './binding-parts';
import { ALL_ACCOUNTS } from './event-family';

const EVENTS = ['CHANNEL_CREATE', 'CHANNEL_ANSWER'] as const;
const KINDS = ['dialog', 'mwi_updates'] as const;

describe('bindingId', () => {
  it.each([
    ['*', '*'],
    ['abc', 'abc'],
    ['abc@10.1.0.5', 'abc%4010%2E1%2E0%2E5'],
    ['abc%4010%2E1%2E0%2E5', 'abc%4010%2E1%2E0%2E5'],
    ['201911-abc.def', '201911-abc%2Edef'],
    ['alice smith', 'alice+smith'],
    // An encoded star is a literal character of the id, not a wildcard.
    ['ab%2Ac', 'ab%2Ac'],
  ])('%j -> %j', (id, expected) => {
    expect(bindingId(id)).toBe(expected);
  });

  it.each([[''], ['**'], ['ab*c'], ['*abc'], ['abc.*'], ['*.abc'], ['a.*.b'], ['#'], ['a#b']])(
    'refuses %j',
    (id) => {
      expect(bindingId(id)).toBeUndefined();
    },
  );
});

describe('wordAndId', () => {
  describe('with a wildcard word (call)', () => {
    const parse = (binding: string) => wordAndId('call', binding, { words: EVENTS, anyWord: true });

    it.each([
      ['call.CHANNEL_CREATE.*', { word: 'CHANNEL_CREATE', id: '*' }],
      ['call.*.*', { word: '*', id: '*' }],
      ['call.*.abc@10.0.0.1', { word: '*', id: 'abc%4010%2E0%2E0%2E1' }],
      ['call.*.abc%4010%2E0%2E0%2E1', { word: '*', id: 'abc%4010%2E0%2E0%2E1' }],
      ['call.CHANNEL_ANSWER.a.b.c', { word: 'CHANNEL_ANSWER', id: 'a%2Eb%2Ec' }],
    ])('%s', (binding, parts) => {
      expect(parse(binding)).toEqual(parts);
    });

    it.each([
      ['call', 'invalid format for call subscription : '],
      ['call.', 'invalid format for call subscription : '],
      ['call.CHANNEL_CREATE', 'invalid format for call subscription : CHANNEL_CREATE'],
      ['call.CHANNEL_CREATE.', 'invalid format for call subscription : CHANNEL_CREATE, '],
      ['call.#', 'invalid format for call subscription : #'],
      ['call.CHANNEL_CREATE.#', 'invalid format for call subscription : CHANNEL_CREATE, #'],
      ['call.#.x', 'invalid format for call subscription : #, x'],
      ['call..x', 'invalid format for call subscription : , x'],
      // Kazoo's bh_call judges the shape first: these are not "event X not supported".
      ['call.X.*.*', 'invalid format for call subscription : X, *, *'],
      ['call.CHANNEL_CREATE.*.*', 'invalid format for call subscription : CHANNEL_CREATE, *, *'],
      ['call.*.abc.*', 'invalid format for call subscription : *, abc, *'],
      ['call.*.ab*c', 'invalid format for call subscription : *, ab*c'],
      ['call.*.**', 'invalid format for call subscription : *, **'],
      ['call.FOO.*', 'event FOO not supported'],
      ['call.CHANNEL_*.*', 'event CHANNEL_* not supported'],
      ['call.**.*', 'event ** not supported'],
    ])('refuses %j with %j', (binding, message) => {
      expect(() => parse(binding)).toThrow(InvalidBindingError);
      expect(() => parse(binding)).toThrow(new InvalidBindingError(message));
    });
  });

  describe('without a wildcard word, judging the word first (presence)', () => {
    const parse = (binding: string) =>
      wordAndId('presence', binding, { words: KINDS, wordFirst: true });

    it.each([
      ['presence.dialog.*', { word: 'dialog', id: '*' }],
      ['presence.mwi_updates.alice smith', { word: 'mwi_updates', id: 'alice+smith' }],
    ])('%s', (binding, parts) => {
      expect(parse(binding)).toEqual(parts);
    });

    it.each([
      ['presence', 'invalid format for presence subscription : '],
      ['presence.#', 'invalid format for presence subscription : #'],
      ['presence.dialog', 'invalid format for presence subscription : dialog'],
      ['presence.dialog.*.*', 'invalid format for presence subscription : dialog, *, *'],
      ['presence.*.*', 'event * not supported'],
      ['presence.foo', 'event foo not supported'],
      ['presence.foo.*.*', 'event foo not supported'],
    ])('refuses %j with %j', (binding, message) => {
      expect(() => parse(binding)).toThrow(new InvalidBindingError(message));
    });
  });
});

describe('accountWord', () => {
  it('keeps an account id and gives `*` for every account', () => {
    expect(accountWord('4b8c6fec4b2597882c0390202d195419')).toBe(
      '4b8c6fec4b2597882c0390202d195419',
    );
    expect(accountWord(ALL_ACCOUNTS)).toBe('*');
  });

  it.each([[''], ['#'], ['a.b'], ['4B8C6FEC4B2597882C0390202D195419'], ['*x'], ['abc']])(
    'never puts %j into a key',
    (accountId) => {
      expect(() => accountWord(accountId)).toThrow(InvalidAccountError);
    },
  );
});
