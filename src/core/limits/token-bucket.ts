/**
 * A token bucket: holds up to `capacity` tokens and gains `refillPerSecond` of them every
 * second. Each request takes one; an empty bucket refuses. Kazoo 4.x's per-connection rate
 * limit (`kz_buckets`, 100 tokens, 10 per second) has this shape.
 */
export class TokenBucket {
  private tokens: number;
  private updatedAt: number;

  constructor(
    private readonly capacity: number,
    private readonly refillPerSecond: number,
    private readonly now: () => number = Date.now,
  ) {
    this.tokens = capacity;
    this.updatedAt = now();
  }

  /** Takes one token; false when none is left. */
  take(): boolean {
    this.refill();
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** True when the bucket holds all it can: it is as good as a new one. */
  isFull(): boolean {
    this.refill();
    return this.tokens >= this.capacity;
  }

  private refill(): void {
    const now = this.now();
    const refill = ((now - this.updatedAt) / 1000) * this.refillPerSecond;
    this.tokens = Math.min(this.capacity, this.tokens + refill);
    this.updatedAt = now;
  }
}
