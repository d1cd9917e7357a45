import { RecentIds } from './recent-ids';

describe('RecentIds', () => {
  it('refuses an id seen among the recent ones', () => {
    const recent = new RecentIds(3);
    expect([recent.add('a'), recent.add('b'), recent.add('a')]).toEqual([true, true, false]);
  });

  it('forgets the oldest ids past its capacity', () => {
    const recent = new RecentIds(2);
    recent.add('a');
    recent.add('b');
    recent.add('c'); // evicts a
    expect(recent.add('a')).toBe(true); // evicts b
    expect(recent.add('c')).toBe(false);
    expect(recent.add('b')).toBe(true);
  });
});
