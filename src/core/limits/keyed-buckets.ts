import { TokenBucket } from './token-bucket';

/**
 * One token bucket per key (a client address), for at most `maxKeys` keys. Past it full buckets
 * go first (a full bucket is what a new one would be, so dropping it forgives nothing), then the
 * least recently used: memory stays bounded however many keys turn up.
 */
export class KeyedBuckets {
  /** Least recently used first. */
  private readonly buckets = new Map<string, TokenBucket>();

  constructor(
    private readonly capacity: number,
    private readonly refillPerSecond: number,
    private readonly maxKeys: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Takes one token from `key`'s bucket; false when it is empty. */
  take(key: string): boolean {
    let bucket = this.buckets.get(key);
    if (bucket) {
      this.buckets.delete(key);
    } else {
      bucket = new TokenBucket(this.capacity, this.refillPerSecond, this.now);
      if (this.buckets.size >= this.maxKeys) this.evict();
    }
    this.buckets.set(key, bucket);
    return bucket.take();
  }

  get size(): number {
    return this.buckets.size;
  }

  private evict(): void {
    for (const [key, bucket] of this.buckets) {
      if (bucket.isFull()) this.buckets.delete(key);
    }
    // Room for a tenth more, so a crowd of busy keys does not make every new one sweep again.
    let excess = this.buckets.size - Math.floor(this.maxKeys * 0.9);
    for (const key of this.buckets.keys()) {
      if (excess-- <= 0) break;
      this.buckets.delete(key);
    }
  }
}
