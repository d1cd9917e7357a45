import { Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { MetadataScanner } from '@nestjs/core';
import {
  AmqpConnection,
  RABBIT_HANDLER,
  type RabbitHandlerConfig,
  type SubscribeResponse,
} from '@golevelup/nestjs-rabbitmq';
import { NodeIdentity } from '../config/node-identity';
import { FamilyRegistry } from '../core/families/family.registry';
import { QueueBinder } from './queue-binder';

type Handler = (...args: unknown[]) => Promise<SubscribeResponse>;

/**
 * Starts the `@RabbitSubscribe` handlers of every event family on this node's exclusive queues.
 *
 * golevelup's own registration is switched off (`registerHandlers: false`) because it awaits
 * each consumer during bootstrap, which keeps `app.listen()` from ever resolving while the
 * broker is down. Here the same decorator metadata is used, the queue is named per node, and
 * consumers start in the background: HTTP is served at once and consuming begins as soon as
 * the broker answers.
 */
@Injectable()
export class FamilyConsumers implements OnApplicationBootstrap {
  private readonly logger = new Logger(FamilyConsumers.name);
  private expected = 0;
  private started = 0;

  constructor(
    private readonly amqp: AmqpConnection,
    private readonly families: FamilyRegistry,
    private readonly binder: QueueBinder,
    private readonly node: NodeIdentity,
    private readonly scanner: MetadataScanner,
  ) {}

  onApplicationBootstrap(): void {
    for (const { prefix, family } of this.families.all()) {
      const prototype = Object.getPrototypeOf(family) as Record<string, unknown>;
      for (const method of this.scanner.getAllMethodNames(prototype)) {
        const handler = prototype[method] as Handler;
        // Handlers may be synchronous; golevelup awaits whatever they return.
        const config = Reflect.getMetadata(RABBIT_HANDLER, handler) as
          RabbitHandlerConfig | undefined;
        if (!config || config.type !== 'subscribe' || !config.exchange) continue;
        const queue = this.node.queueName(prefix, config.exchange);
        this.binder.registerQueue(prefix, config.exchange, queue);
        this.expected++;
        this.logger.log(
          `${family.constructor.name}.${method} {subscribe} -> ${config.exchange}::${queue}`,
        );
        this.amqp
          .createSubscriber(handler.bind(family), { ...config, queue }, `${prefix}.${method}`)
          .then(
            () => this.started++,
            (error: unknown) =>
              this.logger.error(`consumer ${prefix}.${method} failed: ${String(error)}`),
          );
      }
    }
  }

  /** True once every family consumer has been set up on the broker at least once. */
  get allStarted(): boolean {
    return this.started === this.expected;
  }

  get count(): number {
    return this.expected;
  }
}
