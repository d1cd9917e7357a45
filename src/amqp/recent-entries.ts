import type { LogEntry } from '../core/replay/ports';

/**
 * The newest entries of the replay log, in offset order without gaps, as live delivery handed
 * them over (already parsed): a resume after a short gap reads them here instead of asking the
 * broker to send the stream again, so a reconnect storm costs the broker nothing and the node
 * no parsing. Bounded by entries and by the bytes their messages were parsed from, whichever
 * binds first: a run of large documents must not fill the heap. Older entries are evicted first;
 * a gap (the consumer came back elsewhere in the log, or under another epoch) starts the run over.
 */
export class RecentEntries {
  private readonly ring: (LogEntry | undefined)[];
  /** Parsed bytes of the entry at the same index of `ring`. */
  private readonly sizes: Float64Array;
  /** Index in `ring` of the oldest entry. */
  private start = 0;
  private count = 0;
  private bytesHeld = 0;

  constructor(
    readonly capacity: number,
    readonly maxBytes = Infinity,
  ) {
    this.ring = new Array<LogEntry | undefined>(capacity);
    this.sizes = new Float64Array(capacity);
  }

  get size(): number {
    return this.count;
  }

  /** Bytes the held entries' messages were parsed from. */
  get bytes(): number {
    return this.bytesHeld;
  }

  /** Offset of the oldest entry held, if any. */
  get first(): number | undefined {
    return this.count === 0 ? undefined : this.ring[this.start]!.offset;
  }

  /** Offset of the newest entry held, if any. */
  get last(): number | undefined {
    return this.count === 0
      ? undefined
      : this.ring[(this.start + this.count - 1) % this.capacity]!.offset;
  }

  /** Holds `entry`, whose message was parsed from `bytes` bytes (0: none is held). */
  push(entry: LogEntry, bytes = 0): void {
    if (this.capacity === 0) return;
    const last = this.last;
    if (last !== undefined && entry.offset !== last + 1) this.clear();
    if (bytes > this.maxBytes) {
      // Too big to hold at all: what is held would no longer reach the live head.
      this.clear();
      return;
    }
    while (
      this.count > 0 &&
      (this.count === this.capacity || this.bytesHeld + bytes > this.maxBytes)
    ) {
      this.evictOldest();
    }
    const index = (this.start + this.count) % this.capacity;
    this.ring[index] = entry;
    this.sizes[index] = bytes;
    this.bytesHeld += bytes;
    this.count++;
  }

  /** The entry at `offset`, while it is held. */
  at(offset: number): LogEntry | undefined {
    const first = this.first;
    if (first === undefined || offset < first || offset >= first + this.count) return undefined;
    return this.ring[(this.start + offset - first) % this.capacity];
  }

  clear(): void {
    for (let i = 0; i < this.count; i++) this.ring[(this.start + i) % this.capacity] = undefined;
    this.start = 0;
    this.count = 0;
    this.bytesHeld = 0;
  }

  private evictOldest(): void {
    this.ring[this.start] = undefined;
    this.bytesHeld -= this.sizes[this.start];
    this.start = (this.start + 1) % this.capacity;
    this.count--;
  }
}
