import { ReconnectBackoff } from './reconnect-backoff';

describe('ReconnectBackoff', () => {
  it('starts fast, doubles up to the cap and starts over after a success', () => {
    const backoff = new ReconnectBackoff(100, 2000);
    expect([1, 2, 3, 4, 5, 6, 7].map(() => backoff.next())).toEqual([
      100, 200, 400, 800, 1600, 2000, 2000,
    ]);
    backoff.reset();
    expect(backoff.next()).toBe(100);
  });
});
