import { LatencyHistogram } from './latency-histogram';

/** Why the node did not hand a received event to a client. */
export type DropReason =
  /** No family could tell the event's account: never broadcast. */
  | 'without_account'
  /** Not a JSON object, or unreadable (bad gzip, bad JSON). */
  | 'malformed'
  /** No family reads it: an event name it does not know, a database of no account. */
  | 'unread'
  /** Over `AMQP_MAX_MESSAGE_BYTES`, raw or inflated. */
  | 'oversize'
  /** Read with an account, but no subscription of this node matched it. */
  | 'no_subscriber'
  /** A session (or a group of them) threw while taking it. */
  | 'send_failed';

/** The family of a drop that happened before any family read the message. */
export const UNKNOWN_FAMILY = 'unknown';

const dropKey = (reason: DropReason, family: string): string => `${reason}\u0000${family}`;

/**
 * Counters of the event path, exposed on `/health` and `/metrics` for operators. Plain numbers
 * and maps read when asked: the event path pays an increment, never a metrics library.
 * Label values are exchange and family names, which the application defines: bounded.
 */
export class EventStats {
  /** Messages handed to the core by the broker consumers. */
  received = 0;
  /** Events sent to sessions (one per session and event). */
  delivered = 0;
  /** Events dropped because their account could not be determined (never broadcast). */
  droppedWithoutAccount = 0;
  /** Messages that were not a JSON object or that a family could not read. */
  malformed = 0;
  /** Messages over `AMQP_MAX_MESSAGE_BYTES`, raw or inflated: dropped unparsed. */
  oversize = 0;
  /** Connections dropped because they left more than `MAX_OUTBOUND_BYTES` unsent. */
  slowConsumerDisconnects = 0;
  /** Connections closed because a frame handler failed in a way nobody foresaw (a bug). */
  internalErrorDisconnects = 0;
  /** Resumes answered, by whether every missed event could be replayed. */
  readonly replays = { recovered: 0, notRecovered: 0 };
  /** Events replayed to resuming sessions (one per session and event). */
  replayedEvents = 0;
  /** Log entries the node's replay reads visited, matched or not: the cost of replays. */
  replayReadEntries = 0;
  /** Of those, entries read from the node's memory of the newest ones, not from the broker. */
  replayMemoryEntries = 0;
  /** Entries the node's memory of the newest ones holds now, and the bytes they were parsed from. */
  replayMemoryHeldEntries = 0;
  replayMemoryHeldBytes = 0;
  /** Reads of the replay log started; each serves every resume it can. */
  replayReads = 0;
  /** Resumes refused with `replay_busy`. */
  replaysRefused = 0;
  /** Reads of the replay log running now, and resumes waiting for one. */
  replaysReading = 0;
  replaysWaiting = 0;

  /** Messages received, per exchange. */
  readonly receivedByExchange = new Map<string, number>();
  /** Deliveries to sessions, per family of the event delivered. */
  readonly deliveredByFamily = new Map<string, number>();
  private readonly drops = new Map<string, { reason: DropReason; family: string; count: number }>();
  /**
   * Seconds from Kazoo's `Timestamp` in the message to the hand-over to the sessions' sockets,
   * one observation per session; events without a timestamp are not observed.
   */
  readonly deliveryLatency = new LatencyHistogram();

  countReceived(exchange: string): void {
    this.received++;
    this.receivedByExchange.set(exchange, (this.receivedByExchange.get(exchange) ?? 0) + 1);
  }

  countDelivered(family: string, sessions: number): void {
    this.delivered += sessions;
    this.deliveredByFamily.set(family, (this.deliveredByFamily.get(family) ?? 0) + sessions);
  }

  countDropped(reason: DropReason, family: string, count = 1): void {
    const key = dropKey(reason, family);
    const entry = this.drops.get(key);
    if (entry) entry.count += count;
    else this.drops.set(key, { reason, family, count });
  }

  /** Drops so far, one entry per reason and family seen. */
  dropped(): readonly {
    readonly reason: DropReason;
    readonly family: string;
    readonly count: number;
  }[] {
    return [...this.drops.values()];
  }

  snapshot(): Record<string, number> {
    return {
      received: this.received,
      delivered: this.delivered,
      dropped_without_account: this.droppedWithoutAccount,
      malformed: this.malformed,
      oversize: this.oversize,
      slow_consumer_disconnects: this.slowConsumerDisconnects,
      internal_error_disconnects: this.internalErrorDisconnects,
    };
  }
}
