import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import {
  BeforeApplicationShutdown,
  Injectable,
  Logger,
  OnApplicationBootstrap,
} from '@nestjs/common';
import type { Channel, ConsumeMessage } from 'amqplib';
import { Environment } from '../config/environment';
import { EventIngress, MalformedEventError } from '../core/events/event-ingress';
import { EventStats, UNKNOWN_FAMILY } from '../core/events/event-stats';
import type { ExchangeReader } from '../core/families/event-family';
import { FamilyRegistry } from '../core/families/family.registry';
import { formatPosition } from '../core/replay/log-position';
import type { LogEntry, ReplayLog } from '../core/replay/ports';
import { BrokerConnection } from './broker-connection';
import { PRECONDITION_FAILED, messageOf, refusalOf } from './broker-errors';
import {
  OversizeMessage,
  decodeKazooBody,
  deliveryOf,
  exchangeReadersOf,
} from './family-subscription';
import { KAZOO_EXCHANGE_OPTIONS } from './queue-binder';
import { RecentEntries } from './recent-entries';
import { RecoverableConsumer, closeQuietly, settle } from './recoverable-consumer';

/**
 * How long a read of the log waits for the next entry before deciding the log has nothing
 * more. Entries already in the stream come back-to-back; this only bounds the wait at its end.
 */
export const LOG_IDLE_MS = 250;

/**
 * How long a read or a probe keeps waiting when the broker is known to hold what it waits for
 * (live delivery has read it): only a busy node or broker can delay it, and ending early would
 * skip events as if the log had none.
 */
export const LOG_PATIENCE_MS = 30_000;

/** What one part of a read got: the last offset, and where the next part starts, if any. */
interface ReadPart {
  readonly last?: number;
  readonly next?: number;
}

/** Entries a read from memory visits between two turns of the event loop. */
const RECENT_BATCH = 500;

/** An entry read live this long after a moment proves the log holds an entry that recent. */
const STAMP_MARGIN_MS = 2_000;

/** Every key of an exchange: the log must hold every account's events, wanted or not yet. */
const BROAD_KEY = '#';

/** Stream offset header of every delivery from a stream (RabbitMQ ≥ 3.9). */
const OFFSET_HEADER = 'x-stream-offset';

type StreamOffset = 'first' | 'next' | number | { '!': 'timestamp'; value: number };

/** What `/health` shows of the log consumer. */
export interface ReplayLogStatus {
  readonly stream: string;
  readonly consuming: boolean;
  readonly reason: string | undefined;
  readonly epoch: string | undefined;
  readonly recoveries: number;
}

/**
 * The shared replay log: one RabbitMQ stream (`REPLAY_STREAM`) bound with every key of every
 * exchange the families read, so it holds every account's events whichever node had clients
 * for them, also when nobody was subscribed. Retention is `REPLAY_WINDOW_S` and
 * `REPLAY_MAX_BYTES`; both drop whole segments, so the window itself is enforced on reads by
 * the broker's timestamps.
 *
 * With the log on, live delivery reads it too (from `next` at start, from the entry after the
 * last one handed over when the consumer comes back): every live event then has a position,
 * which makes the seam of a resume exact. The per-node queues and on-demand bindings are not
 * used then.
 *
 * The epoch is the first message of a companion stream (`<REPLAY_STREAM>.epoch`): the first
 * node to find it empty writes a random id, and every node reads the same first message.
 * Deleting the log means deleting both; offsets then restart under a new epoch.
 */
