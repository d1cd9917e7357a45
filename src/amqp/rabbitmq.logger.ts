import { Logger } from '@nestjs/common';

/**
 * golevelup's notices that would mislead an operator, demoted to debug: it announces
 * "Successfully connected" before any connection exists, repeats a generic "Connection Failed"
 * without the cause, and says this instance "will not receive messages" while
 * `ExchangeConsumers` registers the very same handlers itself. `BrokerConnection` logs what
 * really happened, with the cause and the next attempt. As a Nest `Logger` it writes through
 * the application's logger, with its level and format.
 */
const MISLEADING: readonly RegExp[] = [
  /^Skipping RabbitMQ Handlers/,
  /^Successfully connected to RabbitMQ/,
  /^Connection Failed: Unable to establish a connection/,
  /^Skipping connection health checks/,
  /^Trying to connect to RabbitMQ broker/,
  /^Successfully closed a RabbitMQ channel/,
];

export class RabbitMqLogger extends Logger {
  constructor() {
    super('RabbitMQ');
  }

  override log(message: unknown, ...rest: unknown[]): void {
    if (isMisleading(message)) return super.debug(message, ...rest);
    super.log(message, ...rest);
  }

  override warn(message: unknown, ...rest: unknown[]): void {
    if (isMisleading(message)) return super.debug(message, ...rest);
    super.warn(message, ...rest);
  }
}

function isMisleading(message: unknown): boolean {
  return typeof message === 'string' && MISLEADING.some((pattern) => pattern.test(message));
}
