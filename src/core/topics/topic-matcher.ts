/**
 * AMQP topic matching: words are separated by `.`, `*` matches exactly one word and `#` matches
 * zero or more words. Used to decide locally which subscriptions a delivered event satisfies,
 * with the same semantics RabbitMQ applied when it routed the message to our queue.
 */
export function topicMatches(pattern: string, key: string): boolean {
  return topicWordsMatch(pattern.split('.'), key.split('.'));
}

/** `topicMatches` on words already split, for callers that match one key against many patterns. */
export function topicWordsMatch(pattern: readonly string[], key: readonly string[]): boolean {
  return matchWords(pattern, 0, key, 0);
}

function matchWords(
  pattern: readonly string[],
  p: number,
  key: readonly string[],
  k: number,
): boolean {
  while (p < pattern.length) {
    const word = pattern[p];
    if (word === '#') {
      // Collapse runs of '#': they match no more than one '#' does.
      while (p + 1 < pattern.length && pattern[p + 1] === '#') p++;
      if (p === pattern.length - 1) return true;
      for (let skip = k; skip <= key.length; skip++) {
        if (matchWords(pattern, p + 1, key, skip)) return true;
      }
      return false;
    }
    if (k >= key.length) return false;
    if (word !== '*' && word !== key[k]) return false;
    p++;
    k++;
  }
  return k === key.length;
}
