import { Injectable } from '@nestjs/common';
import { AmqpConnection } from '@golevelup/nestjs-rabbitmq';
import { ExchangeConsumers } from './exchange-consumers';
import { QueueBinder } from './queue-binder';

export interface AmqpStatus {
  readonly connected: boolean;
  readonly consuming: boolean;
  readonly consumers: number;
  readonly bound_keys: number;
}

/** Whether this node is consuming from RabbitMQ right now. */
@Injectable()
export class AmqpHealth {
  constructor(
    private readonly amqp: AmqpConnection,
    private readonly consumers: ExchangeConsumers,
    private readonly binder: QueueBinder,
  ) {}

  status(): AmqpStatus {
    const connected = this.amqp.connected;
    return {
      connected,
      consuming: connected && this.consumers.allStarted,
      consumers: this.consumers.count,
      bound_keys: this.binder.boundKeys().length,
    };
  }
}
