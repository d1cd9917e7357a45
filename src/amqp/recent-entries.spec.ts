import type { LogEntry } from '../core/replay/ports';
import { RecentEntries } from './recent-entries';

const entry = (offset: number): LogEntry => ({
  offset,
  position: `e-${offset}`,
  readers: [],
  message: { n: offset },
  delivery: { exchange: 'callevt', routingKey: 'call.x' },
});

describe('RecentEntries', () => {
  it('holds the newest entries in order and evicts the oldest', () => {
    const recent = new RecentEntries(3);
    expect(recent.first).toBeUndefined();
    for (let offset = 10; offset < 15; offset++) recent.push(entry(offset));
    expect([recent.first, recent.last, recent.size]).toEqual([12, 14, 3]);
    expect([11, 12, 13, 14, 15].map((offset) => recent.at(offset)?.offset)).toEqual([
      undefined,
      12,
      13,
      14,
      undefined,
    ]);
  });

  it('starts over at a gap, so what it holds never skips an offset', () => {
    const recent = new RecentEntries(5);
    recent.push(entry(1));
    recent.push(entry(2));
    recent.push(entry(7));
    expect([recent.first, recent.last, recent.size]).toEqual([7, 7, 1]);
    expect(recent.at(2)).toBeUndefined();
  });

  it('holds nothing with no capacity', () => {
    const recent = new RecentEntries(0);
    recent.push(entry(1));
    expect(recent.size).toBe(0);
    expect(recent.at(1)).toBeUndefined();
  });
});
