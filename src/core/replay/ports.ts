import type { Delivery, ExchangeReader } from '../families/event-family';

/** One entry of the replay log, as a replay reads it. */
export interface LogEntry {
  readonly offset: number;
  /** `offset` as clients see it (`formatPosition`). */
  readonly position: string;
  /** The families that read the entry's exchange. */
  readonly readers: readonly ExchangeReader[];
  /** The parsed body; anything but a Kazoo message is skipped, as live delivery drops it. */
  readonly message: unknown;
  readonly delivery: Delivery;
}

/**
 * The broker side of the replay log (a RabbitMQ stream every node reads). The core asks it
 * where live delivery is, where the window starts, and to read entries from an offset.
 */
export interface ReplayLog {
  /** False when `REPLAY_WINDOW_S` is 0: no log, no positions. */
  readonly enabled: boolean;
  /** The log's epoch, once the node has read it; positions of other epochs are not recoverable. */
  epoch(): string | undefined;
  /** Offset of the last entry live delivery handed to the core, if any yet. */
  liveHead(): number | undefined;
  /**
   * The first offset the broker stamped at or after `since` (its chunk time), or `undefined`
   * when nothing that recent turns up quickly: the whole log is older.
   */
  firstOffsetSince(since: Date): Promise<number | undefined>;
  /**
   * Reads entries from `from` on, in log order, until `visit` returns false or the log has
   * nothing more for a moment. Resolves once the read is over, with the offset of the last
   * entry it got, visited or skipped (unreadable, too big), or `undefined` when it got none.
   */
  read(from: number, visit: (entry: LogEntry) => boolean): Promise<number | undefined>;
}
export const REPLAY_LOG = Symbol('REPLAY_LOG');

/** Replay limits and window, from the environment. */
export interface ReplaySettings {
  /** How far back a resume may reach; exact by the broker's timestamps. */
  readonly windowMs: number;
  /** Replays one node reads at once. */
  readonly concurrency: number;
  /** Resumes that may wait for a slot. */
  readonly maxWaiting: number;
}
export const REPLAY_SETTINGS = Symbol('REPLAY_SETTINGS');
