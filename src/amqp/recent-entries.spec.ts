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

describe('RecentEntries bounded by bytes', () => {
  it('evicts the oldest entries when the bytes they were parsed from pass the bound', () => {
    const recent = new RecentEntries(100, 1000);
    for (let offset = 0; offset < 4; offset++) recent.push(entry(offset), 300);
    expect([recent.first, recent.last, recent.size, recent.bytes]).toEqual([1, 3, 3, 900]);
    // One large entry pushes out as many old ones as it needs.
    recent.push(entry(4), 700);
    expect([recent.first, recent.last, recent.size, recent.bytes]).toEqual([3, 4, 2, 1000]);
    // Entries that hold no parsed message (nobody reads them) cost nothing.
    recent.push(entry(5), 0);
    expect([recent.first, recent.last, recent.bytes]).toEqual([3, 5, 1000]);
  });

  it('holds nothing of an entry larger than the bound, and starts over after it', () => {
    const recent = new RecentEntries(100, 1000);
    recent.push(entry(0), 100);
    recent.push(entry(1), 5000);
    expect([recent.size, recent.bytes, recent.at(0)]).toEqual([0, 0, undefined]);
    recent.push(entry(2), 100);
    expect([recent.first, recent.last, recent.bytes]).toEqual([2, 2, 100]);
  });

  it('keeps its count of bytes across a gap and a full ring', () => {
    const recent = new RecentEntries(2, 1000);
    recent.push(entry(0), 100);
    recent.push(entry(1), 200);
    recent.push(entry(2), 300);
    expect([recent.first, recent.bytes]).toEqual([1, 500]);
    recent.push(entry(9), 50);
    expect([recent.first, recent.size, recent.bytes]).toEqual([9, 1, 50]);
  });
});
