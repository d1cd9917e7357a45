import { gunzipSync } from 'node:zlib';
import { Logger } from '@nestjs/common';
import type { RabbitSubscribe } from '@golevelup/nestjs-rabbitmq';
import type { Channel, ConsumeMessage } from 'amqplib';
import { UnreadableMessage } from '../core/events/event-ingress';
import type { Delivery } from '../core/families/event-family';

type SubscribeConfig = Parameters<typeof RabbitSubscribe>[0];

/** Node queues live as long as the connection that declared them, as Kazoo's listener queues do. */
export const NODE_QUEUE_OPTIONS = { exclusive: true, autoDelete: true, durable: false } as const;

const logger = new Logger('FamilyConsumer');

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

/**
 * A message that cannot be read is dropped, never requeued: requeueing (golevelup's default)
 * would redeliver it forever. golevelup has already logged the failure with its stack.
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
 * Options for the `@RabbitSubscribe` handler through which a family consumes `exchange`.
 * The queue is left out on purpose: `FamilyConsumers` names it per node at bootstrap, and keys
 * are bound on demand by `QueueBinder`.
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

/** Where a consumed message came from, in the core's terms. */
export function deliveryOf(message: ConsumeMessage): Delivery {
  return { exchange: message.fields.exchange, routingKey: message.fields.routingKey };
}
