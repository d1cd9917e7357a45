import {
  BeforeApplicationShutdown,
  Injectable,
  Logger,
  OnApplicationBootstrap,
} from '@nestjs/common';
import { AmqpConnection } from '@golevelup/nestjs-rabbitmq';
import type { ChannelWrapper } from 'amqp-connection-manager';
import type { Channel } from 'amqplib';
import type { BrokerKey } from '../core/families/event-family';
import type { BrokerBindings } from '../core/subscriptions/ports';
import { NODE_QUEUE_OPTIONS } from './family-subscription';

/** Kazoo declares its exchanges this way; declaring them differently fails with 406. */
const KAZOO_EXCHANGE_OPTIONS = { durable: false, autoDelete: false } as const;

interface BoundKey {
  readonly queue: string;
  readonly exchange: string;
  readonly routingKey: string;
  count: number;
}

/** Raised when a family asks for a key on an exchange no family reads. */
export class UnknownExchangeError extends Error {
  constructor(exchange: string) {
    super(`no family reads exchange "${exchange}" (@ExchangeSubscription)`);
    this.name = 'UnknownExchangeError';
  }
}

/**
 * Binds routing keys on the node queues on demand, reference-counted per (queue, exchange, key):
 * the first acquirer binds, the last releaser unbinds. The count map is the source of truth and
 * is replayed on every (re)connection, because bindings made at runtime die with the broker
 * connection. Broker operations run one at a time in call order, so a bind and an unbind of the
 * same key can never overtake each other.
 */
@Injectable()
export class QueueBinder
  implements BrokerBindings, OnApplicationBootstrap, BeforeApplicationShutdown
{
  private readonly logger = new Logger(QueueBinder.name);
  private readonly keys = new Map<string, BoundKey>();
  /** exchange → queue, filled by `ExchangeConsumers` before any client connects. */
  private readonly queues = new Map<string, string>();
  private readonly declared = new Set<string>();
  private channel: ChannelWrapper | undefined;
  private tail: Promise<void> = Promise.resolve();
  private stopping = false;

  constructor(private readonly amqp: AmqpConnection) {}

  onApplicationBootstrap(): void {
    // A channel of its own: a failing bind must not take the consumers' channel down with it.
    this.channel = this.amqp.managedConnection.createChannel({
      name: 'blackhole-bindings',
      confirm: false,
      setup: (channel: Channel) => this.replay(channel),
    });
    this.channel.on('error', (error: Error) =>
      this.channelProblem(`binding channel failed: ${error.message}`),
    );
  }

  /** The connection is about to close on purpose: channel errors from now on are expected. */
  beforeApplicationShutdown(): void {
    this.stopping = true;
  }

  registerQueue(exchange: string, queue: string): void {
    this.queues.set(exchange, queue);
  }

  async acquire(keys: readonly BrokerKey[]): Promise<void> {
    // Resolve every queue first so a bad key rejects before any reference is taken.
    const wanted = keys.map((key) => ({ ...key, queue: this.queueOf(key.exchange) }));
    const pending: Promise<void>[] = [];
    for (const key of wanted) {
      const id = `${key.queue}\u0000${key.exchange}\u0000${key.routingKey}`;
      const bound = this.keys.get(id);
      if (bound) {
        bound.count++;
        // Wait for any bind still in flight so a success reply means the key really is bound.
        pending.push(this.tail);
        continue;
      }
      const entry: BoundKey = { ...key, count: 1 };
      this.keys.set(id, entry);
      pending.push(this.enqueue(`bind ${describe(entry)}`, (channel) => this.bind(channel, entry)));
    }
    await Promise.all(pending);
  }

  release(keys: readonly BrokerKey[]): void {
    for (const key of keys) {
      const queue = this.queueOf(key.exchange);
      const id = `${queue}\u0000${key.exchange}\u0000${key.routingKey}`;
      const bound = this.keys.get(id);
      if (!bound) continue;
      if (--bound.count > 0) continue;
      this.keys.delete(id);
      void this.enqueue(`unbind ${describe(bound)}`, (channel) =>
        channel.unbindQueue(bound.queue, bound.exchange, bound.routingKey),
      );
    }
  }

  /** Keys currently bound (or to be bound on reconnect), for health output and tests. */
  boundKeys(): { queue: string; exchange: string; routingKey: string; references: number }[] {
    return [...this.keys.values()].map(({ queue, exchange, routingKey, count }) => ({
      queue,
      exchange,
      routingKey,
      references: count,
    }));
  }

  private channelProblem(message: string): void {
    if (this.stopping) this.logger.debug(message);
    else this.logger.error(message);
  }

  private queueOf(exchange: string): string {
    const queue = this.queues.get(exchange);
    if (!queue) throw new UnknownExchangeError(exchange);
    return queue;
  }

  /**
   * Runs one broker operation after all earlier ones. While disconnected the wrapper's
   * operations do nothing; the replay on reconnect then binds what the map still holds.
   */
  private enqueue(
    what: string,
    operation: (channel: ChannelWrapper) => Promise<unknown>,
  ): Promise<void> {
    const run = async (): Promise<void> => {
      const channel = this.channel;
      if (!channel) return;
      try {
        await operation(channel);
      } catch (error) {
        this.logger.warn(
          `${what} failed: ${error instanceof Error ? error.message : String(error)}`,
        );
      }
    };
    this.tail = this.tail.then(run);
    return this.tail;
  }

  private async bind(channel: ChannelWrapper, entry: BoundKey): Promise<void> {
    if (!this.declared.has(entry.exchange)) {
      await channel.assertExchange(entry.exchange, 'topic', KAZOO_EXCHANGE_OPTIONS);
      this.declared.add(entry.exchange);
    }
    if (!this.declared.has(entry.queue)) {
      // The consumer declares the queue too; declaring it here closes the race after a reconnect.
      await channel.assertQueue(entry.queue, NODE_QUEUE_OPTIONS);
      this.declared.add(entry.queue);
    }
    await channel.bindQueue(entry.queue, entry.exchange, entry.routingKey);
  }

  private async replay(channel: Channel): Promise<void> {
    channel.on('error', (error: Error) =>
      this.channelProblem(`binding channel error: ${error.message}`),
    );
    this.declared.clear();
    for (const exchange of this.queues.keys()) {
      await channel.assertExchange(exchange, 'topic', KAZOO_EXCHANGE_OPTIONS);
      this.declared.add(exchange);
    }
    for (const queue of new Set(this.queues.values())) {
      await channel.assertQueue(queue, NODE_QUEUE_OPTIONS);
      this.declared.add(queue);
    }
    const entries = [...this.keys.values()];
    await Promise.all(entries.map((e) => channel.bindQueue(e.queue, e.exchange, e.routingKey)));
    if (entries.length > 0) this.logger.log(`re-bound ${entries.length} key(s) after connecting`);
  }
}

function describe(key: Pick<BoundKey, 'queue' | 'exchange' | 'routingKey'>): string {
  return `${key.exchange}::${key.routingKey} -> ${key.queue}`;
}