@Injectable()
export class StreamReplayLog
  implements ReplayLog, OnApplicationBootstrap, BeforeApplicationShutdown
{
  private readonly logger = new Logger(StreamReplayLog.name);
  private readonly readers = new Map<string, ExchangeReader[]>();
  private readonly consumer: RecoverableConsumer;
  private readonly recent: RecentEntries;
  private currentEpoch: string | undefined;
  private head: number | undefined;
  /** When live delivery last handed an entry over (this node's clock). */
  private lastLiveAt: number | undefined;

  constructor(
    private readonly broker: BrokerConnection,
    private readonly families: FamilyRegistry,
    private readonly ingress: EventIngress,
    private readonly env: Environment,
    private readonly stats: EventStats,
  ) {
    this.recent = new RecentEntries(env.REPLAY_MEMORY_ENTRIES, env.REPLAY_MEMORY_BYTES);
    this.consumer = new RecoverableConsumer(
      broker,
      {
        name: 'the replay log',
        setUp: (channel, cancelled) => this.consume(channel, cancelled),
      },
      env.AMQP_PREFETCH,
      env.AMQP_RECONNECT_S * 1000,
      this.logger,
    );
  }

  get enabled(): boolean {
    return this.env.REPLAY_WINDOW_S > 0;
  }

  get stream(): string {
    return this.env.REPLAY_STREAM;
  }

  /** Exchanges the log holds, with the families reading each. */
  exchanges(): ReadonlyMap<string, readonly ExchangeReader[]> {
    return this.readers;
  }

  get consuming(): boolean {
    return this.consumer.consuming;
  }

  status(): ReplayLogStatus {
    return { stream: this.stream, epoch: this.currentEpoch, ...this.consumer.state() };
  }

  epoch(): string | undefined {
    return this.currentEpoch;
  }

  liveHead(): number | undefined {
    return this.head;
  }

  onApplicationBootstrap(): void {
    if (!this.enabled) return;
    for (const { prefix, family } of this.families.all()) {
      for (const { exchange, describe } of exchangeReadersOf(family)) {
        const list = this.readers.get(exchange) ?? [];
        list.push({ family: prefix, describe });
        this.readers.set(exchange, list);
      }
    }
    this.consumer.follow();
  }

  async beforeApplicationShutdown(): Promise<void> {
    await this.consumer.stop();
  }

  async firstOffsetSince(since: Date): Promise<number | undefined> {
    // A timestamp consumer gets nothing when every chunk is older, and waits for new ones; so
    // silence means "all older" only while nothing newer was read live. Otherwise it is the
    // broker or this node being slow (a reconnect storm), and giving up would lose a recovery.
    const newerReadLive =
      this.lastLiveAt !== undefined && this.lastLiveAt - since.getTime() > STAMP_MARGIN_MS;
    const channel = await this.broker.openChannel('replay window probe');
    try {
      const seconds = Math.floor(since.getTime() / 1000);
      const message = await readOne(
        channel,
        this.stream,
        { '!': 'timestamp', value: seconds },
        newerReadLive ? LOG_PATIENCE_MS : LOG_IDLE_MS,
      );
      return message === undefined ? undefined : offsetOf(message);
    } finally {
      await closeQuietly(channel);
    }
  }

  /**
   * From memory where it holds the entries, else from the stream until the stream reaches what
   * memory holds: a storm's reads ask the broker only for what is older than the node's memory.
   */
  async read(from: number, visit: (entry: LogEntry) => boolean): Promise<number | undefined> {
    let last: number | undefined;
    for (let next: number | undefined = from; next !== undefined;) {
      const first = this.recent.first;
      const part: ReadPart =
        first !== undefined && next >= first
          ? await this.readRecent(next, visit)
          : await this.readStream(next, visit);
      last = part.last ?? last;
      next = part.next;
    }
    return last;
  }

  /**
   * Reads what live delivery handed over from memory, yielding to the event loop now and then
   * so live delivery goes on meanwhile. Ends at the newest entry (the live head), or where the
   * next one was evicted before the read got to it (`next`: the stream has it).
   */
  private async readRecent(from: number, visit: (entry: LogEntry) => boolean): Promise<ReadPart> {
    let last: number | undefined;
    for (let offset = from; ; offset++) {
      const entry = this.recent.at(offset);
      if (!entry) {
        const first = this.recent.first;
        return first === undefined || offset >= first ? { last } : { last, next: offset };
      }
      this.stats.replayMemoryEntries++;
      last = offset;
      if (!visit(entry)) return { last };
      if ((offset - from + 1) % RECENT_BATCH === 0) {
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    }
  }

  /**
   * Reads the stream from `from` until `visit` is done, the log goes quiet, or the stream
   * reaches what memory holds (`next`: the rest comes from there).
   */
  private async readStream(from: number, visit: (entry: LogEntry) => boolean): Promise<ReadPart> {
    const epoch = this.currentEpoch;
    if (epoch === undefined) return {};
    let handOver: number | undefined;
    let last: number | undefined;
    const channel = await this.broker.openChannel('replay read');
    try {
      await channel.prefetch(this.env.REPLAY_PREFETCH);
      await new Promise<void>((resolve, reject) => {
        let done = false;
        let idle: NodeJS.Timeout | undefined;
        let pending = 0;
        let consumerTag: string | undefined;
        const finish = (): void => {
          if (done) return;
          done = true;
          if (idle) clearTimeout(idle);
          // Cancelling stops the deliveries; the channel is closed after, whatever it holds.
          const cancel = consumerTag ? channel.cancel(consumerTag) : Promise.resolve();
          cancel.then(
            () => resolve(),
            () => resolve(),
          );
        };
        // The highest offset the broker sent so far, wanted or not.
        let seen = from - 1;
        let received = 0;
        let lastArrival = performance.now();
        const armIdle = (): void => {
          if (idle) clearTimeout(idle);
          const receivedThen = received;
          // Timers run before the event loop reads its sockets: after a busy stretch, deliveries
          // already waiting would look like silence, so the check waits for them a turn.
          idle = setTimeout(
            () =>
              setImmediate(() => {
                if (received !== receivedThen) return;
                // Live delivery has read further: the entries exist, and only a busy node or
                // broker keeps them. Ending here would skip them.
                const behind = this.head !== undefined && seen < this.head;
                if (behind && performance.now() - lastArrival < LOG_PATIENCE_MS) armIdle();
                else finish();
              }),
            LOG_IDLE_MS,
          );
        };
        channel.on('close', finish);
        channel
          .consume(
            this.stream,
            (message) => {
              if (!message) return finish();
              if (done) return;
              received++;
              lastArrival = performance.now();
              armIdle();
              pending++;
              if (pending >= Math.max(1, this.env.REPLAY_PREFETCH / 2)) {
                pending = 0;
                settle(() => channel.ack(message, true));
              }
              const offset = offsetOf(message);
              if (offset !== undefined && offset > seen) seen = offset;
              // A stream may start a read at the beginning of the chunk holding `from`.
              if (offset === undefined || offset < from) return;
              const first = this.recent.first;
              if (first !== undefined && offset >= first) {
                handOver = offset;
                return finish();
              }
              last = offset;
              if (!visit(this.entryOf(message, offset, epoch))) finish();
            },
            { noAck: false, arguments: { [OFFSET_HEADER]: from } },
          )
          .then(({ consumerTag: tag }) => {
            consumerTag = tag;
            if (done) channel.cancel(tag).catch(() => undefined);
            else armIdle();
          }, reject);
      });
    } finally {
      await closeQuietly(channel);
    }
    return { last, next: handOver };
  }

  /**
   * Every entry, readable or not: a replay must see each offset, if only to know the one after
   * a client's position is still there. One nobody reads, or too big (an `OversizeMessage`),
   * is no Kazoo message: replays skip it as live delivery drops it.
   */
  private entryOf(message: ConsumeMessage, offset: number, epoch: string): LogEntry {
    return this.decodeEntry(message, offset, epoch).entry;
  }

  /** `entryOf`, with the bytes its message was parsed from: what holding it in memory costs. */
  private decodeEntry(
    message: ConsumeMessage,
    offset: number,
    epoch: string,
  ): { entry: LogEntry; parsedBytes: number } {
    const readers = this.readers.get(message.fields.exchange) ?? [];
    const { value, parsedBytes } =
      readers.length === 0
        ? { value: undefined, parsedBytes: 0 }
        : decodeKazooBody(message.content, message, this.env.AMQP_MAX_MESSAGE_BYTES);
    return {
      entry: {
        offset,
        position: formatPosition(epoch, offset),
        readers,
        message: value,
        delivery: deliveryOf(message),
      },
      parsedBytes,
    };
  }

  /** Live delivery from the log, on the consumer's channel. */
  private async consume(channel: Channel, cancelled: (reason: string) => void): Promise<string> {
    await this.declare();
    const epoch = await this.readEpoch();
    if (this.currentEpoch !== epoch) {
      // Another log: offsets of the old one mean nothing in it.
      if (this.currentEpoch !== undefined) this.logger.warn(`replay log epoch is now ${epoch}`);
      this.currentEpoch = epoch;
      this.head = undefined;
      this.recent.clear();
      this.stats.replayMemoryHeldEntries = 0;
      this.stats.replayMemoryHeldBytes = 0;
    }
    for (const exchange of this.readers.keys()) {
      await this.declareExchange(exchange);
      await channel.bindQueue(this.stream, exchange, BROAD_KEY);
    }
    // Back after a loss: from the entry after the last one handed over, so nothing is missed.
    const from: StreamOffset = this.head === undefined ? 'next' : this.head + 1;
    await channel.consume(
      this.stream,
      (message) =>
        message
          ? this.deliver(channel, message, epoch)
          : cancelled('the broker cancelled the consumer (stream deleted)'),
      { noAck: false, arguments: { [OFFSET_HEADER]: from } },
    );
    return `the replay log ${this.stream} (epoch ${epoch})`;
  }

  private deliver(channel: Channel, message: ConsumeMessage, epoch: string): void {
    const offset = offsetOf(message);
    if (offset !== undefined && (this.head === undefined || offset > this.head)) {
      const { entry, parsedBytes } = this.decodeEntry(message, offset, epoch);
      this.ingestEntry(entry);
      this.recent.push(entry, parsedBytes);
      this.stats.replayMemoryHeldEntries = this.recent.size;
      this.stats.replayMemoryHeldBytes = this.recent.bytes;
      this.head = offset;
      this.lastLiveAt = Date.now();
    }
    // A stream's acks are credit, not removal: they let the broker send more.
    this.consumer.acknowledge(channel, message);
  }

  private ingestEntry({ readers, message, delivery, position }: LogEntry): void {
    if (readers.length === 0) return;
    const where = `${delivery.exchange}::${delivery.routingKey}`;
    if (message instanceof OversizeMessage) {
      this.stats.oversize++;
      this.stats.countDropped('oversize', UNKNOWN_FAMILY);
      this.logger.warn(`dropped oversize message ${where}: ${message.reason}`);
      return;
    }
    try {
      this.ingress.ingest(readers, message, delivery, position);
    } catch (error) {
      if (error instanceof MalformedEventError) {
        this.logger.warn(`dropped unreadable message ${error.message}`);
        return;
      }
      this.logger.error(`delivering ${where} failed: ${messageOf(error)}`);
    }
  }

  /** The log stream, declared durable with its retention; an existing one is used as it is. */
  private async declare(): Promise<void> {
    const arguments_ = {
      'x-queue-type': 'stream',
      'x-max-age': `${this.env.REPLAY_WINDOW_S}s`,
      'x-max-length-bytes': this.env.REPLAY_MAX_BYTES,
      // Retention drops whole segments: smaller ones keep the log closer to its caps.
      'x-stream-max-segment-size-bytes': Math.min(
        500_000_000,
        Math.max(1024 * 1024, Math.floor(this.env.REPLAY_MAX_BYTES / 8)),
      ),
    };
    await this.declareStream(this.stream, arguments_);
    await this.declareStream(`${this.stream}.epoch`, { 'x-queue-type': 'stream' });
  }

  private async declareStream(name: string, arguments_: Record<string, unknown>): Promise<void> {
    const channel = await this.broker.openChannel(`declare ${name}`);
    try {
      await channel.assertQueue(name, { durable: true, arguments: arguments_ });
    } catch (error) {
      // Declared before with other retention: arguments are immutable, the stream is used as is.
      if (refusalOf(error)?.code !== PRECONDITION_FAILED) throw error;
      this.logger.warn(`stream ${name} exists with other arguments; using it as it is`);
    } finally {
      await closeQuietly(channel);
    }
  }

  private async declareExchange(exchange: string): Promise<void> {
    const channel = await this.broker.openChannel(`declare ${exchange}`);
    try {
      await channel.assertExchange(exchange, 'topic', KAZOO_EXCHANGE_OPTIONS);
    } catch (error) {
      // Declared by Kazoo with other flags: it exists, which is all the binding needs.
      if (refusalOf(error)?.code !== PRECONDITION_FAILED) throw error;
    } finally {
      await closeQuietly(channel);
    }
  }

  /** The first message of the epoch stream; the first node to find it empty writes one. */
  private async readEpoch(): Promise<string> {
    const name = `${this.stream}.epoch`;
    const channel = await this.broker.openChannel('replay log epoch');
    try {
      let first = await readOne(channel, name, 'first');
      if (!first) {
        channel.sendToQueue(name, Buffer.from(randomBytes(8).toString('hex')), {
          persistent: true,
        });
        // Every node that found it empty wrote one: they all take the first.
        first = await readOne(channel, name, 'first', 5000);
      }
      const epoch = first?.content.toString('utf8');
      if (!epoch || !/^[0-9a-z]{8,32}$/.test(epoch)) {
        throw new Error(`stream ${name} does not start with an epoch id`);
      }
      return epoch;
    } finally {
      await closeQuietly(channel);
    }
  }
}

/** The stream offset of a delivery from a stream. */
function offsetOf(message: ConsumeMessage): number | undefined {
  const offset: unknown = message.properties.headers?.[OFFSET_HEADER];
  return typeof offset === 'number' && Number.isSafeInteger(offset) ? offset : undefined;
}

/** The first message a stream consumer gets from `offset`, or none within `idleMs`. */
async function readOne(
  channel: Channel,
  queue: string,
  offset: StreamOffset,
  idleMs = LOG_IDLE_MS,
): Promise<ConsumeMessage | undefined> {
  await channel.prefetch(1);
  return new Promise<ConsumeMessage | undefined>((resolve, reject) => {
    let settled = false;
    let tag: string | undefined;
    const done = (message: ConsumeMessage | undefined): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (tag) channel.cancel(tag).catch(() => undefined);
      resolve(message);
    };
    const timer = setTimeout(() => done(undefined), idleMs);
    channel
      .consume(queue, (message) => done(message ?? undefined), {
        noAck: false,
        arguments: { [OFFSET_HEADER]: offset },
      })
      .then(({ consumerTag }) => {
        tag = consumerTag;
        if (settled) channel.cancel(consumerTag).catch(() => undefined);
      }, reject);
  });
}
