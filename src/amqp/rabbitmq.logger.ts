import { Logger } from '@nestjs/common';

/**
 * golevelup's logger, minus one misleading line: with `registerHandlers: false` it announces
 * that this instance "will not receive messages over RabbitMQ", while `ExchangeConsumers`
 * registers the very same handlers itself, in the background. As a Nest `Logger` it writes
 * through the application's logger, with its level and format.
 */
export class RabbitMqLogger extends Logger {
  constructor() {
    super('RabbitMQ');
  }

  override log(message: unknown, ...rest: unknown[]): void {
    if (typeof message === 'string' && message.startsWith('Skipping RabbitMQ Handlers')) {
      super.debug('handler registration is left to ExchangeConsumers', ...rest);
      return;
    }
    super.log(message, ...rest);
  }
}
