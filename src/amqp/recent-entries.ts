import type { LogEntry } from '../core/replay/ports';

/**
 * The newest entries of the replay log, in offset order without gaps, as live delivery handed
 * them over (already parsed): a resume after a short gap reads them here instead of asking the
 * broker to send the stream again, so a reconnect storm costs the broker nothing and the node
 * no parsing. Older entries are evicted first; a gap (the consumer came back elsewhere in the
 * log, or under another epoch) starts the run over.
 */
export class RecentEntries {
  private readonly ring: (LogEntry | undefined)[];
  /** Index in `ring` of the oldest entry. */
  private start = 0;
  private count = 0;

  constructor(readonly capacity: number) {
    this.ring = new Array<LogEntry | undefined>(capacity);
  }

  get size(): number {
    return this.count;
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

  push(entry: LogEntry): void {
    if (this.capacity === 0) return;
    const last = this.last;
    if (last !== undefined && entry.offset !== last + 1) this.clear();
    if (this.count < this.capacity) {
      this.ring[(this.start + this.count) % this.capacity] = entry;
      this.count++;
      return;
    }
    this.ring[this.start] = entry;
    this.start = (this.start + 1) % this.capacity;
  }

  /** The entry at `offset`, while it is held. */
  at(offset: number): LogEntry | undefined {
    const first = this.first;
    if (first === undefined || offset < first || offset >= first + this.count) return undefined;
    return this.ring[(this.start + offset - first) % this.capacity];
  }

  clear(): void {
    this.ring.fill(undefined);
    this.start = 0;
    this.count = 0;
  }
}
