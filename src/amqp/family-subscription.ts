import { gunzipSync } from 'node:zlib';
import {
  RABBIT_HANDLER,
  RabbitSubscribe,
  type RabbitHandlerConfig,
} from '@golevelup/nestjs-rabbitmq';
import { MetadataScanner } from '@nestjs/core';
import type { ConsumeMessage } from 'amqplib';
import { UnreadableMessage } from '../core/events/event-ingress';
import type { Delivery, DescribeMessage } from '../core/families/event-family';

type SubscribeConfig = Parameters<typeof RabbitSubscribe>[0];

/** Node queues live as long as the connection that declared them, as Kazoo's listener queues do. */
export const NODE_QUEUE_OPTIONS = { exclusive: true, autoDelete: true, durable: false } as const;

/**
 * Largest message body read by default, raw or inflated: 1 MiB. Kazoo's events are a few KB (a
 * call event with every channel variable stays under 10 KB), so this leaves two orders of
 * magnitude of headroom while keeping the worst message cheap: inflating and parsing 1 MiB takes
 * under 10 ms each here, so a message never holds the event loop near 50 ms.
 */
export const DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024;

/** A message whose body, raw or inflated, is larger than the node reads; never parsed. */
export class OversizeMessage {
  constructor(
    /** Which body went over: what came off the wire, or what gunzip would have produced. */
    readonly stage: 'raw' | 'inflated',
    readonly rawBytes: number,
    readonly maxBytes: number,
  ) {}

  get reason(): string {
    return this.stage === 'raw'
      ? `body of ${this.rawBytes} bytes is over the ${this.maxBytes}-byte limit`
      : `gzipped body of ${this.rawBytes} bytes inflates past the ${this.maxBytes}-byte limit`;
  }
}

/**
 * Kazoo publishes JSON, gzipped when `content_encoding` says so. A body that cannot be read
 * becomes an `UnreadableMessage`, which `EventIngress` counts and rejects; one over `maxBytes`
 * (raw, or once inflated) becomes an `OversizeMessage` and is never parsed.
 *
 * Inflating is synchronous on purpose: `maxOutputLength` stops zlib as soon as the output
 * passes the limit, so a gzip bomb costs what inflating `maxBytes` costs (a few ms at 1 MiB),
 * and synchronous decoding keeps deliveries in queue order without a reordering buffer.
 */
export function deserializeKazooMessage(
  content: Buffer,
  message: ConsumeMessage,
  maxBytes = DEFAULT_MAX_MESSAGE_BYTES,
): unknown {
  return decodeKazooBody(content, message, maxBytes).value;
}

/** A decoded body, and the JSON bytes it was parsed from (0 when it was not parsed). */
export interface DecodedBody {
  readonly value: unknown;
  readonly parsedBytes: number;
}

/** `deserializeKazooMessage`, telling also how many (inflated) bytes were parsed. */
export function decodeKazooBody(
  content: Buffer,
  message: ConsumeMessage,
  maxBytes = DEFAULT_MAX_MESSAGE_BYTES,
): DecodedBody {
  if (content.length > maxBytes) {
    return { value: new OversizeMessage('raw', content.length, maxBytes), parsedBytes: 0 };
  }
  let body: Buffer;
  try {
    body =
      message.properties.contentEncoding === 'gzip'
        ? gunzipSync(content, { maxOutputLength: maxBytes })
        : content;
  } catch (error) {
    const value = isOutputTooLarge(error)
      ? new OversizeMessage('inflated', content.length, maxBytes)
      : new UnreadableMessage(error instanceof Error ? error.message : String(error));
    return { value, parsedBytes: 0 };
  }
  try {
    return { value: JSON.parse(body.toString('utf8')) as unknown, parsedBytes: body.length };
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return { value: new UnreadableMessage(reason), parsedBytes: 0 };
  }
}

/** zlib's refusal to produce more than `maxOutputLength` bytes (a `RangeError`, told by its code). */
function isOutputTooLarge(error: unknown): boolean {
  return (
    typeof error === 'object' &&
    error !== null &&
    (error as { code?: unknown }).code === 'ERR_BUFFER_TOO_LARGE'
  );
}

/**
 * golevelup's subscription metadata for the node's queue of `exchange`. Only the exchange is
 * read (by `exchangeReadersOf`): `ExchangeConsumers` declares the queue, decodes and acks itself.
 */
function familySubscription(exchange: string): SubscribeConfig {
  return { exchange, routingKey: [], queueOptions: { ...NODE_QUEUE_OPTIONS } };
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
