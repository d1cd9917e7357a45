export type Clock = () => number;

interface Entry<V> {
  value: V;
  expiresAt: number;
}

/**
 * A bounded cache whose entries each carry their own lifetime, with single-flight loading:
 * concurrent `get`s of a missing key share one load. A load that throws is not cached, so a
 * temporary failure is retried by the next caller.
 */
export class TtlCache<V> {
  private readonly entries = new Map<string, Entry<V>>();
  private readonly loading = new Map<string, Promise<V>>();
  /** `get`s answered from the cache or from another caller's load. */
  hits = 0;
  /** `get`s that had to load. */
  misses = 0;

  constructor(
    private readonly maxEntries: number,
    private readonly now: Clock = Date.now,
  ) {}

  async get(key: string, load: () => Promise<{ value: V; ttlMs: number }>): Promise<V> {
    const entry = this.entries.get(key);
    if (entry && entry.expiresAt > this.now()) {
      // Re-insert so Map order tracks recency and eviction drops the least recently used.
      this.entries.delete(key);
      this.entries.set(key, entry);
      this.hits++;
      return entry.value;
    }
    if (entry) this.entries.delete(key);

    const pending = this.loading.get(key);
    if (pending) {
      this.hits++;
      return pending;
    }
    this.misses++;
    const loaded = load()
      .then(({ value, ttlMs }) => {
        if (ttlMs > 0) this.store(key, value, ttlMs);
        return value;
      })
      .finally(() => this.loading.delete(key));
    this.loading.set(key, loaded);
    return loaded;
  }

  /** True when `get(key)` would be answered without a load of its own (cached or loading). */
  has(key: string): boolean {
    const entry = this.entries.get(key);
    return (entry !== undefined && entry.expiresAt > this.now()) || this.loading.has(key);
  }

  /** Stores an answer obtained outside `get` (a forced re-check), replacing any cached one. */
  set(key: string, value: V, ttlMs: number): void {
    this.entries.delete(key);
    if (ttlMs > 0) this.store(key, value, ttlMs);
  }

  get size(): number {
    return this.entries.size;
  }

  clear(): void {
    this.entries.clear();
  }

  private store(key: string, value: V, ttlMs: number): void {
    this.entries.set(key, { value, expiresAt: this.now() + ttlMs });
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
  }
}
