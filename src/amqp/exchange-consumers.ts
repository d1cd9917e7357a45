import {
  BeforeApplicationShutdown,
  Injectable,
  Logger,
  OnApplicationBootstrap,
} from '@nestjs/common';
import type { Channel, ConsumeMessage } from 'amqplib';
import { Environment } from '../config/environment';
import { NodeIdentity } from '../config/node-identity';
import { EventIngress, MalformedEventError } from '../core/events/event-ingress';
import { EventStats, UNKNOWN_FAMILY } from '../core/events/event-stats';
import type { ExchangeReader } from '../core/families/event-family';
import { FamilyRegistrationError, FamilyRegistry } from '../core/families/family.registry';
import { BrokerConnection } from './broker-connection';
import { messageOf } from './broker-errors';
import {
  NODE_QUEUE_OPTIONS,
  OversizeMessage,
  deliveryOf,
  deserializeKazooMessage,
  exchangeReadersOf,
} from './family-subscription';
import { QueueBinder } from './queue-binder';
import { StreamReplayLog } from './replay-log';
import { FIRST_RETRY_MS, ReconnectBackoff } from './reconnect-backoff';

export interface ExchangeConsumerStatus {
  readonly exchange: string;
  readonly queue: string;
  readonly families: string[];
  readonly consuming: boolean;
  /** Why the exchange is not consumed, while it is not. */
  readonly reason: string | undefined;
  /** Times the consumer was lost while connected and set up again. */
  readonly recoveries: number;
}

interface ExchangeConsumer {
  readonly exchange: string;
  readonly queue: string;
  readonly readers: ExchangeReader[];
  readonly backoff: ReconnectBackoff;
  /** Bumped when a consumer is lost, so late events of its channel are ignored. */
  incarnation: number;
  channel: Channel | undefined;
  consuming: boolean;
  starting: boolean;
  reason: string | undefined;
  retry: NodeJS.Timeout | undefined;
  /** Lost while the connection stayed up: the next successful start is a recovery. */
  recovering: boolean;
  recoveries: number;
  /**
   * The last delivery handled and not acknowledged yet, with its channel: acking it with
   * `allUpTo` settles every one before it. Delivery tags belong to their channel.
   */
  unacked: { readonly channel: Channel; readonly message: ConsumeMessage } | undefined;
  unackedCount: number;
}

/**
 * Consumes every exchange the event families read, once per node: one exclusive queue per
 * exchange, whose deliveries enter the core once and are offered to each family that marked a
 * method with `@ExchangeSubscription(exchange)`.
 *
 * Each exchange is consumed on a raw channel of its own (golevelup owns the connection, not
 * these consumers): golevelup's subscribers ignore a broker's cancellation, and one exchange's
 * trouble must not stop the others. A consumer that is lost (queue deleted, channel closed) is
 * set up again with backoff: queue declared anew, its keys bound again by `QueueBinder`. Node
 * queues are exclusive and auto-delete, so a lost consumer always means a queue without
 * bindings.
 *
 * Consumers start in the background when the connection comes up, never during bootstrap:
 * HTTP is served at once, also while the broker is down.
 */
