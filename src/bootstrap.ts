import type { INestApplication, LogLevel } from '@nestjs/common';
import { ConsoleLogger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { AppModule, type AppOptions } from './app.module';
import { type Environment, type LogLevelName } from './config/environment';
import { GatewayIoAdapter } from './gateways/socket-io/socket-io.adapter';

const LEVELS: Record<LogLevelName, LogLevel[]> = {
  fatal: ['fatal'],
  error: ['fatal', 'error'],
  warn: ['fatal', 'error', 'warn'],
  info: ['fatal', 'error', 'warn', 'log'],
  debug: ['fatal', 'error', 'warn', 'log', 'debug'],
  verbose: ['fatal', 'error', 'warn', 'log', 'debug', 'verbose'],
};

export function createLogger(env: Environment): ConsoleLogger {
  return new ConsoleLogger('Blackhole', {
    logLevels: LEVELS[env.LOG_LEVEL],
    json: env.LOG_FORMAT === 'json',
    colors: env.LOG_FORMAT === 'text' && process.stdout.isTTY === true,
  });
}

/** Builds and starts the gateway; shared by `main.ts`, the demo and the end-to-end tests. */
export async function startGateway(
  environment: Environment,
  options: Omit<AppOptions, 'environment'> = {},
): Promise<INestApplication> {
  const app = await NestFactory.create(AppModule.register({ environment, ...options }), {
    logger: createLogger(environment),
  });
  app.useWebSocketAdapter(new GatewayIoAdapter(app));
  app.enableShutdownHooks();
  await app.listen(environment.PORT, environment.HOST);
  return app;
}
