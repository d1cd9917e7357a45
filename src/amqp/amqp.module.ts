import { Global, Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { MessageHandlerErrorBehavior, RabbitMQModule } from '@golevelup/nestjs-rabbitmq';
import { Environment } from '../config/environment';
import { NodeIdentity } from '../config/node-identity';
import { BROKER_BINDINGS } from '../core/subscriptions/ports';
import { AmqpHealth } from './amqp-health';
import { BrokerConnection } from './broker-connection';
import { ExchangeConsumers } from './exchange-consumers';
import { QueueBinder } from './queue-binder';
import { RabbitMqLogger } from './rabbitmq.logger';
import { WebsocketsTracking } from './websockets-tracking';
import { FIRST_RETRY_MS } from './reconnect-backoff';

/**
 * Kazoo's RabbitMQ: one connection per node (owned by golevelup), one consumer per exchange and
 * on-demand bindings, both on raw channels of that connection.
 */
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
          // BrokerConnection adjusts this after every attempt: 100 ms doubling to AMQP_RECONNECT_S.
          reconnectTimeInSeconds: FIRST_RETRY_MS / 1000,
          connectionOptions: { clientProperties: { connection_name: `blackhole ${node.id}` } },
        },
      }),
    }),
  ],
  providers: [
    BrokerConnection,
    QueueBinder,
    { provide: BROKER_BINDINGS, useExisting: QueueBinder },
    ExchangeConsumers,
    AmqpHealth,
    WebsocketsTracking,
  ],
  exports: [BROKER_BINDINGS, AmqpHealth, QueueBinder, WebsocketsTracking],
})
export class AmqpModule {}
