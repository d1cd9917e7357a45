import { KeyedBuckets } from './keyed-buckets';

describe('KeyedBuckets', () => {
  let now = 0;
  const clock = (): number => now;

  it('gives every key a bucket of its own', () => {
    const buckets = new KeyedBuckets(2, 1, 100, clock);
    expect([buckets.take('a'), buckets.take('a'), buckets.take('a')]).toEqual([true, true, false]);
    expect(buckets.take('b')).toBe(true);
    now += 1000;
    expect(buckets.take('a')).toBe(true);
  });

  it('drops full buckets first when it holds too many keys, and keeps drained ones', () => {
    now = 0;
    const buckets = new KeyedBuckets(1, 0.001, 10, clock);
    buckets.take('drained');
    for (let i = 0; i < 100_000; i++) {
      // Each key is left drained for a moment, then refilled by time: idle.
      buckets.take(`k${i}`);
      now += 2_000_000;
      expect(buckets.size).toBeLessThanOrEqual(10);
    }
    expect(buckets.size).toBeLessThanOrEqual(10);
  });

  it('drops the least recently used when none is full', () => {
    now = 0;
    const buckets = new KeyedBuckets(1, 0.000001, 10, clock);
    for (let i = 0; i < 10; i++) buckets.take(`k${i}`);
    buckets.take('k0');
    buckets.take('new');
    expect(buckets.size).toBeLessThanOrEqual(10);
    // k0 was used last among the old ones: it is still drained, not forgiven.
    expect(buckets.take('k0')).toBe(false);
    // k1 was dropped: it starts again full.
    expect(buckets.take('k1')).toBe(true);
  });
});
