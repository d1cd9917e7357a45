import { Logger } from '@nestjs/common';
import { RabbitMqLogger } from './rabbitmq.logger';

describe('RabbitMqLogger', () => {
  afterEach(() => jest.restoreAllMocks());

  it("turns golevelup's misleading handler notice into a debug line and passes the rest on", () => {
    const log = jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    const debug = jest.spyOn(Logger.prototype, 'debug').mockImplementation(() => undefined);
    const logger = new RabbitMqLogger();

    logger.log(
      'Skipping RabbitMQ Handlers due to configuration. This application instance will not receive messages over RabbitMQ',
    );
    logger.log('Successfully connected to RabbitMQ broker (x)');

    expect(debug).toHaveBeenCalledWith('handler registration is left to ExchangeConsumers');
    expect(log).toHaveBeenCalledTimes(1);
    expect(log).toHaveBeenCalledWith('Successfully connected to RabbitMQ broker (x)');
  });
});
