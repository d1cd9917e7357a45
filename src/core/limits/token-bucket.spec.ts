import { TokenBucket } from './token-bucket';

describe('TokenBucket', () => {
  let now = 0;
  const clock = () => now;

  beforeEach(() => {
    now = 1_000_000;
  });

  it('allows a burst of its capacity, then refuses', () => {
    const bucket = new TokenBucket(3, 1, clock);
    expect([bucket.take(), bucket.take(), bucket.take(), bucket.take()]).toEqual([
      true,
      true,
      true,
      false,
    ]);
  });

  it('refills at its rate and never above its capacity', () => {
    const bucket = new TokenBucket(2, 10, clock);
    bucket.take();
    bucket.take();
    expect(bucket.take()).toBe(false);
    now += 100; // one token at 10 per second
    expect(bucket.take()).toBe(true);
    expect(bucket.take()).toBe(false);
    now += 60_000;
    expect([bucket.take(), bucket.take(), bucket.take()]).toEqual([true, true, false]);
  });

  it('counts fractions of tokens', () => {
    const bucket = new TokenBucket(1, 4, clock);
    bucket.take();
    now += 200; // 0.8 of a token
    expect(bucket.take()).toBe(false);
    now += 50; // 0.8 was kept, plus 0.2
    expect(bucket.take()).toBe(true);
  });
});
