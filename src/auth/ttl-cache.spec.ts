import { TtlCache } from './ttl-cache';

describe('TtlCache hit and miss counts', () => {
  it('counts a load as a miss, and answers from the cache or a shared load as hits', async () => {
    let now = 0;
    const cache = new TtlCache<string>(10, () => now);
    const load = (): Promise<{ value: string; ttlMs: number }> =>
      Promise.resolve({ value: 'v', ttlMs: 1000 });

    // Two callers at once share one load.
    await Promise.all([cache.get('k', load), cache.get('k', load)]);
    await cache.get('k', load);
    expect({ hits: cache.hits, misses: cache.misses }).toEqual({ hits: 2, misses: 1 });

    now = 1000;
    await cache.get('k', load);
    expect({ hits: cache.hits, misses: cache.misses }).toEqual({ hits: 2, misses: 2 });
  });
});
