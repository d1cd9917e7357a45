import { gunzipSync } from 'node:zlib';
import {
  RABBIT_HANDLER,
  RabbitSubscribe,
  type RabbitHandlerConfig,
} from '@golevelup/nestjs-rabbitmq';
import { Logger } from '@nestjs/common';
import { MetadataScanner } from '@nestjs/core';
import type { Channel, ConsumeMessage } from 'amqplib';
import { UnreadableMessage } from '../core/events/event-ingress';
import type { Delivery, DescribeMessage } from '../core/families/event-family';

type SubscribeConfig = Parameters<typeof RabbitSubscribe>[0];

/** Node queues live as long as the connection that declared them, as Kazoo's listener queues do. */
export const NODE_QUEUE_OPTIONS = { exclusive: true, autoDelete: true, durable: false } as const;

/**
 * Kazoo publishes JSON, gzipped when `content_encoding` says so. A body that cannot be read
 * becomes an `UnreadableMessage`, which `EventIngress` counts and rejects.
 */
export function deserializeKazooMessage(content: Buffer, message: ConsumeMessage): unknown {
  try {
    const body = message.properties.contentEncoding === 'gzip' ? gunzipSync(content) : content;
    return JSON.parse(body.toString('utf8'));
  } catch (error) {
    return new UnreadableMessage(error instanceof Error ? error.message : String(error));
  }
}

const logger = new Logger('ExchangeConsumer');

/**
 * A message that cannot be read is dropped, never requeued: requeueing (golevelup's default)
 * would redeliver it forever.
 */
export function dropUnreadableMessage(
  channel: Channel,
  message: ConsumeMessage,
  error: unknown,
): void {
  logger.warn(
    `dropped unreadable message ${message.fields.exchange}::${message.fields.routingKey}: ${
      error instanceof Error ? error.message : String(error)
    }`,
  );
  channel.nack(message, false, false);
}

/**
 * golevelup's subscription options for the node's queue of `exchange`. The queue is left out on
 * purpose: the node names it at bootstrap, and keys are bound on demand by `QueueBinder`.
 */
export function familySubscription(exchange: string): SubscribeConfig {
  return {
    exchange,
    routingKey: [],
    queueOptions: { ...NODE_QUEUE_OPTIONS },
    deserializer: deserializeKazooMessage,
    errorHandler: dropUnreadableMessage,
  };
}

/**
 * Declares the RabbitMQ subscription of an event family: the decorated method reads every
 * message the node consumes from `exchange` (golevelup's `@RabbitSubscribe` metadata, read at
 * bootstrap). The family owns no consumer: the node consumes each exchange once, through one
 * queue, and offers every delivery to each family that reads the exchange.
 *
 * ```ts
 * @ExchangeSubscription('callevt')
 * describe(message: KazooMessage, delivery: Delivery): FamilyEvent | undefined { … }
 * ```
 *
 * @publicApi
 */
export function ExchangeSubscription(exchange: string) {
  const subscribe = RabbitSubscribe(familySubscription(exchange));
  return (
    target: object,
    method: string | symbol,
    descriptor: TypedPropertyDescriptor<DescribeMessage>,
  ): void => {
    subscribe(target, method, descriptor);
  };
}

/** The exchange a method was marked to read with `@ExchangeSubscription`, if any. */
export function subscribedExchange(method: unknown): string | undefined {
  if (typeof method !== 'function') return undefined;
  const config = Reflect.getMetadata(RABBIT_HANDLER, method) as RabbitHandlerConfig | undefined;
  return config?.type === 'subscribe' && config.exchange ? config.exchange : undefined;
}

/** A family's `@ExchangeSubscription` methods, bound to the family. */
export function exchangeReadersOf(
  family: object,
): { exchange: string; method: string; describe: DescribeMessage }[] {
  const prototype = Object.getPrototypeOf(family) as Record<string, unknown>;
  return new MetadataScanner().getAllMethodNames(prototype).flatMap((method) => {
    const exchange = subscribedExchange(prototype[method]);
    if (exchange === undefined) return [];
    return [{ exchange, method, describe: (prototype[method] as DescribeMessage).bind(family) }];
  });
}

/** Where a consumed message came from, in the core's terms. */
export function deliveryOf(message: ConsumeMessage): Delivery {
  return { exchange: message.fields.exchange, routingKey: message.fields.routingKey };
}
