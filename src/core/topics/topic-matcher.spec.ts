import { topicMatches } from './topic-matcher';

describe('topicMatches', () => {
  // [pattern, routing key, expected]
  const cases: ReadonlyArray<readonly [string, string, boolean]> = [
    // exact words
    ['a.b.c', 'a.b.c', true],
    ['a.b.c', 'a.b.d', false],
    ['a.b.c', 'a.b', false],
    ['a.b', 'a.b.c', false],
    ['abc', 'ab', false],
    // `*`: exactly one word, at each position
    ['*.b.c', 'x.b.c', true],
    ['a.*.c', 'a.x.c', true],
    ['a.b.*', 'a.b.x', true],
    ['a.*.c', 'a.c', false],
    ['a.*.c', 'a.x.y.c', false],
    ['a.b.*', 'a.b', false],
    ['*', 'a', true],
    ['*', 'a.b', false],
    ['*.*', 'a.b', true],
    ['*.*', 'a', false],
    // `#` alone and repeated
    ['#', 'a', true],
    ['#', 'a.b.c', true],
    ['#', '', true],
    ['#.#', 'a.b.c', true],
    ['#.#', 'a', true],
    // `#` at the start
    ['#.c', 'c', true],
    ['#.c', 'a.b.c', true],
    ['#.c', 'a.b.d', false],
    // `#` at the end
    ['a.#', 'a', true],
    ['a.#', 'a.b.c', true],
    ['a.#', 'b.a', false],
    // `#` in the middle: zero, one or several words
    ['a.#.b', 'a.b', true],
    ['a.#.b', 'a.x.b', true],
    ['a.#.b', 'a.x.y.b', true],
    ['a.#.b', 'a.b.c', false],
    ['a.#.b', 'a', false],
    ['call.#.abc', 'call.x.y.abc', true],
    ['call.#.abc', 'call.x.y.abd', false],
    ['#.*.c', 'c', false],
    ['#.*.c', 'a.c', true],
    // empty words are words
    ['a..b', 'a..b', true],
    ['a.*.b', 'a..b', true],
    ['a..b', 'a.b', false],
    ['a.#', 'a.', true],
    // `*` and `#` in a key are literal words, not wildcards
    ['a.b', 'a.*', false],
    ['a.b', 'a.#', false],
    // Kazoo call keys
    ['call.*.xyz', 'call.CHANNEL_DESTROY.xyz', true],
    ['call.*.xyz', 'call.CHANNEL_DESTROY.xyzw', false],
    ['call.CHANNEL_CREATE.*', 'call.CHANNEL_CREATE.at6dmu4ffk97vnlp6qfq', true],
    ['call.CHANNEL_CREATE.*', 'call.CHANNEL_ANSWER.at6dmu4ffk97vnlp6qfq', false],
    ['call.CHANNEL_ANSWER.abc%4010%2E0%2E0%2E1', 'call.CHANNEL_ANSWER.abc%4010%2E0%2E0%2E1', true],
    // an unencoded dotted id in a pattern no longer lines up word for word
    ['call.CHANNEL_ANSWER.abc@10.0.0.1', 'call.CHANNEL_ANSWER.abc%4010%2E0%2E0%2E1', false],
    // case matters
    ['call.channel_create.*', 'call.CHANNEL_CREATE.x', false],
  ];

  it.each(cases)('%j vs %j -> %s', (pattern, key, expected) => {
    expect(topicMatches(pattern, key)).toBe(expected);
  });

  it('handles long runs of `#` without blowing up', () => {
    const pattern = Array.from({ length: 30 }, () => '#').join('.') + '.z';
    const key = Array.from({ length: 200 }, (_, i) => `w${i}`).join('.');
    expect(topicMatches(pattern, key)).toBe(false);
    expect(topicMatches(pattern, `${key}.z`)).toBe(true);
  });
});
