/**
 * Values stored under AMQP topic patterns, found by routing key in O(words + matches) rather
 * than by testing every pattern: an account with 100,000 bindings costs an event a walk down
 * the words of its key, not 100,000 comparisons. Same semantics as `topicMatches`: `*` is
 * exactly one word, `#` zero or more.
 */
export class TopicTrie<T> {
  private readonly root = new TrieNode<T>();
  private count = 0;
  /** Patterns holding a `#`: only they can match one key along two paths. */
  private multiWord = 0;

  get size(): number {
    return this.count;
  }

  get(pattern: string): T | undefined {
    let node: TrieNode<T> | undefined = this.root;
    for (const word of wordsOf(pattern)) {
      node = node.child(word);
      if (!node) return undefined;
    }
    return node.value;
  }

  set(pattern: string, value: T): void {
    let node = this.root;
    for (const word of wordsOf(pattern)) node = node.childOrNew(word);
    if (node.value === undefined) {
      this.count++;
      if (pattern.split('.').includes('#')) this.multiWord++;
    }
    node.value = value;
  }

  delete(pattern: string): boolean {
    const path: { node: TrieNode<T>; word: string }[] = [];
    let node: TrieNode<T> | undefined = this.root;
    for (const word of wordsOf(pattern)) {
      path.push({ node, word });
      node = node.child(word);
      if (!node) return false;
    }
    if (node.value === undefined) return false;
    node.value = undefined;
    this.count--;
    if (pattern.split('.').includes('#')) this.multiWord--;
    // Prune the branch back to the last node still in use.
    for (let i = path.length - 1; i >= 0 && node.isEmpty; i--) {
      path[i].node.remove(path[i].word);
      node = path[i].node;
    }
    return true;
  }

  *values(): IterableIterator<T> {
    const stack: TrieNode<T>[] = [this.root];
    for (let node = stack.pop(); node; node = stack.pop()) {
      if (node.value !== undefined) yield node.value;
      stack.push(...node.children());
    }
  }

  /** Calls `visit` once with every value whose pattern matches the key's words. */
  match(key: readonly string[], visit: (value: T) => void): void {
    if (this.multiWord === 0) {
      this.collect(this.root, key, 0, visit);
      return;
    }
    const seen = new Set<T>();
    this.collect(this.root, key, 0, (value) => {
      if (seen.has(value)) return;
      seen.add(value);
      visit(value);
    });
  }

  private collect(
    node: TrieNode<T>,
    key: readonly string[],
    at: number,
    visit: (value: T) => void,
  ): void {
    if (node.hash) {
      // `#` swallows any number of words, none included.
      for (let next = at; next <= key.length; next++) this.collect(node.hash, key, next, visit);
    }
    if (at === key.length) {
      if (node.value !== undefined) visit(node.value);
      return;
    }
    const literal = node.words?.get(key[at]);
    if (literal) this.collect(literal, key, at + 1, visit);
    if (node.star) this.collect(node.star, key, at + 1, visit);
  }
}

class TrieNode<T> {
  words: Map<string, TrieNode<T>> | undefined;
  star: TrieNode<T> | undefined;
  hash: TrieNode<T> | undefined;
  value: T | undefined;

  get isEmpty(): boolean {
    return this.value === undefined && !this.star && !this.hash && !this.words?.size;
  }

  child(word: string): TrieNode<T> | undefined {
    if (word === '*') return this.star;
    if (word === '#') return this.hash;
    return this.words?.get(word);
  }

  childOrNew(word: string): TrieNode<T> {
    const existing = this.child(word);
    if (existing) return existing;
    const node = new TrieNode<T>();
    if (word === '*') this.star = node;
    else if (word === '#') this.hash = node;
    else (this.words ??= new Map()).set(word, node);
    return node;
  }

  remove(word: string): void {
    if (word === '*') this.star = undefined;
    else if (word === '#') this.hash = undefined;
    else this.words?.delete(word);
  }

  children(): TrieNode<T>[] {
    return [
      ...(this.words?.values() ?? []),
      ...(this.star ? [this.star] : []),
      ...(this.hash ? [this.hash] : []),
    ];
  }
}

/**
 * A pattern's words, kept as written: `a.#.#.b` and `a.#.b` match the same keys but are two
 * patterns, each with its own value.
 */
function wordsOf(pattern: string): string[] {
  return pattern.split('.');
}
