import { Global, Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { AmqpConnection, MessageHandlerErrorBehavior } from '@golevelup/nestjs-rabbitmq';
import { Environment } from '../config/environment';
import { NodeIdentity } from '../config/node-identity';
import { REPLAY_LOG } from '../core/replay/ports';
import { BROKER_BINDINGS, type BrokerBindings } from '../core/subscriptions/ports';
import { AmqpHealth } from './amqp-health';
import { BrokerConnection } from './broker-connection';
import { ExchangeConsumers } from './exchange-consumers';
import { QueueBinder } from './queue-binder';
import { StreamReplayLog } from './replay-log';
import { RabbitMqLogger } from './rabbitmq.logger';
import { WebsocketsTracking } from './websockets-tracking';
import { FIRST_RETRY_MS } from './reconnect-backoff';

/**
 * Kazoo's RabbitMQ: one connection per node (owned by golevelup), one consumer per exchange and
 * on-demand bindings, both on raw channels of that connection.
 */
/** Bindings when the replay log holds every key of every exchange read: nothing to bind. */
const COVERED_BY_REPLAY_LOG: BrokerBindings = {
  acquire: () => Promise.resolve(),
  release: () => undefined,
};

@Global()
@Module({
  imports: [DiscoveryModule],
  providers: [
    {
      // Built here rather than by golevelup's RabbitMQModule: that module keeps connections in a
      // process-wide registry and, when any application in the process shuts down, closes every
      // one of them, silently cutting the broker off from the other nodes of the process.
      // BrokerConnection closes this one with its own application.
      provide: AmqpConnection,
      inject: [Environment, NodeIdentity],
      useFactory: async (env: Environment, node: NodeIdentity): Promise<AmqpConnection> => {
        const connection = new AmqpConnection({
          uri: env.AMQP_URL,
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
        });
        await connection.init();
        return connection;
      },
    },
    BrokerConnection,
    QueueBinder,
    StreamReplayLog,
    { provide: REPLAY_LOG, useExisting: StreamReplayLog },
    {
      provide: BROKER_BINDINGS,
      inject: [Environment, QueueBinder],
      // The replay log is bound with every key: on-demand bindings would only duplicate it.
      useFactory: (env: Environment, binder: QueueBinder): BrokerBindings =>
        env.REPLAY_WINDOW_S > 0 ? COVERED_BY_REPLAY_LOG : binder,
    },
    ExchangeConsumers,
    AmqpHealth,
    WebsocketsTracking,
  ],
  exports: [
    AmqpConnection,
    BROKER_BINDINGS,
    REPLAY_LOG,
    AmqpHealth,
    QueueBinder,
    WebsocketsTracking,
  ],
})
export class AmqpModule {}
