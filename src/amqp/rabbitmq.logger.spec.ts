import { Logger } from '@nestjs/common';
import { RabbitMqLogger } from './rabbitmq.logger';

describe('RabbitMqLogger', () => {
  afterEach(() => jest.restoreAllMocks());

  it("demotes golevelup's misleading notices to debug and passes the rest on", () => {
    const log = jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const debug = jest.spyOn(Logger.prototype, 'debug').mockImplementation(() => undefined);
    const logger = new RabbitMqLogger();

    logger.log(
      'Skipping RabbitMQ Handlers due to configuration. This application instance will not receive messages over RabbitMQ',
    );
    // Logged before any connection exists, whether the broker is up or not.
    logger.log('Successfully connected to RabbitMQ');
    logger.warn(
      'Connection Failed: Unable to establish a connection to the broker (x). Check the broker',
    );
    logger.log('Successfully connected a RabbitMQ channel "AmqpConnection"');
    logger.warn('something else');

    expect(debug).toHaveBeenCalledTimes(3);
    expect(log).toHaveBeenCalledWith('Successfully connected a RabbitMQ channel "AmqpConnection"');
    expect(warn).toHaveBeenCalledWith('something else');
  });
});
