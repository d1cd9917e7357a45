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
import { RecoverableConsumer } from './recoverable-consumer';

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
  readonly consumer: RecoverableConsumer;
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
      const entry: ExchangeConsumer = {
        exchange,
        queue,
        readers,
        consumer: new RecoverableConsumer(
          this.broker,
          {
            name: `the consumer of ${exchange}`,
            setUp: async (channel, cancelled) => {
              await channel.assertQueue(queue, NODE_QUEUE_OPTIONS);
              await channel.consume(
                queue,
                (message) =>
                  message
                    ? this.deliver(entry, channel, message)
                    : cancelled('the broker cancelled the consumer (queue deleted)'),
                { noAck: false },
              );
              return `${exchange} through ${queue}`;
            },
            ready: () => this.binder.queueReady(exchange),
            // Node queues are exclusive and auto-delete: a lost consumer means a queue without bindings.
            lost: (reason) => this.binder.queueLost(exchange, reason),
          },
          this.env.AMQP_PREFETCH,
          this.env.AMQP_RECONNECT_S * 1000,
          this.logger,
        ),
      };
      this.consumers.set(exchange, entry);
    }
    for (const { consumer } of this.consumers.values()) consumer.follow();
  }

  /** A stopping node takes no more deliveries: each consumer's channel closes, cancelling it. */
  async beforeApplicationShutdown(): Promise<void> {
    await Promise.all([...this.consumers.values()].map(({ consumer }) => consumer.stop()));
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
    return [...this.consumers.values()].map(({ exchange, queue, readers, consumer }) => ({
      exchange,
      queue,
      families: readers.map((reader) => reader.family),
      ...consumer.state(),
    }));
  }

  /** True while every exchange is consumed. */
  get allConsuming(): boolean {
    if (this.replayLog.enabled) return this.replayLog.consuming;
    return [...this.consumers.values()].every(({ consumer }) => consumer.consuming);
  }

  get count(): number {
    if (this.replayLog.enabled) return this.replayLog.exchanges().size;
    return this.consumers.size;
  }

  /**
   * Acks after ingest, batched by the consumer. A message that is no Kazoo event is dropped,
   * never requeued; so is one over `AMQP_MAX_MESSAGE_BYTES`, before it is parsed.
   */
  private deliver(entry: ExchangeConsumer, channel: Channel, message: ConsumeMessage): void {
    const body = deserializeKazooMessage(message.content, message, this.env.AMQP_MAX_MESSAGE_BYTES);
    if (body instanceof OversizeMessage) {
      this.stats.oversize++;
      this.stats.countDropped('oversize', UNKNOWN_FAMILY);
      // The body is never logged: it is large, and whoever sent it chose what it says.
      this.logger.warn(
        `dropped oversize message ${message.fields.exchange}::${message.fields.routingKey}: ${body.reason}`,
      );
      entry.consumer.reject(channel, message);
      return;
    }
    try {
      this.ingress.ingest(entry.readers, body, deliveryOf(message));
    } catch (error) {
      if (error instanceof MalformedEventError) {
        this.logger.warn(`dropped unreadable message ${error.message}`);
        entry.consumer.reject(channel, message);
        return;
      }
      this.logger.error(
        `delivering ${message.fields.exchange}::${message.fields.routingKey} failed: ${messageOf(error)}`,
      );
    }
    entry.consumer.acknowledge(channel, message);
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
