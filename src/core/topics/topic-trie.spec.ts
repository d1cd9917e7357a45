import { topicWordsMatch } from './topic-matcher';
import { TopicTrie } from './topic-trie';

/** A small seeded generator, so a failure names a case that can be replayed. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return state / 2 ** 31;
  };
}

const pick = <T>(next: () => number, items: readonly T[]): T =>
  items[Math.floor(next() * items.length)];

function words(next: () => number, alphabet: readonly string[], min: number, max: number): string {
  const length = min + Math.floor(next() * (max - min + 1));
  return Array.from({ length }, () => pick(next, alphabet)).join('.');
}

describe('TopicTrie', () => {
  it.each([1, 2, 3, 4, 5])(
    'finds exactly the patterns topicMatches accepts (seed %i, with * and #)',
    (seed) => {
      const next = random(seed);
      const trie = new TopicTrie<string>();
      const patterns = new Set<string>();
      for (let i = 0; i < 60; i++) {
        const pattern = words(next, ['a', 'b', 'c', '*', '#'], 1, 5);
        patterns.add(pattern);
        trie.set(pattern, pattern);
      }
      // Some go again, and must not be found any more.
      for (const pattern of [...patterns].filter(() => next() < 0.3)) {
        expect(trie.delete(pattern)).toBe(true);
        patterns.delete(pattern);
      }
      expect(trie.size).toBe(patterns.size);
      expect(new Set(trie.values())).toEqual(patterns);
      for (let i = 0; i < 300; i++) {
        const key = words(next, ['a', 'b', 'c', 'd'], 1, 6).split('.');
        const found: string[] = [];
        trie.match(key, (pattern) => found.push(pattern));
        const expected = [...patterns].filter((p) => topicWordsMatch(p.split('.'), key));
        expect(found.sort()).toEqual(expected.sort());
      }
    },
  );

  it("treats a key's literal `*` as a word, as RabbitMQ does", () => {
    const trie = new TopicTrie<string>();
    trie.set('fax.status.*.job', 'any account');
    trie.set('fax.status.abc.job', 'abc');
    const found: string[] = [];
    trie.match('fax.status.*.job'.split('.'), (value) => found.push(value));
    expect(found).toEqual(['any account']);
  });

  it('prunes what a delete leaves unused and keeps what others still need', () => {
    const trie = new TopicTrie<number>();
    trie.set('call.CHANNEL_CREATE.*', 1);
    trie.set('call.CHANNEL_CREATE.abc', 2);
    expect(trie.delete('call.CHANNEL_CREATE.*')).toBe(true);
    expect(trie.delete('call.CHANNEL_CREATE.*')).toBe(false);
    expect(trie.get('call.CHANNEL_CREATE.abc')).toBe(2);
    expect(trie.delete('call.CHANNEL_CREATE.abc')).toBe(true);
    expect(trie.size).toBe(0);
    expect([...trie.values()]).toEqual([]);
  });

  it('keeps equivalent patterns apart and visits each match once', () => {
    const trie = new TopicTrie<string>();
    trie.set('a.#.#.b', 'x');
    trie.set('a.#.b', 'y');
    expect(trie.get('a.#.#.b')).toBe('x');
    const found: string[] = [];
    trie.match(['a', 'b', 'b'], (value) => found.push(value));
    expect(found.sort()).toEqual(['x', 'y']);
  });
});
