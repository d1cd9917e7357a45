import { Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { AmqpConnection } from '@golevelup/nestjs-rabbitmq';
import type { ConsumeMessage } from 'amqplib';
import { NodeIdentity } from '../config/node-identity';
import { EventIngress } from '../core/events/event-ingress';
import type { ExchangeReader } from '../core/families/event-family';
import { FamilyRegistrationError, FamilyRegistry } from '../core/families/family.registry';
import { deliveryOf, exchangeReadersOf, familySubscription } from './family-subscription';
import { QueueBinder } from './queue-binder';

/**
 * Consumes every exchange the event families read, once per node: one exclusive queue per
 * exchange, whose deliveries enter the core once and are offered to each family that marked a
 * method with `@ExchangeSubscription(exchange)`.
 *
 * golevelup's own handler registration is switched off (`registerHandlers: false`) because it
 * awaits each consumer during bootstrap, which keeps `app.listen()` from ever resolving while
 * the broker is down. Here consumers start in the background: HTTP is served at once and
 * consuming begins as soon as the broker answers.
 */
@Injectable()
export class ExchangeConsumers implements OnApplicationBootstrap {
  private readonly logger = new Logger(ExchangeConsumers.name);
  private readonly readers = new Map<string, ExchangeReader[]>();
  private started = 0;

  constructor(
    private readonly amqp: AmqpConnection,
    private readonly families: FamilyRegistry,
    private readonly ingress: EventIngress,
    private readonly binder: QueueBinder,
    private readonly node: NodeIdentity,
  ) {}

  onApplicationBootstrap(): void {
    this.collectReaders();
    for (const [exchange, readers] of this.readers) {
      const queue = this.node.queueName(exchange);
      this.binder.registerQueue(exchange, queue);
      this.amqp
        .createSubscriber(
          (message: unknown, raw?: ConsumeMessage) => {
            // A MalformedEventError thrown here nacks the message without requeue.
            if (raw) this.ingress.ingest(readers, message, deliveryOf(raw));
            return Promise.resolve(undefined);
          },
          { ...familySubscription(exchange), queue },
          `exchange ${exchange}`,
        )
        .then(
          () => this.started++,
          (error: unknown) => this.logger.error(`consumer of ${exchange} failed: ${String(error)}`),
        );
    }
  }

  /** Exchanges consumed, with the families that read each. */
  exchanges(): { exchange: string; families: string[] }[] {
    return [...this.readers].map(([exchange, readers]) => ({
      exchange,
      families: readers.map((reader) => reader.family),
    }));
  }

  /** True once every exchange consumer has been set up on the broker at least once. */
  get allStarted(): boolean {
    return this.started === this.readers.size;
  }

  get count(): number {
    return this.readers.size;
  }

  private collectReaders(): void {
    for (const { prefix, family } of this.families.all()) {
      const readers = exchangeReadersOf(family);
      if (readers.length === 0) {
        throw new FamilyRegistrationError(
          `${family.constructor.name} reads no exchange: mark a method with @ExchangeSubscription(exchange)`,
        );
      }
      for (const { exchange, method, describe } of readers) {
        const list = this.readers.get(exchange) ?? [];
        list.push({ family: prefix, describe });
        this.readers.set(exchange, list);
        this.logger.log(
          `${family.constructor.name}.${method} {subscribe} -> ${exchange}::${this.node.queueName(exchange)}`,
        );
      }
    }
  }
}