@Injectable()
export class ExchangeConsumers implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger(ExchangeConsumers.name);
  private readonly consumers = new Map<string, ExchangeConsumer>();
  private stopping = false;

  constructor(
    private readonly broker: BrokerConnection,
    private readonly families: FamilyRegistry,
    private readonly ingress: EventIngress,
    private readonly binder: QueueBinder,
    private readonly node: NodeIdentity,
    private readonly env: Environment,
    private readonly stats: EventStats,
    private readonly replayLog: StreamReplayLog,
  ) {}

  onApplicationBootstrap(): void {
    // The replay log carries live delivery too: no node queues then (see StreamReplayLog).
    if (this.replayLog.enabled) return;
    for (const [exchange, readers] of this.collectReaders()) {
      const queue = this.node.queueName(exchange);
      this.binder.registerQueue(exchange, queue);
      this.consumers.set(exchange, {
        exchange,
        queue,
        readers,
        backoff: new ReconnectBackoff(FIRST_RETRY_MS, this.env.AMQP_RECONNECT_S * 1000),
        incarnation: 0,
        channel: undefined,
        consuming: false,
        starting: false,
        reason: 'not connected yet',
        retry: undefined,
        recovering: false,
        recoveries: 0,
        unacked: undefined,
        unackedCount: 0,
      });
    }
    this.broker.watch({
      connected: () => {
        for (const consumer of this.consumers.values()) {
          this.cancelRetry(consumer);
          consumer.backoff.reset();
          this.start(consumer);
        }
      },
      disconnected: (reason) => {
        for (const consumer of this.consumers.values()) {
          this.lost(consumer, consumer.incarnation, `connection lost: ${reason}`);
        }
      },
    });
  }

  /** A stopping node takes no more deliveries: each consumer's channel closes, cancelling it. */
  async beforeApplicationShutdown(): Promise<void> {
    this.stopping = true;
    const channels: Channel[] = [];
    for (const consumer of this.consumers.values()) {
      this.cancelRetry(consumer);
      if (consumer.channel) channels.push(consumer.channel);
    }
    await Promise.all(channels.map(closeQuietly));
  }

  /** Exchanges consumed, with the families that read each and whether they are consumed now. */
  exchanges(): ExchangeConsumerStatus[] {
    if (this.replayLog.enabled) {
      const log = this.replayLog.status();
      return [...this.replayLog.exchanges()].map(([exchange, readers]) => ({
        exchange,
        queue: log.stream,
        families: readers.map((reader) => reader.family),
        consuming: log.consuming,
        reason: log.reason,
        recoveries: log.recoveries,
      }));
    }
    return [...this.consumers.values()].map((consumer) => ({
      exchange: consumer.exchange,
      queue: consumer.queue,
      families: consumer.readers.map((reader) => reader.family),
      consuming: consumer.consuming,
      reason: consumer.consuming ? undefined : consumer.reason,
      recoveries: consumer.recoveries,
    }));
  }

  /** True while every exchange is consumed. */
  get allConsuming(): boolean {
    if (this.replayLog.enabled) return this.replayLog.consuming;
    return [...this.consumers.values()].every((consumer) => consumer.consuming);
  }

  get count(): number {
    if (this.replayLog.enabled) return this.replayLog.exchanges().size;
    return this.consumers.size;
  }

  private start(consumer: ExchangeConsumer): void {
    if (consumer.starting || consumer.consuming || this.stopping || !this.broker.isConnected) {
      return;
    }
    consumer.starting = true;
    const incarnation = consumer.incarnation;
    this.consume(consumer, incarnation)
      .catch((error: unknown) => this.lost(consumer, incarnation, messageOf(error)))
      .finally(() => {
        consumer.starting = false;
        // Lost while starting: its retry may have found the start still running.
        if (!consumer.consuming) this.scheduleRestart(consumer);
      })
      .catch((error: unknown) =>
        this.logger.error(`consumer of ${consumer.exchange}: ${messageOf(error)}`),
      );
  }

  private async consume(consumer: ExchangeConsumer, incarnation: number): Promise<void> {
    const channel = await this.broker.openChannel(`consumer ${consumer.exchange}`);
    // amqplib tells why the broker closed a channel in 'error', just before 'close'; /health
    // should say it (ACCESS_REFUSED, NOT_FOUND, …), not only that the channel closed.
    let closedBecause: string | undefined;
    channel.on('error', (error: unknown) => (closedBecause = messageOf(error)));
    channel.on('close', () =>
      this.lost(
        consumer,
        incarnation,
        closedBecause === undefined ? 'its channel closed' : `its channel closed: ${closedBecause}`,
      ),
    );
    try {
      await channel.prefetch(this.env.AMQP_PREFETCH);
      await channel.assertQueue(consumer.queue, NODE_QUEUE_OPTIONS);
      await channel.consume(
        consumer.queue,
        (message) =>
          message
            ? this.deliver(consumer, channel, message)
            : this.lost(consumer, incarnation, 'the broker cancelled the consumer (queue deleted)'),
        { noAck: false },
      );
    } catch (error) {
      await closeQuietly(channel);
      throw error;
    }
    if (consumer.incarnation !== incarnation) {
      await closeQuietly(channel);
      return;
    }
    if (consumer.recovering) consumer.recoveries++;
    consumer.recovering = false;
    consumer.channel = channel;
    consumer.consuming = true;
    consumer.reason = undefined;
    consumer.backoff.reset();
    this.logger.log(`consuming ${consumer.exchange} through ${consumer.queue}`);
    await this.binder.queueReady(consumer.exchange);
  }

  /** The consumer of `incarnation` is gone: its queue and bindings are gone with it. */
  private lost(consumer: ExchangeConsumer, incarnation: number, reason: string): void {
    if (consumer.incarnation !== incarnation) return;
    consumer.incarnation++;
    const channel = consumer.channel;
    const wasConsuming = consumer.consuming;
    consumer.channel = undefined;
    consumer.consuming = false;
    consumer.reason = reason;
    consumer.recovering = this.broker.isConnected;
    this.binder.queueLost(consumer.exchange, reason);
    if (channel) {
      closeQuietly(channel).catch(() => undefined);
    }
    if (this.stopping) return;
    if (wasConsuming) this.logger.warn(`stopped consuming ${consumer.exchange}: ${reason}`);
    this.scheduleRestart(consumer);
  }

  private scheduleRestart(consumer: ExchangeConsumer): void {
    if (consumer.retry || consumer.starting || consumer.consuming) return;
    if (this.stopping || !this.broker.isConnected) return;
    const delay = consumer.backoff.next();
    this.logger.warn(
      `setting up the consumer of ${consumer.exchange} again in ${delay} ms (${consumer.reason})`,
    );
    consumer.retry = setTimeout(() => {
      consumer.retry = undefined;
      this.start(consumer);
    }, delay);
    consumer.retry.unref();
  }

  private cancelRetry(consumer: ExchangeConsumer): void {
    if (consumer.retry) clearTimeout(consumer.retry);
    consumer.retry = undefined;
  }

  /**
   * Acks after ingest, a batch at a time: deliveries are handled synchronously and in order, so
   * one `ack(last, allUpTo)` per turn of the event loop (or per half prefetch) settles them all,
   * and saves the broker and the node a frame per message. A message that is no Kazoo event is
   * dropped, never requeued; so is one over `AMQP_MAX_MESSAGE_BYTES`, before it is parsed.
   */
  private deliver(consumer: ExchangeConsumer, channel: Channel, message: ConsumeMessage): void {
    const body = deserializeKazooMessage(message.content, message, this.env.AMQP_MAX_MESSAGE_BYTES);
    if (body instanceof OversizeMessage) {
      this.stats.oversize++;
      this.stats.countDropped('oversize', UNKNOWN_FAMILY);
      // The body is never logged: it is large, and whoever sent it chose what it says.
      this.logger.warn(
        `dropped oversize message ${message.fields.exchange}::${message.fields.routingKey}: ${body.reason}`,
      );
      this.drop(consumer, channel, message);
      return;
    }
    try {
      this.ingress.ingest(consumer.readers, body, deliveryOf(message));
    } catch (error) {
      if (error instanceof MalformedEventError) {
        this.logger.warn(`dropped unreadable message ${error.message}`);
        this.drop(consumer, channel, message);
        return;
      }
      this.logger.error(
        `delivering ${message.fields.exchange}::${message.fields.routingKey} failed: ${messageOf(error)}`,
      );
    }
    if (consumer.unacked && consumer.unacked.channel !== channel) this.flushAcks(consumer);
    const first = consumer.unacked === undefined;
    consumer.unacked = { channel, message };
    consumer.unackedCount++;
    if (consumer.unackedCount >= Math.max(1, this.env.AMQP_PREFETCH / 2)) {
      this.flushAcks(consumer);
    } else if (first) {
      setImmediate(() => this.flushAcks(consumer));
    }
  }

  /** Rejects one delivery without requeue (requeued, it would come back forever). */
  private drop(consumer: ExchangeConsumer, channel: Channel, message: ConsumeMessage): void {
    // Everything before it is settled first, so the batch ack never covers this one.
    this.flushAcks(consumer);
    settle(() => channel.nack(message, false, false));
  }

  private flushAcks(consumer: ExchangeConsumer): void {
    const last = consumer.unacked;
    if (!last) return;
    consumer.unacked = undefined;
    consumer.unackedCount = 0;
    // On a channel that closed meanwhile the deliveries died with it: nothing to acknowledge.
    settle(() => last.channel.ack(last.message, true));
  }

  private collectReaders(): Map<string, ExchangeReader[]> {
    const readers = new Map<string, ExchangeReader[]>();
    for (const { prefix, family } of this.families.all()) {
      const familyReaders = exchangeReadersOf(family);
      if (familyReaders.length === 0) {
        throw new FamilyRegistrationError(
          `${family.constructor.name} reads no exchange: mark a method with @ExchangeSubscription(exchange)`,
        );
      }
      for (const { exchange, method, describe } of familyReaders) {
        const list = readers.get(exchange) ?? [];
        list.push({ family: prefix, describe });
        readers.set(exchange, list);
        this.logger.log(
          `${family.constructor.name}.${method} {subscribe} -> ${exchange}::${this.node.queueName(exchange)}`,
        );
      }
    }
    return readers;
  }
}

/** Acks and nacks throw once the channel is closed; the delivery died with the queue then. */
function settle(acknowledge: () => void): void {
  try {
    acknowledge();
  } catch {
    // Channel closed: nothing left to acknowledge.
  }
}

async function closeQuietly(channel: Channel): Promise<void> {
  try {
    await channel.close();
  } catch {
    // Already closed by the broker or with the connection.
  }
}
