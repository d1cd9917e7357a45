import { Global, Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { MessageHandlerErrorBehavior, RabbitMQModule } from '@golevelup/nestjs-rabbitmq';
import { Environment } from '../config/environment';
import { NodeIdentity } from '../config/node-identity';
import { BROKER_BINDINGS } from '../core/subscriptions/ports';
import { AmqpHealth } from './amqp-health';
import { ExchangeConsumers } from './exchange-consumers';
import { QueueBinder } from './queue-binder';
import { RabbitMqLogger } from './rabbitmq.logger';

/** Kazoo's RabbitMQ: one connection per node, family consumers and on-demand bindings. */
@Global()
@Module({
  imports: [
    DiscoveryModule,
    RabbitMQModule.forRootAsync({
      inject: [Environment, NodeIdentity],
      useFactory: (env: Environment, node: NodeIdentity) => ({
        uri: env.AMQP_URL,
        // golevelup keeps connections in a process-wide registry keyed by name.
        name: `blackhole-${node.id}`,
        registerHandlers: false,
        logger: new RabbitMqLogger(),
        prefetchCount: env.AMQP_PREFETCH,
        defaultSubscribeErrorBehavior: MessageHandlerErrorBehavior.NACK,
        connectionInitOptions: { wait: false },
        connectionManagerOptions: {
          heartbeatIntervalInSeconds: 5,
          reconnectTimeInSeconds: env.AMQP_RECONNECT_S,
          connectionOptions: { clientProperties: { connection_name: `blackhole ${node.id}` } },
        },
      }),
    }),
  ],
  providers: [
    QueueBinder,
    { provide: BROKER_BINDINGS, useExisting: QueueBinder },
    ExchangeConsumers,
    AmqpHealth,
  ],
  exports: [BROKER_BINDINGS, AmqpHealth, QueueBinder],
})
export class AmqpModule {}
